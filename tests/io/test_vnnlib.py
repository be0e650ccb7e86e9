"""VNN-LIB reading: every supported construct, every error (with its line), the ACAS Xu files
against an independent regex reading of them, and agreement of the disjunctive normal form
with a direct evaluation of the formula at many points (the truth the DNF must preserve)."""

from __future__ import annotations

import gzip
import math
import operator
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milp.core.box import Box
from milp.io.vnnlib import (
    Disjunct,
    VnnlibError,
    VnnlibProperty,
    check_counterexample,
    read_counterexample,
    read_vnnlib,
    write_counterexample,
)

from conftest import ACASXU, ACASXU_SKIP  # $MILP_BENCHMARKS/acasxu, else ../shared/benchmarks/acasxu
needs_acasxu = pytest.mark.skipif(not (ACASXU / "vnnlib").is_dir(), reason=ACASXU_SKIP)


# ------------------------------------------------------------------ independent truth
def _sexprs(text: str) -> list:
    """Nested Python lists of tokens; shares nothing with the reader under test."""
    tokens = re.findall(r"\(|\)|[^\s()]+", re.sub(r";[^\n]*", "", text))
    stack: list[list] = [[]]
    for token in tokens:
        if token == "(":
            stack.append([])
        elif token == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    assert len(stack) == 1
    return stack[0]


_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.le, ">": operator.ge, "=": operator.eq}  # closure


def holds(text: str, values: dict[str, float]) -> bool:
    """Whether every assert of ``text`` holds at ``values`` (name -> number), evaluated directly.

    ``<`` and ``>`` are read as ``<=`` and ``>=``: the reader documents that it returns the
    closure of the unsafe set, as the competition does.
    """

    def term(e):
        if isinstance(e, str):
            return values[e] if e in values else float(e)
        op, *args = e
        vals = [term(a) for a in args]
        if op == "+":
            return sum(vals)
        if op == "-":
            return -vals[0] if len(vals) == 1 else vals[0] - sum(vals[1:])
        if op == "*":
            return math.prod(vals)
        raise AssertionError(op)

    def formula(e):
        op, *args = e
        if op == "and":
            return all(formula(a) for a in args)
        if op == "or":
            return any(formula(a) for a in args)
        vals = [term(a) for a in args]
        return all(_OPS[op](a, b) for a, b in zip(vals, vals[1:]))

    return all(formula(e[1]) for e in _sexprs(text) if e[0] == "assert")


def declared(text: str, letter: str) -> list[str]:
    return [e[1] for e in _sexprs(text) if e[0] == "declare-const" and e[1].startswith(letter + "_")]


def agree_at(text: str, prop: VnnlibProperty, xs: np.ndarray, ys: np.ndarray, x_names, y_names) -> int:
    """Check the DNF against direct evaluation at every (x, y); return how many were unsafe."""
    unsafe = 0
    for x, y in zip(xs, ys):
        values = dict(zip(x_names, x)) | dict(zip(y_names, y))
        truth = holds(text, values)
        assert check_counterexample(prop, x, y, tol=0.0) == truth, f"disagree at x={x}, y={y}"
        unsafe += truth
    return unsafe


def constants_of(text: str) -> list[float]:
    return sorted({float(t) for t in re.findall(r"(?<![\w.])-?\d+\.?\d*(?:[eE][+-]?\d+)?(?![\w.])", re.sub(r";[^\n]*", "", text))})


def boundary_points(text: str, n_vars: int, rng: np.random.Generator, n: int) -> np.ndarray:
    """Points whose coordinates are the file's constants (so bounds and ties are hit exactly) or near them."""
    pool = np.array(constants_of(text) + [0.0, 1.0, -1.0])
    picks = rng.choice(pool, size=(n, n_vars))
    jitter = rng.choice([0.0, 0.0, 1e-9, -1e-9, 0.01, -0.01], size=(n, n_vars))
    return picks + jitter


# ------------------------------------------------------------------ constructs
HEADER2 = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
BOX2 = "(assert (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1)))\n"


def test_every_construct_reads_as_expected():
    text = """; a comment with (parentheses) that must be ignored: (assert (<= X_0 99))
(declare-const X_0 Real) ; trailing comment
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
(assert (>= X_0 -1))
(assert (<= X_0 1.5e0))
(assert (= X_1 0.25))                        ; equality fixes an input
(assert
  (or
    (and (<= Y_0 Y_1) (> Y_2 (- 3)))         ; var-var, strict, (- c)
    (and (<= (+ Y_0 (* 2 Y_1) (- Y_2)) 0.5)  ; linear combination
         (<= -1 Y_1 4))                      ; chain: -1 <= Y_1 <= 4
    (or (and (>= (- Y_0 Y_1 1) 0)))))        ; nested, n-ary minus
"""
    prop = read_vnnlib(text, n_inputs=2, n_outputs=3)
    assert (prop.n_inputs, prop.n_outputs, len(prop.disjuncts)) == (2, 3, 3)
    assert prop.has_strict
    for d in prop.disjuncts:  # one shared box, from the top-level asserts
        np.testing.assert_array_equal(d.box.lower, [-1.0, 0.25])
        np.testing.assert_array_equal(d.box.upper, [1.5, 0.25])
    first, second, third = prop.disjuncts
    np.testing.assert_array_equal(first.output_rows, [[1, -1, 0], [0, 0, -1]])
    np.testing.assert_array_equal(first.output_rhs, [0, 3])
    np.testing.assert_array_equal(first.output_strict, [False, True])
    np.testing.assert_array_equal(second.output_rows, [[1, 2, -1], [0, -1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(second.output_rhs, [0.5, 1, 4])
    np.testing.assert_array_equal(third.output_rows, [[-1, 1, 0]])
    np.testing.assert_array_equal(third.output_rhs, [-1])

    rng = np.random.default_rng(0)
    xs, ys = boundary_points(text, 2, rng, 3000), boundary_points(text, 3, rng, 3000)
    assert agree_at(text, prop, xs, ys, ["X_0", "X_1"], ["Y_0", "Y_1", "Y_2"]) > 50


def test_multi_index_names_flatten_row_major_whatever_the_declaration_order():
    names = [f"X_{a}_{b}" for a in range(2) for b in range(3)]
    order = [4, 0, 5, 2, 1, 3]  # declared shuffled
    lines = [f"(declare-const {names[i]} Real)" for i in order] + ["(declare-const Y_0_0 Real)", "(declare-const Y_0_1 Real)"]
    for name in names:
        a, b = map(int, name.split("_")[1:])
        lines.append(f"(assert (and (>= {name} {10 * a + b}) (<= {name} {10 * a + b + 0.5})))")
    lines.append("(assert (<= Y_0_1 Y_0_0))")
    prop = read_vnnlib("\n".join(lines), n_inputs=6, n_outputs=2)
    (d,) = prop.disjuncts
    np.testing.assert_array_equal(d.box.lower, [0, 1, 2, 10, 11, 12])  # C order of (a, b)
    np.testing.assert_array_equal(d.box.upper, np.array([0, 1, 2, 10, 11, 12]) + 0.5)
    np.testing.assert_array_equal(d.output_rows, [[-1, 1]])


def test_or_of_input_output_pairs_keeps_each_pair():
    text = HEADER2 + """
(assert (or
   (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (<= Y_0 Y_1))
   (and (>= X_0 5) (<= X_0 6) (>= X_1 5) (<= X_1 6) (>= Y_0 2))))
"""
    prop = read_vnnlib(text)
    assert len(prop.disjuncts) == 2  # not the 4 of a box x rows cross product
    a, b = prop.disjuncts
    np.testing.assert_array_equal(a.box.lower, [0, 0])
    np.testing.assert_array_equal(a.output_rows, [[1, -1]])
    np.testing.assert_array_equal(b.box.lower, [5, 5])
    np.testing.assert_array_equal(b.output_rows, [[-1, 0]])
    np.testing.assert_array_equal(b.output_rhs, [-2])
    assert not check_counterexample(prop, [0.5, 0.5], [3.0, 0.0])  # box of a, rows of b


def test_shared_box_with_output_or_gives_one_disjunct_per_branch_and_drops_duplicates_and_empty_ones():
    text = HEADER2 + """
(assert (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1)))
(assert (or (<= Y_0 1) (<= Y_1 2) (<= Y_0 1)))
(assert (or (<= X_0 0.5) (and (>= X_0 2))))
"""
    prop = read_vnnlib(text)
    # 3 output branches x 2 input branches; the repeated branch and X_0 >= 2 (empty with X_0 <= 1) go
    assert len(prop.disjuncts) == 2
    for d in prop.disjuncts:
        np.testing.assert_array_equal(d.box.upper, [0.5, 1])
    assert {tuple(d.output_rows[0]) for d in prop.disjuncts} == {(1.0, 0.0), (0.0, 1.0)}


def test_strict_comparisons_read_as_non_strict_and_are_recorded():
    text = HEADER2 + """
(assert (and (> X_0 0) (< X_0 1) (>= X_1 0) (<= X_1 1)))
(assert (or (< Y_0 Y_0) (> 1 1)))   ; read as <=: always true
"""
    prop = read_vnnlib(text)
    (d,) = prop.disjuncts
    assert prop.has_strict and d.output_rows.shape == (0, 2)  # the whole box is unsafe
    np.testing.assert_array_equal(d.box.lower, [0, 0])
    np.testing.assert_array_equal(d.box.upper, [1, 1])
    assert not read_vnnlib(HEADER2 + BOX2 + "(assert (<= Y_0 1))").has_strict


def test_inexact_arithmetic_rounds_the_box_outward():
    text = HEADER2 + "(assert (and (>= (* 3 X_0) 1) (<= (* 3 X_0) 2) (>= X_1 0.1) (<= (+ X_1 0.1) 0.3)))\n(assert (<= Y_0 1))"
    (d,) = read_vnnlib(text).disjuncts
    from fractions import Fraction

    assert Fraction(d.box.lower[0]) <= Fraction(1, 3) and Fraction(d.box.upper[0]) >= Fraction(2, 3)
    assert d.box.upper[0] - d.box.lower[0] < 1 / 3 + 1e-15
    exact = Fraction(0.3) - Fraction(0.1)
    assert Fraction(d.box.upper[1]) >= exact and d.box.upper[1] == pytest.approx(0.2, abs=1e-16)


def test_paths_gz_and_text_give_the_same_property(tmp_path):
    text = HEADER2 + "(assert (and (>= X_0 0) (<= X_0 1) (>= X_1 -1) (<= X_1 1)))\n(assert (>= Y_1 Y_0))"
    plain = tmp_path / "p.vnnlib"
    plain.write_text(text)
    packed = tmp_path / "p.vnnlib.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    reads = [read_vnnlib(text), read_vnnlib(plain), read_vnnlib(str(plain)), read_vnnlib(packed)]
    for prop in reads:
        (d,) = prop.disjuncts
        np.testing.assert_array_equal(d.box.lower, [0, -1])
        np.testing.assert_array_equal(d.output_rows, [[1, -1]])


# ------------------------------------------------------------------ errors
ERRORS = {
    # name: (text, line the message must name, fragment of the message)
    "unknown variable": (HEADER2 + BOX2 + "(assert (<= Y_7 0))", 6, "unknown variable 'Y_7'"),
    "unbounded input": (HEADER2 + "(assert (and (>= X_0 0) (<= X_0 1) (>= X_1 0)))\n(assert (<= Y_0 0))", 2, "X_1, declared here, has no upper bound"),
    "unbounded in one branch": (HEADER2 + "(assert (and (>= X_0 0) (<= X_0 1)))\n(assert (or (and (>= X_1 0) (<= X_1 1)) (>= X_1 0)))", 2, "X_1, declared here, has no upper bound"),
    "unsupported operator": (HEADER2 + BOX2 + "\n(assert (not (<= Y_0 0)))", 7, "unsupported operator 'not'"),
    "unsupported term operator": (HEADER2 + BOX2 + "(assert (<= (/ Y_0 2) 0))", 6, "unsupported operator '/'"),
    "unsupported command": (HEADER2 + BOX2 + "(check-sat)", 6, "unsupported command 'check-sat'"),
    "non-box input": (HEADER2 + BOX2 + "(assert (<= X_0 X_1))", 6, "non-box input constraint"),
    "non-box input sum": (HEADER2 + BOX2 + "(assert (or (<= Y_0 0)\n  (<= (+ X_0 X_1) 1)))", 7, "non-box input constraint"),
    "mixed input output": (HEADER2 + BOX2 + "(assert (<= X_0 Y_1))", 6, "mixes inputs and outputs"),
    "nonlinear": (HEADER2 + BOX2 + "(assert (<= (* Y_0 Y_1) 1))", 6, "nonlinear"),
    "unclosed paren": (HEADER2 + BOX2 + "(assert (<= Y_0 1)\n", 6, "never closed"),
    "extra paren": (HEADER2 + BOX2 + "(assert (<= Y_0 1)))", 6, "unmatched ')'"),
    "false comparison": (HEADER2 + BOX2 + "(assert (or (<= 2 1) (<= (+ Y_0 1) Y_0)))", None, "unsafe set is empty"),
    "not Real": ("(declare-const X_0 Int)", 1, "only Real"),
    "bad name": ("(declare-const x0 Real)", 1, "inputs are named X_i"),
    "declared twice": (HEADER2 + "(declare-const X_1 Real)", 5, "declared twice"),
    "gap in indices": ("(declare-const X_0 Real)\n(declare-const X_2 Real)\n(declare-const Y_0 Real)\n(assert (<= Y_0 1))", None, "X_1 is not declared"),
    "mixed index ranks": ("(declare-const X_0 Real)\n(declare-const X_0_1 Real)\n(declare-const Y_0 Real)", 2, "different number of indices"),
    "text outside parentheses": (HEADER2 + "assert", 5, "outside parentheses"),
    "empty or": (HEADER2 + BOX2 + "(assert (or))", 6, "at least one operand"),
    "no outputs": ("(declare-const X_0 Real)\n(assert (and (>= X_0 0) (<= X_0 1)))", None, "declares no outputs"),
    "contradictory box": (HEADER2 + BOX2 + "(assert (>= X_0 2))\n(assert (<= Y_0 0))", None, "contradictory constraints"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_name_the_line_and_the_text(name):
    text, line, fragment = ERRORS[name]
    with pytest.raises(VnnlibError) as info:
        read_vnnlib(text)
    message = str(info.value)
    assert fragment in message, message
    if line is not None:
        assert f"line {line}:" in message, message
        assert "\n" not in message


def test_dnf_limit_is_checked_before_expanding():
    ors = "".join(f"(assert (or (<= Y_0 {i}) (<= Y_1 {i})))\n" for i in range(14))  # 2^14 > 10,000
    with pytest.raises(VnnlibError, match="more than 10000 disjuncts"):
        read_vnnlib(HEADER2 + BOX2 + ors)
    assert len(read_vnnlib(HEADER2 + BOX2 + ors, max_disjuncts=2**14).disjuncts) == 2**14


def test_declared_sizes_are_checked_against_the_network():
    text = HEADER2 + BOX2 + "(assert (<= Y_0 0))"
    assert read_vnnlib(text, n_inputs=2, n_outputs=2).n_inputs == 2
    with pytest.raises(VnnlibError, match=r"declares 2 inputs \(X_0..X_1\) but the network has 3"):
        read_vnnlib(text, n_inputs=3)
    with pytest.raises(VnnlibError, match="declares 2 outputs .* network has 5"):
        read_vnnlib(text, n_outputs=5)


# ------------------------------------------------------------------ random formulas
def _atom(draw, n_in: int, n_out: int) -> str:
    op = draw(st.sampled_from(["<=", ">=", "<", ">", "="]))
    if draw(st.booleans()):  # an input bound
        var = f"X_{draw(st.integers(0, n_in - 1))}"
        value = draw(st.integers(-8, 8)) / 4
        return f"({op} {var} {value})" if draw(st.booleans()) else f"({op} {value} {var})"
    kind = draw(st.sampled_from(["const", "var", "linear"]))
    a, b = (f"Y_{draw(st.integers(0, n_out - 1))}" for _ in range(2))
    if kind == "const":
        return f"({op} {a} {draw(st.integers(-8, 8)) / 4})"
    if kind == "var":
        return f"({op} {a} {b})"
    c = draw(st.integers(-3, 3))
    return f"({op} (+ {a} (* {c} {b}) {draw(st.integers(-4, 4)) / 2}) (- {b}))"


@st.composite
def random_property(draw):
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))

    def formula(depth):
        if depth == 0 or draw(st.integers(0, 3)) == 0:
            return _atom(draw, n_in, n_out)
        op = draw(st.sampled_from(["and", "or"]))
        return f"({op} " + " ".join(formula(depth - 1) for _ in range(draw(st.integers(1, 3)))) + ")"

    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)] + [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    lines.append("(assert (and " + " ".join(f"(>= X_{i} -2) (<= X_{i} 2)" for i in range(n_in)) + "))")
    lines += [f"(assert {formula(3)})" for _ in range(draw(st.integers(1, 3)))]
    return "\n".join(lines), n_in, n_out


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(random_property(), st.integers(0, 2**32 - 1))
def test_dnf_agrees_with_direct_evaluation_on_random_formulas(prop_text, seed):
    text, n_in, n_out = prop_text
    rng = np.random.default_rng(seed)
    # quarter-integers: every value, bound and combination in the formulas is exact in floats
    xs = rng.integers(-10, 11, size=(300, n_in)) / 4
    ys = rng.integers(-10, 11, size=(300, n_out)) / 4
    x_names, y_names = [f"X_{i}" for i in range(n_in)], [f"Y_{j}" for j in range(n_out)]
    try:
        prop = read_vnnlib(text, n_in, n_out)
    except VnnlibError as error:
        assert "unsafe set is empty" in str(error)  # the only possible error here
        assert not any(holds(text, dict(zip(x_names, x)) | dict(zip(y_names, y))) for x, y in zip(xs, ys))
        return
    agree_at(text, prop, xs, ys, x_names, y_names)


# ------------------------------------------------------------------ ACAS Xu
def _acas_text(i: int) -> str:
    return (ACASXU / "vnnlib" / f"prop_{i}.vnnlib").read_text()


def _regex_statements(text: str) -> list[str]:
    """Top-level statements, comments removed, whitespace collapsed (no s-expression parser)."""
    body = re.sub(r";[^\n]*", "", text)
    statements, depth, current = [], 0, ""
    for ch in body:
        current += ch
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and current.strip():
            if "(" in current:
                statements.append(" ".join(current.split()))
            current = ""
    return statements


def _regex_boxes(statement: str) -> list[tuple[dict, dict]]:
    lo, hi = {}, {}
    for op, i, value in re.findall(r"\((<=|>=) X_(\d+) (\S+?)\)", statement):
        (hi if op == "<=" else lo)[int(i)] = float(value)
    return [(lo, hi)]


@needs_acasxu
@pytest.mark.parametrize("number", range(1, 11))
def test_acasxu_property_matches_an_independent_reading(number):
    text = _acas_text(number)
    prop = read_vnnlib(ACASXU / "vnnlib" / f"prop_{number}.vnnlib", n_inputs=5, n_outputs=5)
    statements = [s for s in _regex_statements(text) if s.startswith("(assert")]

    # disjunct count: product over asserts of their (and ...) branches under an (or ...)
    expected = math.prod(s.count("(and") if s.startswith("(assert (or") else 1 for s in statements)
    assert len(prop.disjuncts) == expected

    # boxes: simple input asserts give one box; an (or ...) of input conjunctions gives one per branch
    simple = " ".join(s for s in statements if not s.startswith("(assert (or") and "X_" in s)
    input_ors = [s for s in statements if s.startswith("(assert (or") and "X_" in s]
    boxes = []
    if input_ors:
        (statement,) = input_ors
        for branch in re.findall(r"\(and ([^()]*(?:\([^()]*\)[^()]*)*)\)", statement):
            boxes.extend(_regex_boxes(branch))
    else:
        boxes = _regex_boxes(simple)
    expected_boxes = {(tuple(lo[i] for i in range(5)), tuple(hi[i] for i in range(5))) for lo, hi in boxes}
    got_boxes = {(tuple(d.box.lower), tuple(d.box.upper)) for d in prop.disjuncts}
    assert got_boxes == expected_boxes
    per_box = len(prop.disjuncts) // len(expected_boxes)
    for box in expected_boxes:
        assert sum((tuple(d.box.lower), tuple(d.box.upper)) == box for d in prop.disjuncts) == per_box

    # semantics: the DNF agrees with the formula at points on and near every bound and tie
    rng = np.random.default_rng(number)
    in_box = np.vstack([Box(np.array(lo), np.array(hi)).sample(400, rng) for lo, hi in expected_boxes])
    xs = np.vstack([in_box, boundary_points(text, 5, rng, len(in_box))])
    ys = boundary_points(text, 5, rng, len(xs))
    ys[::3] = rng.integers(-2, 3, size=ys[::3].shape)  # exact ties between outputs
    names = [f"X_{i}" for i in range(5)], [f"Y_{j}" for j in range(5)]
    assert agree_at(text, prop, xs, ys, *names) > 0


@needs_acasxu
def test_acasxu_property_3_box_and_rows_are_those_of_the_file():
    text = _acas_text(3)
    (d,) = read_vnnlib(text).disjuncts
    bounds = {(op, int(i)): float(v) for op, i, v in re.findall(r"\(assert \((<=|>=) X_(\d) (\S+)\)\)", text)}
    np.testing.assert_array_equal(d.box.lower, [bounds[(">=", i)] for i in range(5)])
    np.testing.assert_array_equal(d.box.upper, [bounds[("<=", i)] for i in range(5)])
    pairs = re.findall(r"\(assert \(<= Y_(\d) Y_(\d)\)\)", text)  # Y_a <= Y_b  ->  e_a - e_b <= 0
    expected = np.zeros((len(pairs), 5))
    for r, (a, b) in enumerate(pairs):
        expected[r, int(a)], expected[r, int(b)] = 1, -1
    np.testing.assert_array_equal(d.output_rows, expected)
    np.testing.assert_array_equal(d.output_rhs, np.zeros(len(pairs)))


@needs_acasxu
def test_acasxu_property_1_and_2_numbers_are_those_of_the_file():
    text1, text2 = _acas_text(1), _acas_text(2)
    (d1,) = read_vnnlib(text1).disjuncts
    (threshold,) = re.findall(r"\(assert \(>= Y_0 (\S+)\)\)", text1)
    np.testing.assert_array_equal(d1.output_rows, [[-1, 0, 0, 0, 0]])  # Y_0 >= c  ->  -Y_0 <= -c
    assert d1.output_rhs[0] == -float(threshold)
    (d2,) = read_vnnlib(text2).disjuncts
    (x0_upper,) = re.findall(r"\(assert \(<= X_0 (\S+)\)\)", text2)
    (x3_lower,) = re.findall(r"\(assert \(>= X_3 (\S+)\)\)", text2)
    assert d2.box.upper[0] == float(x0_upper) and d2.box.lower[3] == float(x3_lower)
    assert d2.output_rows.shape == (4, 5) and np.all(d2.output_rows[:, 0] == -1)


# ------------------------------------------------------------------ counterexamples
def _regex_counterexample(text: str) -> tuple[list[float], list[float]]:
    lines = text.split("\n")
    assert lines[0] == "sat"
    assert lines[1].startswith("((") and all(l.startswith(" (") for l in lines[2:]) and text.endswith("))")
    pairs = re.findall(r"\((X|Y)_(\d+) (\S+?)\)", text)
    xs = [float(v) for k, i, v in pairs if k == "X"]
    ys = [float(v) for k, i, v in pairs if k == "Y"]
    assert [int(i) for k, i, v in pairs if k == "X"] == list(range(len(xs)))
    assert [int(i) for k, i, v in pairs if k == "Y"] == list(range(len(ys)))
    return xs, ys


def test_counterexample_round_trips_bit_for_bit():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=6), [1e-310, -0.0, 1e300, 0.1]])
    y = rng.normal(size=5) * 1e5
    text = write_counterexample(x, y)
    assert len(text.split("\n")) == x.size + y.size + 1
    rx, ry = _regex_counterexample(text)
    assert np.array_equal(rx, x) and np.array_equal(ry, y)
    px, py = read_counterexample(text)
    assert np.array_equal(px, x) and np.array_equal(py, y)
    assert np.array_equal(read_counterexample(text.split("\n", 1)[1])[0], x)  # without "sat"
    with pytest.raises(VnnlibError, match="non-finite"):
        write_counterexample([np.nan], [0.0])
    with pytest.raises(VnnlibError, match="lacks X_1"):
        read_counterexample("sat\n((X_0 1.0)\n (X_2 0.5)\n (Y_0 1))")


def test_check_counterexample_uses_the_tolerance_on_box_and_rows():
    text = HEADER2 + BOX2 + "(assert (or (<= Y_0 Y_1) (>= Y_0 3)))"
    prop = read_vnnlib(text)
    assert check_counterexample(prop, [0.5, 1.0], [1.0, 2.0])
    assert check_counterexample(prop, [0.5, 1.0 + 5e-5], [1.0, 2.0])  # within tol of the box
    assert not check_counterexample(prop, [0.5, 1.0 + 2e-4], [1.0, 2.0])
    assert check_counterexample(prop, [0.5, 0.5], [2.99995, 5.0 - 10])  # row Y_0 >= 3 within tol
    assert not check_counterexample(prop, [0.5, 0.5], [2.99995, -5.0], tol=0.0)
    with pytest.raises(VnnlibError, match="has 3 inputs"):
        check_counterexample(prop, [0.5, 0.5, 0.5], [0.0, 0.0])
    parsed = read_vnnlib(text)
    x, y = read_counterexample(write_counterexample([0.25, 0.75], [1.5, 1.5]))
    assert check_counterexample(parsed, x, y, tol=0.0)


def test_disjunct_validates_shapes():
    box = Box(np.zeros(2), np.ones(2))
    with pytest.raises(VnnlibError, match="do not match"):
        Disjunct(box, np.zeros((2, 3)), np.zeros(1))
    d = Disjunct(box, np.zeros((0, 3)), np.zeros(0))
    assert d.contains([0.5, 0.5], [1, 2, 3]) and d.output_strict.shape == (0,)
    with pytest.raises(VnnlibError, match="does not fit"):
        VnnlibProperty(3, 3, (d,))


def test_large_property_reads_quickly():
    import time

    n = 3072
    lines = [f"(declare-const X_{i} Real)" for i in range(n)] + [f"(declare-const Y_{j} Real)" for j in range(10)]
    lines += [f"(assert (<= X_{i} {0.5 + i * 1e-4}))\n(assert (>= X_{i} {-0.5 - i * 1e-4}))" for i in range(n)]
    lines.append("(assert (or " + " ".join(f"(and (>= Y_{j} Y_3))" for j in range(10) if j != 3) + "))")
    start = time.perf_counter()
    prop = read_vnnlib("\n".join(lines), n_inputs=n, n_outputs=10)
    elapsed = time.perf_counter() - start
    assert len(prop.disjuncts) == 9 and prop.disjuncts[0].box.upper[-1] == 0.5 + (n - 1) * 1e-4
    assert elapsed < 10, f"reading took {elapsed:.1f} s"
