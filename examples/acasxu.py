"""An ACAS Xu network and property: exact output ranges over the property's box, and the verdict.

ACAS Xu (Katz et al., "Reluplex", CAV 2017) is the standard benchmark of network verification:
45 networks of 5 inputs, 6 ReLU layers of 50 neurons and 5 outputs (advisory scores), with
properties in VNN-LIB. The data is read from ``$MILP_BENCHMARKS/acasxu`` (the environment
variable names the folder holding ``acasxu/``), else from ``../shared/benchmarks/acasxu`` beside
the repository; ``ACASXU_DIR``, if set, names the ``acasxu`` folder itself and wins. Without the
data the example says where it looked and stops.

For one network and one property it prints

* the range of each output over the property's input box (:func:`milp.search.queries.output_range`):
  exact, with the inputs attaining it, or, when the time limit per output runs out, the proved
  bounds;
* the verdict: :func:`milp.search.verify.verify` (``sat`` with a counterexample checked by onnxruntime,
  ``unsat`` proved, or ``timeout``), or, where that module is absent, :func:`milp.search.queries.reach`
  on each disjunct of the property's unsafe set (``unsat`` for every disjunct means the
  property holds);
* the regions of the network on a small square of a plane through its input space
  (:data:`SLICE`) and how many convex zones they merge into (:func:`milp.merge_regions`).

Run ``python examples/acasxu.py`` (about 30 s); the answers go to ``output/acasxu.json``.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path

import numpy as np

from importers import OnnxReference, load_onnx
from milp import merge_regions, output_range, parse_box, reach, read_vnnlib, regions
from milp.core.slicing import parse_slice, slice_network

HERE = Path(__file__).resolve().parent
NETWORK = "ACASXU_run2a_2_1_batch_2000.onnx"
PROPERTY = "prop_4.vnnlib"
OUTPUT_NAMES = ("COC", "weak left", "weak right", "strong left", "strong right")


def data_dir() -> Path:
    """Where the ACAS Xu benchmark is expected: ``$ACASXU_DIR``, else ``$MILP_BENCHMARKS/acasxu``, else
    ``../shared/benchmarks/acasxu`` beside the repository (the rule of ``benchmarks/data.py``)."""
    if os.environ.get("ACASXU_DIR", "").strip():
        return Path(os.environ["ACASXU_DIR"].strip()).expanduser()
    if os.environ.get("MILP_BENCHMARKS", "").strip():
        return Path(os.environ["MILP_BENCHMARKS"].strip()).expanduser() / "acasxu"
    return HERE.parent.parent / "shared" / "benchmarks" / "acasxu"


def _row_condition(row: np.ndarray, rhs: float) -> str:
    """A VNN-LIB output row ``row . y <= rhs`` as a condition text."""
    terms = " + ".join(f"{float(c)!r}*y[{j}]" for j, c in enumerate(row) if c != 0.0) or "0*y[0]"
    return f"{terms} <= {float(rhs)!r}"


def _verdict(network, prop, reference, timeout: float) -> tuple[str, np.ndarray | None, str]:
    """``(result, counterexample or None, how)``: milp.search.verify when it exists, else reach per disjunct."""
    try:
        verify = getattr(importlib.import_module("milp.search.verify"), "verify")
    except (ImportError, AttributeError):
        verify = None
    if verify is not None:
        verdict = verify(network, prop, timeout=timeout, reference=reference)
        return verdict.result, verdict.x, "milp.search.verify.verify"
    deadline = time.perf_counter() + timeout
    results = []
    for disjunct in prop.disjuncts:
        conditions = [_row_condition(r, d) for r, d in zip(disjunct.output_rows, disjunct.output_rhs)]
        remaining = max(deadline - time.perf_counter(), 1e-3)
        answer = reach(network, disjunct.box, conditions, time_limit=remaining, reference=reference)
        if answer.status == "sat":
            return "sat", answer.witness, "milp.search.queries.reach per disjunct"
        results.append(answer.status)
    return ("unsat" if all(r == "unsat" for r in results) else "unknown"), None, "milp.search.queries.reach per disjunct"


# A plane through the input space (x = x0 + s e0 + t e1, s and t in +-SLICE_HALF) whose regions are merged into zones.
SLICE = "x0=0,0,0,0.45,-0.45 u=e0 v=e1"
SLICE_HALF = 0.02


def slice_zones(network, half: float = SLICE_HALF) -> dict:
    """The regions of ``network`` on the plane :data:`SLICE` over ``[-half, half]^2`` and their convex zones."""
    plane = parse_slice(SLICE, network.input_dim)
    flat = slice_network(network, plane.origin, plane.u, plane.v)
    square = parse_box(f"{-half}:{half}", 2)
    search = regions(flat, square)
    found = list(search)
    zones = merge_regions(found)
    print(f"plane {SLICE}, s and t in [{-half:g}, {half:g}]: {len(found)} regions "
          f"({'complete' if search.complete else 'INCOMPLETE'}) merge into {len(zones)} convex zones")
    return {"slice_regions": len(found), "slice_zones": len(zones), "slice_complete": search.complete,
            "slice_zone_vertices": [z.vertices.tolist() for z in zones]}


def main(out_dir=None, network_file: str = NETWORK, property_file: str = PROPERTY, range_seconds: float = 8.0,
         outputs=None, verify_seconds: float = 30.0, slice_half: float = SLICE_HALF) -> dict:
    """Ranges and verdict for one instance, and the zones of a plane; returns the printed facts
    (``{"skipped": reason}`` without data).

    ``range_seconds`` is the time limit for each output's range; ``outputs`` picks outputs (default all).
    """
    out = Path(out_dir) if out_dir is not None else HERE
    root = data_dir()
    model_path, prop_path = root / "onnx" / network_file, root / "vnnlib" / property_file
    if not (model_path.exists() and prop_path.exists()):
        absent = ", ".join(str(p.relative_to(root)) for p in (model_path, prop_path) if not p.exists())
        how = ("set ACASXU_DIR to the acasxu folder, or unset it and set MILP_BENCHMARKS=/path/to/benchmarks"
               if os.environ.get("ACASXU_DIR", "").strip() else "set MILP_BENCHMARKS=/path/to/benchmarks, the folder holding acasxu/")
        reason = f"ACAS Xu data not found at {root}: missing {absent} ({how})"
        print(f"skipped: {reason}")
        return {"skipped": reason}
    network = load_onnx(model_path)
    reference = OnnxReference(model_path)
    prop = read_vnnlib(prop_path, network.input_dim, network.output_dim)
    box = prop.disjuncts[0].box
    print(f"{network_file}: {network.input_dim} inputs, {len(network.widths)} ReLU layers, {network.neuron_count} neurons, "
          f"{network.output_dim} outputs; {property_file}: {len(prop.disjuncts)} disjunct(s)")
    print(f"input box: {box.to_text()}")

    indices = list(range(network.output_dim)) if outputs is None else [int(i) for i in outputs]
    ranges = []
    for i in indices:
        found = output_range(network, box, [i], time_limit=range_seconds, reference=reference).outputs[0]
        ranges.append(found)
        name = OUTPUT_NAMES[i] if i < len(OUTPUT_NAMES) else f"y[{i}]"
        if found.status == "exact":
            print(f"  y[{i}] ({name}): exact range [{found.min:.6f}, {found.max:.6f}]")
        else:
            lo = "-inf" if found.min_bound is None else f"{found.min_bound:.6f}"
            hi = "+inf" if found.max_bound is None else f"{found.max_bound:.6f}"
            print(f"  y[{i}] ({name}): within [{lo}, {hi}] (proved bounds; exact range not finished in {range_seconds:g} s)")

    started = time.perf_counter()
    result, counterexample, how = _verdict(network, prop, reference, verify_seconds)
    seconds = time.perf_counter() - started
    meaning = {"unsat": "the unsafe set is unreachable: the property holds", "sat": "counterexample found (checked)"}
    print(f"verdict ({how}): {result} in {seconds:.1f} s" + (f" - {meaning[result]}" if result in meaning else ""))
    if counterexample is not None:
        print(f"  counterexample x = {np.round(counterexample, 6).tolist()}, y = {np.round(network(counterexample), 6).tolist()}")

    facts = {
        "network": network_file,
        "property": property_file,
        "neurons": network.neuron_count,
        "verdict": result,
        "counterexample": None if counterexample is None else np.asarray(counterexample).tolist(),
        "ranges": [
            {"output": r.index, "status": r.status, "min": r.min, "max": r.max, "min_bound": r.min_bound, "max_bound": r.max_bound,
             "argmin": None if r.argmin is None else r.argmin.tolist(), "argmax": None if r.argmax is None else r.argmax.tolist()}
            for r in ranges
        ],
        "exact_ranges": sum(r.status == "exact" for r in ranges),
    }
    facts.update(slice_zones(network, slice_half))
    summary = out / "output" / "acasxu.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(facts, indent=1))
    print(f"written: {summary}")
    return facts


if __name__ == "__main__":
    main()
