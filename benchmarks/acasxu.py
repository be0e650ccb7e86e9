"""Run the VNN-COMP ACAS Xu benchmark (or part of it) through :func:`milp.search.verify.verify`.

Reads ``instances.csv`` in the benchmark folder (rows: onnx path, vnnlib path, timeout in
seconds, paths relative to the folder), answers each instance with its own time limit and
writes one CSV row per instance: network, property, result, seconds, subproblems, MILP
calls (and the reason of a result other than sat/unsat). A ``sat`` is reported only after its
counterexample passed onnxruntime and the property's check (tolerance 1e-4). Prints a
progress line per instance, then the summary: sat, unsat, timeout, unknown, errors, total
and median seconds, and the ten slowest instances; with the competition's verdicts beside
``instances.csv`` (``results_2022.csv``, as in ``mnist_fc``), how many agree and every wrong one.
Any VNN-COMP folder of this layout runs the same way (``python benchmarks/acasxu.py ../shared/benchmarks/mnist_fc``).

    python benchmarks/acasxu.py --timeout 116 --out acasxu.csv
    python benchmarks/acasxu.py --workers 2 --filter "prop_2" --limit 10
    python benchmarks/acasxu.py /path/to/acasxu --limit 10
    python benchmarks/acasxu.py ../shared/benchmarks/mnist_fc --processes 2 --filter "256x4,prop_7_0.05" --milp-arm 0

The benchmark folder is the positional argument if given, else ``$MILP_BENCHMARKS/acasxu``, else
``../shared/benchmarks/acasxu`` beside the checkout (see ``benchmarks/data.py``); a folder without
``instances.csv`` or ``onnx/`` stops the script with one line on stderr and exit status 2.

With ``--workers N`` the instances run in N processes; each instance's clock starts in its
worker, so its time limit is its own however long it waited in the queue. BLAS is kept to
one thread per process so that N workers use N cores.
"""

from __future__ import annotations

import os

# One core per worker: set before numpy loads its BLAS.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import asdict, dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import data  # noqa: E402  (benchmarks/data.py: where the benchmark data is)

COLUMNS = ("network", "property", "result", "seconds", "subproblems", "milp_calls", "reason")


@dataclass(frozen=True)
class Instance:
    """One row of instances.csv: the model and property files (absolute) and the time limit (s)."""

    onnx: Path
    vnnlib: Path
    timeout: float

    @property
    def network(self) -> str:
        """``1_1`` for ``ACASXU_run2a_1_1_batch_2000.onnx`` (the file's stem otherwise)."""
        match = re.search(r"(\d+_\d+)", self.onnx.stem)
        return match.group(1) if match else self.onnx.stem

    @property
    def prop(self) -> str:
        """``prop_1`` for ``prop_1.vnnlib``, ``prop_6_0.03`` for ``prop_6_0.03.vnnlib``."""
        return self.vnnlib.name.removesuffix(".gz").removesuffix(".vnnlib")

    @property
    def ident(self) -> str:
        """``net,prop``, e.g. ``3_3,prop_2``: what --filter matches."""
        return f"{self.network},{self.prop}"


@dataclass(frozen=True)
class Row:
    """The outcome of one instance (one CSV row)."""

    network: str
    property: str
    result: str
    seconds: float
    subproblems: int
    milp_calls: int
    reason: str = ""


def read_instances(folder: Path) -> list[Instance]:
    """The rows of ``folder/instances.csv`` (blank lines skipped)."""
    listing = folder / "instances.csv"
    if not listing.exists():
        raise SystemExit(f"acasxu.py: error: {listing} does not exist")
    instances = []
    with open(listing, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise SystemExit(f"acasxu.py: error: {listing} line {number}: expected onnx,vnnlib,timeout")
            instances.append(Instance(folder / row[0].strip(), folder / row[1].strip(), float(row[2])))
    return instances


def run_instance(instance: Instance, timeout: float | None, seed: int, processes: int = 1, milp_arm: float | None = None) -> Row:
    """Answer one instance in this process (and ``processes - 1`` helpers for its refinement, then its
    MILP arm of ``milp_arm`` seconds, None for the default); any failure is an ``error`` row, never an
    exception."""
    started = time.perf_counter()
    try:
        from importers import OnnxReference, load_onnx
        from milp.search.branch import Settings
        from milp.search.verify import verify
        from milp.io.vnnlib import read_vnnlib

        network = load_onnx(instance.onnx)
        reference = OnnxReference(instance.onnx)
        prop = read_vnnlib(instance.vnnlib, network.input_dim, network.output_dim)
        # the time limit counts from the start of this instance's work, loading included
        limit = (instance.timeout if timeout is None else timeout) - (time.perf_counter() - started)
        if limit <= 0:
            return Row(instance.network, instance.prop, "timeout", time.perf_counter() - started, 0, 0, "loading took the time")
        settings = Settings(refine_workers=processes)
        if milp_arm is not None:
            settings = replace(settings, milp_arm=milp_arm)
        verdict = verify(network, prop, timeout=limit, reference=reference, seed=seed, settings=settings)
        return Row(instance.network, instance.prop, verdict.result, time.perf_counter() - started,
                   verdict.subproblems, verdict.milp_calls, verdict.reason)
    except Exception as error:  # an error is one of the answers
        return Row(instance.network, instance.prop, "error", time.perf_counter() - started, 0, 0,
                   f"{type(error).__name__}: {error}")


def select(instances: list[Instance], pattern: str | None, limit: int | None) -> list[Instance]:
    """Instances whose ``net,prop`` id (e.g. ``3_3,prop_2``) contains ``pattern`` or matches it as a regex."""
    if pattern:
        regex = re.compile(pattern)
        instances = [i for i in instances if pattern in i.ident or regex.search(i.ident)]
    return instances[:limit] if limit is not None else instances


def read_truth(folder: Path) -> dict[str, str]:
    """The competition's verdicts (``results_2022.csv``: onnx, vnnlib, truth, ...) by ``net,prop`` id, if present."""
    listing = folder / "results_2022.csv"
    if not listing.exists():
        return {}
    with open(listing, newline="") as handle:
        return {Instance(folder / row["onnx"], folder / row["vnnlib"], 0.0).ident: row["truth"] for row in csv.DictReader(handle)}


def against_truth(rows: list[Row], truth: dict[str, str]) -> str:
    """How many answers agree with the competition's verdicts; a sat/unsat that contradicts one is WRONG."""
    known = [r for r in rows if truth.get(f"{r.network},{r.property}") in ("sat", "unsat")]
    wrong = [r for r in known if r.result in ("sat", "unsat") and r.result != truth[f"{r.network},{r.property}"]]
    solved = sum(r.result == truth[f"{r.network},{r.property}"] for r in known)
    lines = [f"against the competition's verdicts: {solved} of {len(known)} solved, {len(wrong)} wrong"]
    lines += [f"  WRONG: {r.network} {r.property}: {r.result}, the competition says {truth[f'{r.network},{r.property}']}" for r in wrong]
    return "\n".join(lines)


def summary(rows: list[Row], wall: float) -> str:
    """The summary text: counts per result, total / median seconds and the ten slowest instances."""
    counts = {word: sum(r.result == word for r in rows) for word in ("sat", "unsat", "timeout", "unknown", "error")}
    seconds = [r.seconds for r in rows]
    lines = [
        f"instances {len(rows)}: sat {counts['sat']}, unsat {counts['unsat']}, timeout {counts['timeout']}, "
        f"unknown {counts['unknown']}, errors {counts['error']}",
        f"seconds: total {sum(seconds):.1f}, median {statistics.median(seconds) if seconds else 0.0:.2f}, wall clock {wall:.1f}",
        "slowest ten:",
    ]
    for r in sorted(rows, key=lambda r: -r.seconds)[:10]:
        lines.append(f"  {r.network:>5s} {r.property:8s} {r.result:8s} {r.seconds:8.2f} s  {r.subproblems} subproblems, {r.milp_calls} MILP")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the ACAS Xu VNN-COMP benchmark (instances.csv) through milp.search.verify; write a CSV and print a summary.",
        epilog=(
            "data: folder if given, else $MILP_BENCHMARKS/acasxu, else ../shared/benchmarks/acasxu beside the checkout\n"
            f"(here: {data.root() / 'acasxu'})\n\n"
            "examples:\n"
            "  python benchmarks/acasxu.py --timeout 116 --out acasxu.csv\n"
            "  python benchmarks/acasxu.py --workers 2\n"
            "  python benchmarks/acasxu.py ../shared/benchmarks/mnist_fc --processes 2   (one instance at a time, 2 processes each)\n"
            '  python benchmarks/acasxu.py --filter "^3_3,prop_2$" --limit 1\n'
            "  MILP_BENCHMARKS=/path/to/benchmarks python benchmarks/acasxu.py --limit 10\n"
            "  python benchmarks/acasxu.py /path/to/acasxu --limit 10"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, nargs="?", default=None,
                        help="the benchmark folder holding instances.csv, onnx/ and vnnlib/ (default: $MILP_BENCHMARKS/acasxu, "
                             "else ../shared/benchmarks/acasxu beside the checkout)")
    parser.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds per instance (default: each row's own timeout)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the CSV here (default: acasxu.csv in the working folder)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="instances run in N processes (default 1)")
    parser.add_argument("--filter", default=None, metavar="TEXT", help='only instances whose "net,prop" id (e.g. "3_3,prop_2") contains TEXT or matches it as a regex')
    parser.add_argument("--limit", type=int, default=None, metavar="K", help="only the first K instances (after --filter)")
    parser.add_argument("--processes", type=int, default=1, metavar="P",
                        help="processes each instance uses (default 1): on wide inputs, its neuron-by-neuron refinement of "
                             "intermediate bounds is shared among them. Keep workers x processes within the cores")
    parser.add_argument("--milp-arm", type=float, default=None, metavar="S",
                        help="with --processes 2 or more: each disjunct's first whole-box MILP beside a search restarted from "
                             "refined bounds stops after S seconds (default 20; 0: no such MILPs, the baseline)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random search (default 0)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.milp_arm is not None and not args.milp_arm >= 0:
        parser.error("--milp-arm must be 0 or more seconds")
    folder = data.require("acasxu", args.folder, usage="python benchmarks/acasxu.py /path/to/acasxu")
    try:
        instances = select(read_instances(folder), args.filter, args.limit)
    except re.error as error:
        parser.error(f"--filter is neither a substring nor a valid regex: {error}")
    if not instances:
        print("no instance selected", file=sys.stderr)
        return 2
    out = args.out or Path("acasxu.csv")
    started = time.perf_counter()
    rows: list[Row] = []
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()

        def record(row: Row) -> None:
            rows.append(row)
            writer.writerow({k: (f"{v:.3f}" if k == "seconds" else v) for k, v in asdict(row).items()})
            handle.flush()
            print(f"[{len(rows):3d}/{len(instances)}] {row.network:>5s} {row.property:8s} {row.result:8s} {row.seconds:7.2f} s"
                  f"  ({row.subproblems} subproblems, {row.milp_calls} MILP){'  ' + row.reason if row.result not in ('sat', 'unsat') and row.reason else ''}",
                  flush=True)

        if args.workers == 1:
            for instance in instances:
                record(run_instance(instance, args.timeout, args.seed, args.processes, args.milp_arm))
        else:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                futures = [pool.submit(run_instance, instance, args.timeout, args.seed, args.processes, args.milp_arm) for instance in instances]
                for future in as_completed(futures):
                    record(future.result())
    print(summary(rows, time.perf_counter() - started))
    truth = read_truth(folder)
    if truth:
        print(against_truth(rows, truth))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
