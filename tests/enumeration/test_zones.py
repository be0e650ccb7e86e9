"""Zones and adjacency against independent truth: dense sampling with the oracle's own forward pass, probes
stepped across facets, polygon areas by the shoelace formula, and convex hulls by qhull."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

import oracle
from milp import parse_box, parse_conditions
from milp.core.region import Zone
from milp.enumeration.engines import regions
from milp.enumeration.zones import adjacency, merge_regions, neighbours_of
from milp.io.regionfiles import read_region_file
from milp.viz.plot import shoelace_area
from nets import chained_net, random_mlp, un_relu_toy

CASES = {
    "toy y0>0": (un_relu_toy, "-5:5", ["y[0] > 0"]),
    "toy all": (un_relu_toy, "-5:5", []),
    "chained y0>0": (lambda: chained_net(2), "-6:6", ["y[0] > 0"]),
    "mlp y0-y1>0": (lambda: random_mlp(np.random.default_rng(3), [2, 8, 8, 2]), "-2:2", ["y[0] - y[1] > 0"]),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    make, box_text, where = CASES[request.param]
    net = make()
    box = parse_box(box_text, 2)
    found = list(regions(net, box, where))
    neighbours = adjacency(found)
    return net, box, where, found, neighbours, merge_regions(found, neighbours)


def _holds(net, where, x):
    conditions = parse_conditions(net, where)
    ok = np.ones(len(x), dtype=bool)
    for c in conditions:
        ok &= oracle.form_values(net, c.expression, x) > 0
    return ok


def test_zones_cover_exactly_the_union_of_the_regions(case):
    net, box, where, found, _, zones = case
    assert 0 < len(zones) <= len(found)
    # the pattern lists partition the regions
    listed = [p for z in zones for p in z.patterns]
    assert sorted(listed) == sorted(r.pattern for r in found)
    x = box.sample(40_000, np.random.default_rng(5))
    loose = np.array([z.contains(x, tol=1e-7) for z in zones])  # (zones, n)
    strict = np.array([z.contains(x, tol=-1e-7) for z in zones])
    assert np.all(strict.sum(axis=0) <= 1)  # interiors are disjoint
    holds = _holds(net, where, x)
    assert holds.any()
    assert np.all(loose[:, holds].sum(axis=0) >= 1)  # where the condition holds: in a zone
    if where:
        margins = np.min([oracle.form_values(net, c.expression, x) for c in parse_conditions(net, where)], axis=0)
        assert not strict[:, margins < -1e-6].any()  # where it fails: in none
    # a point strictly inside a zone has one of the zone's patterns (forward pass of the oracle)
    patterns = oracle.patterns(net, x)
    for k, zone in enumerate(zones):
        inside = np.flatnonzero(strict[k])
        assert {patterns[i] for i in inside} <= set(zone.patterns)


def test_each_zone_is_the_convex_union_of_its_regions(case):
    _, _, _, found, _, zones = case
    by_pattern = {r.pattern: r for r in found}
    for zone in zones:
        pieces = [by_pattern[p] for p in zone.patterns]
        for r in pieces:  # every region lies in its zone
            assert np.all(r.vertices @ zone.A.T <= zone.b + 1e-7)
        # the zone's polygon has the area of its regions together: the zone is their union
        assert shoelace_area(zone.vertices) == pytest.approx(sum(r.volume for r in pieces), rel=1e-7, abs=1e-9)
        # and it is convex: its vertices are those of their convex hull
        hull = ConvexHull(np.vstack([r.vertices for r in pieces]))
        assert hull.volume == pytest.approx(shoelace_area(zone.vertices), rel=1e-7, abs=1e-9)


def test_no_two_neighbouring_zones_have_a_convex_union(case):
    """Greedy merging stops only when every pair of touching zones is non-convex (convex hull by qhull)."""
    _, _, _, found, neighbours, zones = case
    zone_of = {p: k for k, z in enumerate(zones) for p in z.patterns}
    pairs = {tuple(sorted((zone_of[n.region], zone_of[n.neighbour]))) for n in neighbours} - {(k, k) for k in range(len(zones))}
    for i, j in pairs:
        both = np.vstack([zones[i].vertices, zones[j].vertices])
        union_area = shoelace_area(zones[i].vertices) + shoelace_area(zones[j].vertices)
        assert ConvexHull(both).volume > union_area * (1 + 1e-9) + 1e-12


def test_the_toy_merges_into_three_zones():
    net, box = un_relu_toy(), parse_box("-5:5", 2)
    found = list(regions(net, box, ["y[0] > 0"]))
    assert len(found) == 7 and len(merge_regions(found)) == 3


def _edges(region):
    """Each polygon edge as (start, end, outward unit normal), from the vertices alone."""
    v = region.vertices
    for k in range(len(v)):
        a, b = v[k - 1], v[k]
        direction = (b - a) / np.linalg.norm(b - a)
        yield a, b, np.array([direction[1], -direction[0]])  # counter-clockwise: outward is to the right


def test_adjacency_matches_probes_across_every_edge(case):
    net, box, where, found, neighbours, _ = case
    listed = {r.pattern: r for r in found}
    computed = {(n.region, n.neighbour) for n in neighbours}
    assert computed == {(b, a) for a, b in computed}  # listed from both sides
    probed = set()
    for r in found:
        for a, b, normal in _edges(r):
            for t in np.linspace(0.02, 0.98, 25):
                q = a + t * (b - a) + 1e-6 * normal
                if not box.contains(q) or not _holds(net, where, q[None, :])[0]:
                    continue
                other = oracle.patterns(net, q[None, :])[0]
                if other in listed and other != r.pattern:
                    probed.add((r.pattern, other))
    assert probed and probed <= computed
    # and every computed pair is seen by a probe at the middle of the shared piece of edge
    for n in neighbours:
        R, N = listed[n.region], listed[n.neighbour]
        normal, offset = R.A[n.facet], R.b[n.facet]
        along = np.array([-normal[1], normal[0]])
        spans = [np.sort(v[np.abs(v @ normal - offset) < 1e-7] @ along) for v in (R.vertices, N.vertices)]
        lo, hi = max(spans[0][0], spans[1][0]), min(spans[0][-1], spans[1][-1])
        assert hi > lo
        middle = normal * offset + along * (lo + hi) / 2
        assert oracle.patterns(net, (middle + 1e-6 * normal)[None, :])[0] == n.neighbour
        assert oracle.patterns(net, (middle - 1e-6 * normal)[None, :])[0] == n.region


def test_adjacency_by_lp_agrees_with_the_polygon_route(case, monkeypatch):
    """Without vertices the shared piece is found by an LP in the hyperplane: the same pairs."""
    _, _, _, found, neighbours, _ = case
    from dataclasses import replace

    bare = [replace(r, vertices=None) for r in found]
    assert adjacency(bare) == neighbours


def test_merging_by_lp_agrees_with_the_polygon_route(case):
    """Without vertices a row's maximum over a piece comes from an LP: the same zones."""
    _, _, _, found, neighbours, zones = case
    from dataclasses import replace

    bare = merge_regions([replace(r, vertices=None) for r in found], neighbours)
    assert [z.patterns for z in bare] == [z.patterns for z in zones]


def test_file_round_trip_and_cli(tmp_path):
    from importers import save_onnx
    from milp.cli.main import main

    model = tmp_path / "toy.onnx"
    save_onnx(un_relu_toy(), model)
    for suffix in (".jsonl", ".json", ".npz"):
        out = tmp_path / f"zones{suffix}"
        assert main(["regions", str(model), "--box", "-5:5", "--where", "y[0] > 0", "-o", str(out), "--merge", "--quiet"]) == 0
        content = read_region_file(out)
        assert len(content.regions) == 7 and len(content.zones) == 3 and content.complete
        assert all(isinstance(z, Zone) for z in content.zones)
        expected = adjacency(content.regions)
        assert content.neighbours == expected
        assert set(neighbours_of(expected)) <= {r.pattern for r in content.regions}
    only = tmp_path / "adjacency.jsonl"
    assert main(["regions", str(model), "--box", "-5:5", "-o", str(only), "--adjacency", "--quiet"]) == 0
    content = read_region_file(only)
    assert content.zones == () and content.neighbours == adjacency(content.regions) != ()
    picture = tmp_path / "zones.png"
    assert main(["plot", str(tmp_path / "zones.jsonl"), "-o", str(picture), "--draw", "zones"]) == 0
    assert picture.stat().st_size > 5000


def test_bad_draw_value_is_one_line_and_exit_2(tmp_path, capsys):
    from importers import save_onnx
    from milp.cli.main import main

    model = tmp_path / "toy.onnx"
    save_onnx(un_relu_toy(), model)
    out = tmp_path / "zones.jsonl"
    assert main(["regions", str(model), "--box", "-5:5", "-o", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["plot", str(out), "-o", str(tmp_path / "p.png"), "--draw", "zonez"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "--draw" in captured.err
