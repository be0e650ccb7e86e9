"""Sound pre-activation bounds by propagation (interval, symbolic back-substitution), on one box or a batch."""
