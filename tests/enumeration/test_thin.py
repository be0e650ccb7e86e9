"""Regions thinner than the tolerance are listed (marked thin), decided in rational arithmetic.

The nets are built by hand so that the truth is known without any solver::

    sliver:   z0 = a . x,  z1 = a . x - 1e-9,  y = h0 + h1      over [-1, 1]^2
              '11': a . x > 1e-9      '10': 0 < a . x <= 1e-9 (a sliver of width 1e-9 / |a|)
              '00': a . x <= 0        '01': empty (a . x <= 0 and a . x > 1e-9)
    mirrored: z0 = x0,  z1 = -x0
              '10': x0 > 0,  '01': x0 < 0;  '00' is the line x0 = 0 (zero volume), '11' is empty
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import oracle
from milp import Network, parse_box
from milp.cli.main import main
from milp.enumeration.certify import certify_interior
from milp.enumeration.engines import regions
from milp.io.regionfiles import read_region_file

WIDTH = 1e-9
BOX = "-1:1"


def sliver(a) -> Network:
    a = np.asarray(a, dtype=float)
    return Network.mlp([(np.vstack([a, a]), np.array([0.0, -WIDTH])), (np.ones((1, 2)), np.zeros(1))])


@pytest.mark.parametrize("a", [[1.0, 0.0], [1.0, 1.0], [0.6, -0.8]], ids=["axis", "diagonal", "tilted"])
@pytest.mark.parametrize("where", [[], ["y[0] > 0"]])
def test_a_sliver_of_width_1e_9_is_listed_as_thin(a, where):
    net, box = sliver(a), parse_box(BOX, 2)
    search = regions(net, box, where)
    found = {r.pattern: r for r in search}
    assert search.complete
    expected = {"11", "10"} | ({"00"} if not where else set())
    assert set(found) == expected
    thin = found["10"]
    norm = float(np.linalg.norm(a))
    assert thin.thin and not any(r.thin for p, r in found.items() if p != "10")
    # its largest ball has half the sliver's width, below the tolerance (1e-7 * 2)
    assert thin.radius == pytest.approx(WIDTH / norm / 2, rel=1e-3)
    assert thin.radius < 2e-7
    # a point placed by hand in the sliver has the pattern '10' by a plain forward pass
    middle = np.array(a) / norm**2 * WIDTH / 2 + 0.3 * np.array([-a[1], a[0]]) / norm
    assert oracle.patterns(net, middle[None, :]) == ["10"]
    assert oracle.patterns(net, thin.interior_point[None, :]) == ["10"]
    # the sliver's area: its width times the length of the line a . x = 0 inside the box
    assert thin.volume == pytest.approx(WIDTH / norm * _chord(np.array(a) / norm), rel=1e-3)
    # the oracle lists the regions above the tolerance: the same, without the sliver
    truth = oracle.enumerate_regions(net, box.lower, box.upper, [] if not where else __import__("milp").parse_conditions(net, where))
    assert set(truth) == expected - {"10"}
    assert search.stats.thin_regions == 1 and search.stats.thin_undecided == 0


def _chord(unit) -> float:
    """Length of the line unit . x = 0 inside [-1, 1]^2."""
    direction = np.array([-unit[1], unit[0]])
    return 2.0 / np.max(np.abs(direction))


def test_a_line_of_zero_volume_is_counted_not_listed():
    net = Network.mlp([(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])
    search = regions(net, parse_box(BOX, 2))
    assert {r.pattern for r in search} == {"10", "01"}
    assert search.complete and search.stats.thin_regions == 0
    assert search.stats.lower_dimensional == 2  # '00' (the line x0 = 0) and '11' (only x0 = 0 in the closure)


def test_the_parallel_search_lists_the_sliver_too():
    from milp.enumeration.parallel import parallel_regions

    net, box = sliver([1.0, 1.0]), parse_box(BOX, 2)
    found = {r.pattern: r.thin for r in parallel_regions(net, box, workers=1)}
    assert found == {"11": False, "10": True, "00": False}


def test_thin_regions_are_marked_in_the_file(tmp_path, capsys):
    from importers import save_onnx

    model = tmp_path / "sliver.onnx"
    save_onnx(sliver([1.0, 0.0]), model)
    for suffix in (".jsonl", ".npz"):
        out = tmp_path / f"regions{suffix}"
        assert main(["regions", str(model), "--box", BOX, "-o", str(out), "--quiet", "--no-check"]) == 0
        content = read_region_file(out)
        assert {r.pattern: r.thin for r in content.regions} == {"11": False, "10": True, "00": False}
    assert "thin" in capsys.readouterr().out


def _exact_slack(A, b, x):
    return min(Fraction(float(bi)) - sum(Fraction(float(a)) * Fraction(float(xi)) for a, xi in zip(row, x)) for row, bi in zip(A, b))


def test_certificates():
    square = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    free, origin = np.ones(2, dtype=bool), np.zeros(2)
    # a sliver of width 1e-12 between two parallel rows: certified, the point checked here again
    A = np.vstack([square, [[-1.0, -1.0], [1.0, 1.0]]])
    found = certify_interior(A, np.array([1, 1, 1, 1, 0, 1e-12]), free, origin)
    assert found.interior and 0 < found.radius < 1e-12
    # the same rows meeting on a line: no interior, the closed set is the line (flat)
    found = certify_interior(A, np.array([1, 1, 1, 1, 0, 0.0]), free, origin)
    assert found.verdict == "empty" and found.flat
    # crossed: not even the closed set
    found = certify_interior(A, np.array([1, 1, 1, 1, 0, -1e-12]), free, origin)
    assert found.verdict == "empty" and not found.flat
    # a fixed input folded in exactly: x1 = 0.5 pinned, sliver in x0
    A = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    found = certify_interior(A, np.array([1.0, 1.0, 0.5 + 3e-10]), np.array([True, False]), np.array([0.0, 0.5]))
    assert found.interior and found.point[1] == 0.5 and found.point[0] > -1.0


def test_an_empty_set_behind_nearer_rows_is_certified_empty():
    """x0 >= 1.1 and x0 <= 1.0 cross inside a 5-D box, while a dozen rows (x_k >= 1.5 to 1.8, slightly
    tilted, met together near a corner) lie nearer the origin: the Farkas certificate is not among the
    rows nearest the origin, so it must come from the LP's own basis (such a piece was once left
    undecided on the whole ACAS Xu box)."""
    rng = np.random.default_rng(0)
    d = 5
    eye = np.eye(d)
    decoys = np.vstack([-eye[1 + i % 4] + 0.01 * rng.standard_normal(d) for i in range(12)])
    A = np.vstack([eye, -eye, decoys, [-eye[0]], [eye[0]]])
    b = np.concatenate([np.full(2 * d, 2.0), -rng.uniform(1.5, 1.8, 12), [-1.1], [1.0]])
    found = certify_interior(A, b, np.ones(d, dtype=bool), np.zeros(d))
    assert found.verdict == "empty" and not found.flat
    # the two rows the other way round hold a slab: certified interior, checked here again
    b[-2:] = [-1.0, 1.1]
    found = certify_interior(A, b, np.ones(d, dtype=bool), np.zeros(d))
    assert found.interior and np.all(A @ found.point < b)


@pytest.mark.slow
def test_acasxu_thin_pieces_are_listed_and_the_count_is_nnenums():
    """ACAS Xu 1_1, property-3 box shrunk 2x around its centre: nnenum (a separate enumerator, run beside
    this project) counts 5,711 regions; 5 of them have Chebyshev radii below the tolerance, which used to
    be skipped. Each thin one's certified point has its pattern by a plain forward pass."""
    from conftest import ACASXU, ACASXU_SKIP

    model = ACASXU / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx"
    if not model.exists():
        pytest.skip(ACASXU_SKIP)
    from importers import load_onnx
    from milp import Box

    lower = np.array([-0.303531156, -0.009549297, 0.493380324, 0.3, 0.3])
    upper = np.array([-0.298552812, 0.009549297, 0.5, 0.5, 0.5])
    centre, half = (lower + upper) / 2, (upper - lower) / 4
    net = load_onnx(model)
    search = regions(net, Box(centre - half, centre + half))
    found = list(search)
    assert search.complete and len(found) == 5711 == len({r.pattern for r in found})
    thin = [r for r in found if r.thin]
    assert len(thin) == search.stats.thin_regions == 5 and search.stats.thin_undecided == 0
    tolerance = 1e-7 * max(1.0, float(np.max(2 * half)))
    for region in thin:
        assert 0 < region.radius <= tolerance
        assert oracle.patterns(net, region.interior_point[None, :]) == [region.pattern]
