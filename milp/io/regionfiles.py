"""Region files: JSON Lines (streamed), one JSON document, or ``.npz`` — and reading them back.

JSON Lines (``.jsonl``), one object per line, each with a ``type``:

* ``{"type": "header", "format": "milp-regions", "version": 1, "model", "box": {"lower", "upper"},
  "conditions": [...], "neurons", "input_dim", "output_dim", "method", "tolerance"}``, and
  ``"input_names"`` when the model names its inputs; a run on a plane (``--slice``) adds
  ``"slice": {"origin", "u", "v"}``, and its box, inputs and regions are then in the plane
  coordinates ``(s, t)`` of ``x = origin + s * u + t * v``;
* ``{"type": "region", "pattern", "A", "b", "interior_point", "radius", "affine": {"C", "d"},
  "vertices", "volume"}`` — one per region, written as soon as it is found;
* ``{"type": "subproblem_done", "id": "0:3+,1:2-"}`` — written by a parallel run
  (:mod:`milp.enumeration.parallel`) after the last region of a finished subproblem, so that ``--resume``
  skips it; readers of regions ignore these lines;
* ``{"type": "neighbours", "pattern", "facets": [[row, pattern], ...]}`` — with ``--adjacency`` (or
  ``--merge``), one per region that has a listed neighbour, after the regions: the region across
  row ``row`` of the region's ``A`` (a row may appear more than once: several neighbours share it);
* ``{"type": "zone", "patterns", "A", "b", "interior_point", "radius", "vertices"}`` — with ``--merge``,
  after the regions: convex unions of the listed regions, each listing the patterns it covers;
* ``{"type": "footer", "complete": true|false, "stats": {...}}`` — last.

Readers written before neighbours and zones existed skip these lines (they read only ``region``
lines), and files without them read as having none.

A run cut short (Ctrl-C, a time limit, ``--max-regions``, even a killed process) leaves a
valid file: the reader ignores a torn last line, and a file without footer is incomplete.
``.json`` is ``{..header.., "regions": [...], "complete": .., "stats": ..}``; ``.npz`` holds arrays
(see :func:`write_npz`). Both are written from a ``.part.jsonl`` journal kept beside them
while the run goes on, so they can be resumed too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from milp.core.errors import InputError
from milp.core.region import Neighbour, PolytopeError, Region, Zone

__all__ = ["RegionFileError", "RegionFile", "RegionWriter", "load_regions", "read_region_file", "write_json", "write_npz", "FORMAT", "VERSION"]

FORMAT = "milp-regions"
VERSION = 1


class RegionFileError(InputError):
    """A region file that cannot be read or continued."""


@dataclass(frozen=True)
class RegionFile:
    """A region file's content: ``header`` (dict), ``regions``, ``complete`` and ``stats`` (footer, or {}).

    ``zones`` (:class:`~milp.core.region.Zone`) and ``neighbours`` (:class:`~milp.core.region.Neighbour`) are
    empty unless the run merged regions (``--merge``) or listed their adjacency (``--adjacency``).

    ``damage`` says what was skipped when a ``.jsonl`` file has a bad line before its end (a torn
    last line is a normal end and is not damage); the regions are then those before it.
    """

    header: dict
    regions: tuple[Region, ...]
    complete: bool
    stats: dict
    damage: str = ""
    zones: tuple[Zone, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()


def _journal(path: Path) -> Path:
    return path.with_name(path.name + ".part.jsonl")


def _extras(items: list[dict]) -> tuple[tuple[Zone, ...], tuple[Neighbour, ...]]:
    """Zones and neighbours from ``zone`` and ``neighbours`` records."""
    zones, neighbours = [], []
    for item in items:
        if item.get("type") == "zone":
            zones.append(Zone.from_dict(item))
        elif item.get("type") == "neighbours":
            neighbours += [Neighbour(str(item["pattern"]), int(row), str(other)) for row, other in item["facets"]]
    return tuple(zones), tuple(neighbours)


def _extra_records(zones, neighbours) -> list[dict]:
    """The ``neighbours`` records (one per region, in order of first appearance) then the ``zone`` records."""
    by_region: dict[str, list] = {}
    for n in neighbours:
        by_region.setdefault(n.region, []).append([n.facet, n.neighbour])
    records = [{"type": "neighbours", "pattern": p, "facets": f} for p, f in by_region.items()]
    return records + [{"type": "zone", **z.to_dict()} for z in zones]


def _read_jsonl(path: Path, extras: list | None = None) -> tuple[dict | None, list[dict], dict | None, int, str]:
    """``(header, region dicts, footer, bytes of good lines, damage)``; ``zone`` and ``neighbours``
    records go to ``extras`` when given.

    Reading stops at the first line that is not a JSON object. A torn last line (a process
    killed mid-write) is a normal end; a bad line with lines after it is damage, described
    in the last element ("" when none).
    """
    header, regions, footer, good, damage = None, [], None, 0, ""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                item = json.loads(raw) if raw.endswith(b"\n") else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                item = None
            if not isinstance(item, dict):
                rest = sum(1 for _ in f)
                if rest:  # not the last line: the file was damaged, not cut short
                    damage = f"line {number} is not a JSON object; it and the {rest} line(s) after it were not read"
                break
            good += len(raw)
            kind = item.get("type")
            if kind == "header":
                header = item
            elif kind == "region":
                regions.append(item)
            elif kind == "footer":
                footer = item
            elif kind in ("zone", "neighbours") and extras is not None:
                extras.append(item)
    return header, regions, footer, good, damage


def read_region_file(path) -> RegionFile:
    """Read a ``.jsonl``, ``.json`` or ``.npz`` region file (or the journal a killed run left)."""
    path = Path(path)
    if not path.exists() and _journal(path).exists():
        path = _journal(path)
    if not path.exists():
        raise RegionFileError(f"region file {str(path)!r} does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                missing = [name for name in ("header", "stats", "complete", "regions_json") if name not in data.files]
                if missing:
                    raise KeyError(missing[0])
                header = json.loads(str(data["header"]))
                stats = json.loads(str(data["stats"]))
                complete = bool(data["complete"])
                items = json.loads(str(data["regions_json"]))
                extras = json.loads(str(data["extras_json"])) if "extras_json" in data.files else []
            return RegionFile(_checked_header(header, path), tuple(Region.from_dict(r) for r in items), complete, stats, "", *_extras(extras))
        if path.suffix == ".json":
            with open(path) as f:
                doc = json.load(f)
            header = {k: v for k, v in doc.items() if k not in ("regions", "complete", "stats", "zones", "neighbours")}
            extras = [{"type": "zone", **z} for z in doc.get("zones", [])] + [{"type": "neighbours", **n} for n in doc.get("neighbours", [])]
            return RegionFile(_checked_header(header, path), tuple(Region.from_dict(r) for r in doc["regions"]), bool(doc.get("complete")),
                              doc.get("stats", {}), "", *_extras(extras))
    except RegionFileError:
        raise  # already names the file and the problem
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, PolytopeError) as error:  # JSONDecodeError is a ValueError
        if isinstance(error, KeyError):
            why = f"it has no {error} entry"
        elif "pickle" in str(error) or isinstance(error, EOFError):
            why = "not a region archive written by milp"
        else:
            why = str(error)
        raise RegionFileError(f"{str(path)!r} is not a readable region file: {why}") from None
    extras: list[dict] = []
    header, items, footer, _, damage = _read_jsonl(path, extras)
    if header is None:
        raise RegionFileError(f"{str(path)!r} is not a region file: no header line")
    complete = bool(footer and footer.get("complete")) and not damage
    try:
        found = _extras(extras)
    except (KeyError, TypeError, ValueError) as error:
        raise RegionFileError(f"{str(path)!r} has a bad zone or neighbours record: {error}") from None
    regions = []
    for number, item in enumerate(items, start=1):
        try:
            regions.append(Region.from_dict(item))
        except PolytopeError as error:
            raise RegionFileError(f"{str(path)!r}, region {number}: {error}") from None
    return RegionFile(_checked_header(header, path), tuple(regions), complete, (footer or {}).get("stats", {}), damage, *found)


def _checked_header(header: dict, path: Path) -> dict:
    """The header, once it is this format's, of a version this code reads, with whole numbers for its
    counts (the readers of a region file rely on them)."""
    if header.get("format", FORMAT) != FORMAT:
        raise RegionFileError(f"{str(path)!r} is not a region file: its header's format is {header.get('format')!r}, not {FORMAT!r}")
    version = header.get("version", VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version > VERSION:
        raise RegionFileError(f"{str(path)!r} has format version {version!r}; this milp reads up to version {VERSION}")
    for key in ("input_dim", "output_dim", "neurons"):
        value = header.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise RegionFileError(f"{str(path)!r}: the header's {key} must be a whole number, got {value!r}")
    return header


def load_regions(path) -> tuple[Region, ...]:
    """The regions of a region file (any of the three formats).

    >>> # regions = milp.load_regions("zones.jsonl"); regions[0].interior_point
    """
    return read_region_file(path).regions


def write_json(path: Path, header: dict, regions: Iterable[dict], complete: bool, stats: dict, extras: list[dict] = ()) -> None:
    doc = dict(header)
    doc["regions"] = list(regions)
    doc["complete"] = complete
    doc["stats"] = stats
    strip = lambda item: {k: v for k, v in item.items() if k != "type"}  # noqa: E731
    if any(e["type"] == "zone" for e in extras):
        doc["zones"] = [strip(e) for e in extras if e["type"] == "zone"]
    if any(e["type"] == "neighbours" for e in extras):
        doc["neighbours"] = [strip(e) for e in extras if e["type"] == "neighbours"]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def write_npz(path: Path, header: dict, regions: list[dict], complete: bool, stats: dict, extras: list[dict] = ()) -> None:
    """Arrays for numpy users: ``patterns`` (n, neurons) uint8, ``interior_points`` (n, d), ``radii`` (n,),
    ``A`` (rows, d) and ``b`` (rows,) of all regions stacked with ``row_offsets`` (n + 1,),
    ``C`` (n, m, d), ``d`` (n, m), ``volumes`` (n,) (NaN when not computed), ``thin`` (n,) bool, plus
    ``header``, ``stats``, ``regions_json`` and ``extras_json`` (the zone and neighbours records; JSON
    text) and ``complete``."""
    n, dim = len(regions), int(header["input_dim"])
    m = int(header["output_dim"])
    patterns = np.array([[c == "1" for c in r["pattern"]] for r in regions], dtype=np.uint8).reshape(n, -1)
    A = [np.array(r["A"], dtype=float).reshape(-1, dim) for r in regions]
    offsets = np.concatenate([[0], np.cumsum([a.shape[0] for a in A])]).astype(np.int64)
    arrays = dict(
        patterns=patterns,
        interior_points=np.array([r["interior_point"] for r in regions], dtype=float).reshape(n, dim),
        radii=np.array([r["radius"] for r in regions], dtype=float),
        A=np.vstack(A) if A else np.zeros((0, dim)),
        b=np.concatenate([np.array(r["b"], dtype=float) for r in regions]) if regions else np.zeros(0),
        row_offsets=offsets,
        C=np.array([r["affine"]["C"] for r in regions], dtype=float).reshape(n, m, dim),
        d=np.array([r["affine"]["d"] for r in regions], dtype=float).reshape(n, m),
        volumes=np.array([np.nan if r.get("volume") is None else r["volume"] for r in regions], dtype=float),
        thin=np.array([bool(r.get("thin", False)) for r in regions], dtype=bool),
        extras_json=np.array(json.dumps(list(extras))),
        header=np.array(json.dumps(header)),
        stats=np.array(json.dumps(stats)),
        regions_json=np.array(json.dumps(regions)),
        complete=np.array(bool(complete)),
    )
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


class RegionWriter:
    """Streams regions to ``path`` as they are found; ``.json``/``.npz`` are written by :meth:`close`.

    With ``resume=True`` an existing file (or journal) with the same header is continued: its
    regions are kept and :attr:`known_patterns` tells the search what to skip.
    """

    def __init__(self, path, header: dict, resume: bool = False):
        self.path = Path(path)
        if self.path.suffix not in (".jsonl", ".json", ".npz"):
            raise RegionFileError(f"output {str(self.path)!r}: use a .jsonl, .json or .npz file name")
        self.header = {"type": "header", "format": FORMAT, "version": VERSION, **header}
        self.stream_path = self.path if self.path.suffix == ".jsonl" else _journal(self.path)
        self.known: list[dict] = []
        self.done_subproblems: list[str] = []  # ids from "subproblem_done" lines of the resumed file
        if resume:
            self._load_previous()
        else:
            for stale in {self.stream_path, self.path}:
                if stale.exists():
                    stale.unlink()
        mode = "ab" if self.known or (resume and self.stream_path.exists()) else "wb"
        self.file = open(self.stream_path, mode)
        if mode == "wb":
            self._write_line(self.header)

    @property
    def known_patterns(self) -> set[str]:
        return {r["pattern"] for r in self.known}

    def _load_previous(self) -> None:
        source = self.stream_path if self.stream_path.exists() else None
        if source is None and self.path.exists() and self.path != self.stream_path:
            previous = read_region_file(self.path)
            self._check_header(previous.header)
            self.known = [r.to_dict() for r in previous.regions]
            self.done_subproblems = [str(i) for i in previous.stats.get("subproblems_done", [])]
            with open(self.stream_path, "wb") as f:
                f.write((json.dumps(self.header) + "\n").encode())
                for r in self.known:
                    f.write((json.dumps({"type": "region", **r}) + "\n").encode())
                for i in self.done_subproblems:
                    f.write((json.dumps({"type": "subproblem_done", "id": i}) + "\n").encode())
            return
        if source is None:
            return
        header, items, _, good, _ = _read_jsonl(source)
        if header is None:
            raise RegionFileError(f"cannot resume {str(source)!r}: it has no header line")
        self._check_header(header)
        self.known = [{k: v for k, v in r.items() if k != "type"} for r in items]
        # Drop the footer and any torn line, keep header and regions.
        with open(source, "rb") as f:
            lines = f.read(good).splitlines(keepends=True)
        with open(source, "wb") as f:
            for line in lines:
                item = json.loads(line)
                if item.get("type") == "subproblem_done":
                    self.done_subproblems.append(str(item["id"]))
                if item.get("type") not in ("footer", "zone", "neighbours"):  # recomputed at the end of the run
                    f.write(line)

    def _check_header(self, previous: dict) -> None:
        # a sliced run (header "slice") is resumed only on the same plane
        for key in ("model_sha256", "box", "conditions", "neurons", "tolerance", "slice"):
            if previous.get(key) != self.header.get(key):
                raise RegionFileError(f"cannot resume: the file was made with another {key} ({previous.get(key)!r})")

    def _write_line(self, item: dict) -> None:
        self.file.write((json.dumps(item) + "\n").encode())
        self.file.flush()

    def add(self, region: Region) -> None:
        item = region.to_dict()
        self.known.append(item)
        self._write_line({"type": "region", **item})

    def add_done(self, subproblem_id: str) -> None:
        """Record that every region of subproblem ``subproblem_id`` is written (a parallel run resumes past it)."""
        self.done_subproblems.append(subproblem_id)
        self._write_line({"type": "subproblem_done", "id": subproblem_id})

    def close(self, complete: bool, stats: dict, zones: Iterable[Zone] = (), neighbours: Iterable[Neighbour] = ()) -> None:
        """Write ``neighbours`` and ``zones`` (when given) and the footer; finish a ``.json`` or ``.npz`` file."""
        extras = _extra_records(tuple(zones), tuple(neighbours))
        for item in extras:
            self._write_line(item)
        self._write_line({"type": "footer", "complete": bool(complete), "stats": stats})
        self.file.close()
        header = {k: v for k, v in self.header.items() if k != "type"}
        if self.path.suffix != ".jsonl" and not complete and self.done_subproblems:
            # .json and .npz have no subproblem lines: an unfinished parallel run keeps them in its stats
            stats = {**stats, "subproblems_done": list(self.done_subproblems)}
        if self.path.suffix == ".json":
            write_json(self.path, header, self.known, complete, stats, extras)
        elif self.path.suffix == ".npz":
            write_npz(self.path, header, self.known, complete, stats, extras)
        if self.stream_path != self.path:
            self.stream_path.unlink()
