"""The network as a solver-neutral MILP: big-M rows with each unstable neuron's own bounds, as CSR matrices."""
