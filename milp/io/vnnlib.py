"""VNN-LIB properties (the format of the verification competition VNN-COMP), read into boxes
and output half-spaces; counterexamples written in the competition's format.

A property file asserts the *unsafe* set: an input ``x`` with output ``y = net(x)`` that
satisfies every ``assert`` is a counterexample. :func:`read_vnnlib` normalises that
conjunction to disjunctive normal form and splits each disjunct into an input box and
output rows: the unsafe set is the union over disjuncts of
``{x in box : output_rows @ net(x) <= output_rhs}``.

Supported subset (anything else raises :class:`VnnlibError` naming the line and the text):

* ``(declare-const X_i Real)`` for inputs, ``(declare-const Y_j Real)`` for outputs.
  Multi-index names such as ``X_0_1_2`` are flattened in row-major (C) order over the grid
  their indices span, which is the declaration order of a file that lists them in order and
  the order VNN-COMP flattens tensors in. The indices must fill the grid exactly.
* ``(assert F)`` where ``F`` is a comparison or ``(and F ...)`` / ``(or F ...)`` nested to
  any depth. Comparisons are ``<= >= < > =`` between linear terms: numbers, variables,
  ``(+ t ...)``, ``(- t)``, ``(- t t ...)`` and ``(* c ... t)`` with at most one
  non-constant factor. A comparison with more than two operands is a chain
  (``(<= a b c)`` is ``a <= b`` and ``b <= c``), as in SMT-LIB.
* ``;`` starts a comment that runs to the end of the line.

``<`` and ``>`` are read as ``<=`` and ``>=``, as VNN-COMP does (it checks counterexamples
up to a tolerance); this can only enlarge the unsafe set, so a "no counterexample" answer
stays true. ``=`` is ``<=`` and ``>=``. A property whose unsafe set is empty as written
(contradictory bounds in every disjunct) is rejected rather than silently verified.

Input constraints must bound a single input (so each disjunct's inputs form a box) and
never mention outputs; every input needs a lower and an upper bound in every disjunct.

Numbers are read as IEEE doubles, as every VNN-COMP tool reads them. Arithmetic on them
(sums, products, moving a coefficient to the other side) is done exactly in rationals.
A bound or right-hand side that is not a double is rounded *outward* (lower bounds down,
upper bounds and right-hand sides up), so the box and each row's half-space contain the
exact ones; an output coefficient that is not a double (only possible when the file
multiplies or adds numbers) is rounded to nearest. Comparisons of variables with numbers
or with each other, the only forms in the competition's files, need no rounding.
"""

from __future__ import annotations

import bisect
import gzip
import itertools
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from milp.core.errors import InputError
from milp.core.box import Box

__all__ = [
    "MAX_DISJUNCTS",
    "Disjunct",
    "VnnlibError",
    "VnnlibProperty",
    "check_counterexample",
    "read_counterexample",
    "read_vnnlib",
    "write_counterexample",
    "vnnlib_text",
]

MAX_DISJUNCTS = 10_000


class VnnlibError(InputError):
    """A VNN-LIB text outside the supported subset, malformed, or inconsistent with a network."""


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make field-wise == ambiguous
class Disjunct:
    """One piece of the unsafe set: some ``x`` in ``box`` with ``output_rows @ y <= output_rhs``.

    ``output_rows`` has shape ``(k, n_outputs)``, ``output_rhs`` and ``output_strict`` shape
    ``(k,)``; ``k`` may be 0 (the whole box is unsafe). ``output_strict[r]`` records that row
    ``r`` came from ``<`` or ``>``, which the rows read as ``<=`` (see :func:`read_vnnlib`).
    """

    box: Box
    output_rows: np.ndarray
    output_rhs: np.ndarray
    output_strict: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.box, Box):
            raise VnnlibError("a disjunct's box must be a milp.core.box.Box")
        rhs = np.array(self.output_rhs, dtype=np.float64).reshape(-1)
        rows = np.array(self.output_rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] != rhs.size:
            raise VnnlibError(f"output rows of shape {rows.shape} do not match {rhs.size} right-hand sides")
        strict = np.zeros(rhs.size, dtype=bool) if self.output_strict is None else np.array(self.output_strict, dtype=bool).reshape(-1)
        if strict.size != rhs.size:
            raise VnnlibError(f"{strict.size} strictness flags for {rhs.size} output rows")
        for name, value in (("output_rows", rows), ("output_rhs", rhs), ("output_strict", strict)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def contains(self, x, y, tol: float = 0.0) -> bool:
        """Whether ``x`` lies in the box and ``y`` satisfies every row, both up to ``tol``."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        return self.box.contains(x, tol) and bool(np.all(self.output_rows @ y <= self.output_rhs + tol))


@dataclass(frozen=True, eq=False)
class VnnlibProperty:
    """The unsafe set of a property: the union of ``disjuncts`` (at least one).

    ``has_strict`` is True when some comparison was ``<`` or ``>``: the boxes and rows read
    them as ``<=`` / ``>=``, as VNN-COMP does, so they may describe a slightly larger set
    (its closure, for a typical file).
    """

    n_inputs: int
    n_outputs: int
    disjuncts: tuple[Disjunct, ...]
    has_strict: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "disjuncts", tuple(self.disjuncts))
        for d in self.disjuncts:
            if d.box.dim != self.n_inputs or d.output_rows.shape[1] != self.n_outputs:
                raise VnnlibError(
                    f"a disjunct over {d.box.dim} inputs and {d.output_rows.shape[1]} outputs "
                    f"does not fit a property with {self.n_inputs} inputs and {self.n_outputs} outputs"
                )


# ------------------------------------------------------------------ s-expressions
@dataclass(frozen=True)
class _Node:
    """An atom (``items is None``) or a parenthesised list; ``start:end`` slices the source."""

    text: str
    start: int
    end: int
    line: int
    items: tuple["_Node", ...] | None = None

    @property
    def is_list(self) -> bool:
        return self.items is not None

    def head(self) -> str | None:
        if self.items and not self.items[0].is_list:
            return self.items[0].text
        return None


_TOKEN = re.compile(r";[^\n]*|\(|\)|[^\s();]+")


def _snippet(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _error(node: _Node, source: str, message: str) -> VnnlibError:
    return VnnlibError(f"line {node.line}: {message}: {_snippet(source[node.start:node.end])}")


def _parse_sexprs(source: str) -> list[_Node]:
    """Top-level s-expressions of ``source``; comments are skipped."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def line_of(offset: int) -> int:
        return bisect.bisect_right(line_starts, offset)

    def line_text(line: int) -> str:
        end = line_starts[line] - 1 if line < len(line_starts) else len(source)
        return source[line_starts[line - 1] : end]

    stack: list[tuple[int, list[_Node]]] = []  # (offset of "(", children so far)
    top: list[_Node] = []
    for match in _TOKEN.finditer(source):
        token = match.group()
        if token.startswith(";"):
            continue
        if token == "(":
            stack.append((match.start(), []))
        elif token == ")":
            if not stack:
                line = line_of(match.start())
                raise VnnlibError(f"line {line}: unmatched ')': {_snippet(line_text(line))}")
            start, items = stack.pop()
            node = _Node(source[start : match.end()], start, match.end(), line_of(start), tuple(items))
            (stack[-1][1] if stack else top).append(node)
        else:
            node = _Node(token, match.start(), match.end(), line_of(match.start()))
            (stack[-1][1] if stack else top).append(node)
    if stack:
        line = line_of(stack[-1][0])
        raise VnnlibError(f"line {line}: '(' is never closed: {_snippet(line_text(line))}")
    return top


# ------------------------------------------------------------------ formulas
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_VARIABLE = re.compile(r"^([XY])((?:_\d+)+)$")
_COMPARISONS = ("<=", ">=", "<", ">", "=")

Linear = tuple[dict[str, Fraction], Fraction]  # coefficients by variable name, constant


@dataclass(frozen=True)
class _InputBound:
    """``name <= value`` (``upper``) or ``name >= value``, from ``node``."""

    name: str
    upper: bool
    value: Fraction
    strict: bool
    node: _Node


@dataclass(frozen=True)
class _OutputRow:
    """``sum coefficients[name] * name <= rhs`` over outputs."""

    coefficients: tuple[tuple[str, Fraction], ...]
    rhs: Fraction
    strict: bool
    node: _Node


class _Reader:
    """State of one read: the source (for messages) and the declared variables."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.declared: dict[str, tuple[str, tuple[int, ...], int]] = {}  # name -> (X|Y, index, line)
        self.has_strict = False

    def error(self, node: _Node, message: str, context: _Node | None = None) -> VnnlibError:
        """An error at ``node``'s line, quoting ``context`` (the enclosing comparison) or ``node``."""
        quoted = context or node
        return VnnlibError(f"line {node.line}: {message}: {_snippet(self.source[quoted.start:quoted.end])}")

    # -- commands
    def declare(self, node: _Node) -> None:
        items = node.items
        if len(items) != 3 or items[1].is_list or items[2].is_list:
            raise self.error(node, "write a declaration as (declare-const X_0 Real)")
        name, sort = items[1].text, items[2].text
        match = _VARIABLE.match(name)
        if not match:
            raise self.error(node, f"cannot declare {name!r}: inputs are named X_i and outputs Y_j (e.g. X_0, Y_3, X_0_1_2)")
        if sort != "Real":
            raise self.error(node, f"{name} has sort {sort!r}; only Real is supported")
        if name in self.declared:
            raise self.error(node, f"{name} is declared twice (first on line {self.declared[name][2]})")
        index = tuple(int(part) for part in match.group(2)[1:].split("_"))
        self.declared[name] = (match.group(1), index, node.line)

    # -- boolean structure: an atom, or ("and" | "or", [children])
    def formula(self, node: _Node):
        if not node.is_list:
            raise self.error(node, "expected a comparison, (and ...) or (or ...)")
        head = node.head()
        if head in ("and", "or"):
            if len(node.items) < 2:
                raise self.error(node, f"({head}) needs at least one operand")
            return (head, [self.formula(child) for child in node.items[1:]])
        if head in _COMPARISONS:
            return self.comparison(node)
        if head is None:
            raise self.error(node, "expected an operator after '('")
        raise self.error(node, f"unsupported operator {head!r} (supported: and, or, <=, >=, <, >, =)")

    def comparison(self, node: _Node):
        op = node.head()
        operands = node.items[1:]
        if len(operands) < 2:
            raise self.error(node, f"({op} ...) needs two operands")
        terms = [self.term(child, node) for child in operands]
        # <  and > are read as <= and >= (everywhere, also where variables cancel), as
        # VNN-COMP does: it checks counterexamples up to a tolerance, so the two coincide
        # for it. This can only enlarge the unsafe set, so "no counterexample" stays true;
        # strictness is kept on each output row and in VnnlibProperty.has_strict.
        strict = op in ("<", ">")
        self.has_strict |= strict
        atoms = []
        for left, right in zip(terms, terms[1:]):
            if op in ("<=", "<", "="):
                atoms.append(self.atom(_subtract(left, right), strict, node))
            if op in (">=", ">", "="):
                atoms.append(self.atom(_subtract(right, left), strict, node))
        return atoms[0] if len(atoms) == 1 else ("and", atoms)

    def atom(self, form: Linear, strict: bool, node: _Node):
        """Classify ``form <= 0`` as an input bound or an output row."""
        coefficients, constant = form
        coefficients = {name: c for name, c in coefficients.items() if c != 0}
        if not coefficients:
            return constant <= 0  # no variable left (e.g. (<= Y_0 Y_0)): always true or always false
        kinds = {self.declared[name][0] for name in coefficients}
        if kinds == {"X", "Y"}:
            raise self.error(node, "a constraint mixes inputs and outputs; only input boxes and output constraints are supported")
        if kinds == {"X"}:
            if len(coefficients) > 1:
                raise self.error(node, "non-box input constraint: an input constraint must bound a single X variable")
            ((name, c),) = coefficients.items()
            return _InputBound(name, upper=c > 0, value=-constant / c, strict=strict, node=node)
        return _OutputRow(tuple(sorted(coefficients.items())), -constant, strict, node)

    # -- linear terms
    def term(self, node: _Node, context: _Node) -> Linear:
        """The linear form of ``node``, a term inside the comparison ``context``."""
        if not node.is_list:
            text = node.text
            if _NUMBER.match(text):
                value = float(text)
                if not math.isfinite(value):
                    raise self.error(node, f"number {text} is out of range", context)
                return {}, Fraction(value)
            if text in self.declared:
                return {text: Fraction(1)}, Fraction(0)
            if _VARIABLE.match(text):
                raise self.error(node, f"unknown variable {text!r}: declare it first with (declare-const {text} Real)", context)
            raise self.error(node, f"unknown variable or malformed number {text!r}", context)
        head = node.head()
        args = [self.term(child, context) for child in node.items[1:]] if head in ("+", "-", "*") else None
        if head == "+" and args:
            return _sum(args)
        if head == "-" and args:
            if len(args) == 1:
                return _scale(args[0], Fraction(-1))
            return _sum([args[0]] + [_scale(a, Fraction(-1)) for a in args[1:]])
        if head == "*" and args:
            factor, variable = Fraction(1), None
            for arg in args:
                if arg[0]:
                    if variable is not None:
                        raise self.error(node, "nonlinear product: at most one factor of (* ...) may contain a variable")
                    variable = arg
                else:
                    factor *= arg[1]
            return _scale(variable, factor) if variable is not None else ({}, factor)
        if head in ("+", "-", "*"):
            raise self.error(node, f"({head}) needs operands")
        if head is None:
            raise self.error(node, "expected a number, a variable or an arithmetic operator")
        raise self.error(node, f"unsupported operator {head!r} in a term (supported: +, -, *)")


def _scale(form: Linear, factor: Fraction) -> Linear:
    return {name: c * factor for name, c in form[0].items()}, form[1] * factor


def _sum(forms: list[Linear]) -> Linear:
    coefficients: dict[str, Fraction] = {}
    constant = Fraction(0)
    for form_coefficients, form_constant in forms:
        for name, c in form_coefficients.items():
            coefficients[name] = coefficients.get(name, Fraction(0)) + c
        constant += form_constant
    return coefficients, constant


def _subtract(left: Linear, right: Linear) -> Linear:
    return _sum([left, _scale(right, Fraction(-1))])


def _dnf(formula, limit: int) -> list[list]:
    """Conjunctions of atoms whose union is ``formula``; at most ``limit`` of them."""
    if isinstance(formula, tuple) and formula[0] == "or":
        result = []
        for child in formula[1]:
            result.extend(_dnf(child, limit))
            if len(result) > limit:
                raise VnnlibError(f"the property expands to more than {limit} disjuncts; split it into several files")
        return result
    if isinstance(formula, tuple) and formula[0] == "and":
        return _product([_dnf(child, limit) for child in formula[1]], limit)
    if formula is True:
        return [[]]  # one empty conjunction: no constraint
    if formula is False:
        return []  # no conjunction: nothing is unsafe
    return [[formula]]


def _product(factors: list[list[list]], limit: int) -> list[list]:
    """The conjunction of DNFs, checking the size before building it."""
    result: list[list] = [[]]
    for factor in factors:
        if len(result) * len(factor) > limit:
            raise VnnlibError(
                f"the property expands to more than {limit} disjuncts "
                f"(at least {len(result) * len(factor)}); split it into several files"
            )
        if len(factor) == 1:
            for conjunction in result:
                conjunction.extend(factor[0])
        else:
            result = [conjunction + list(choice) for conjunction in result for choice in factor]
    return result


# ------------------------------------------------------------------ resolution to arrays
def _flat_indices(reader: _Reader, letter: str) -> dict[str, int]:
    """Flat position of every declared ``letter`` variable (row-major over its index grid)."""
    names = [(name, index, line) for name, (kind, index, line) in reader.declared.items() if kind == letter]
    kind_word = "input" if letter == "X" else "output"
    if not names:
        raise VnnlibError(f"the property declares no {kind_word}s: add (declare-const {letter}_0 Real) ...")
    ranks = {len(index) for _, index, _ in names}
    if len(ranks) > 1:
        first = {len(index): (name, line) for name, index, line in names}
        (a, la), (b, lb) = sorted(first.values(), key=lambda t: t[1])[:2]
        raise VnnlibError(
            f"line {lb}: {b} has a different number of indices than {a} (line {la}); "
            f"all {kind_word} names must use the same number of indices"
        )
    shape = tuple(max(index[d] for _, index, _ in names) + 1 for d in range(ranks.pop()))
    seen: dict[tuple[int, ...], str] = {}
    for name, index, line in names:
        if index in seen:
            raise VnnlibError(f"line {line}: {name} and {seen[index]} name the same {kind_word}")
        seen[index] = name
    if len(seen) != math.prod(shape):
        missing = next(index for index in itertools.product(*map(range, shape)) if index not in seen)
        label = letter + "".join(f"_{i}" for i in missing)
        raise VnnlibError(
            f"{label} is not declared although {len(seen)} {kind_word}s up to "
            f"{letter}{''.join(f'_{s - 1}' for s in shape)} are: the {kind_word} indices must have no gaps"
        )
    return {name: int(np.ravel_multi_index(index, shape)) for name, index, _ in names}


def _down(q: Fraction) -> float:
    f = float(q)
    return float(np.nextafter(f, -np.inf)) if Fraction(f) > q else f


def _up(q: Fraction) -> float:
    f = float(q)
    return float(np.nextafter(f, np.inf)) if Fraction(f) < q else f


def _resolve(reader: _Reader, conjunctions: list[list], n_inputs: int | None, n_outputs: int | None) -> tuple[int, int, list[Disjunct]]:
    x_index = _flat_indices(reader, "X")
    y_index = _flat_indices(reader, "Y")
    n_in, n_out = len(x_index), len(y_index)
    for given, declared, word, letter in ((n_inputs, n_in, "inputs", "X"), (n_outputs, n_out, "outputs", "Y")):
        if given is not None and int(given) != declared:
            raise VnnlibError(
                f"the property declares {declared} {word} ({letter}_0..{letter}_{declared - 1}) but the network has {int(given)}"
            )
    names_by_index = {i: name for name, i in x_index.items()}
    disjuncts: list[Disjunct] = []
    seen: set = set()
    for conjunction in conjunctions:
        lower: list[Fraction | None] = [None] * n_in
        upper: list[Fraction | None] = [None] * n_in
        rows: dict[tuple, None] = {}  # ordered set of (row bytes, rhs, strict)
        for atom in conjunction:
            if isinstance(atom, _InputBound):
                i = x_index[atom.name]
                if atom.upper:
                    upper[i] = atom.value if upper[i] is None else min(upper[i], atom.value)
                else:
                    lower[i] = atom.value if lower[i] is None else max(lower[i], atom.value)
            else:
                row = np.zeros(n_out)
                for name, c in atom.coefficients:
                    row[y_index[name]] = float(c)  # exact unless the file multiplies numbers
                rows[(row.tobytes(), _up(atom.rhs), atom.strict)] = None
        if any(lo is not None and hi is not None and lo > hi for lo, hi in zip(lower, upper)):
            continue  # contradictory bounds: this disjunct is empty
        for i in range(n_in):
            for bound, word in ((lower[i], "lower"), (upper[i], "upper")):
                if bound is None:
                    name = names_by_index[i]
                    raise VnnlibError(
                        f"line {reader.declared[name][2]}: input {name}, declared here, has no {word} bound"
                        + (f" in one of the {len(conjunctions)} disjuncts" if len(conjunctions) > 1 else "")
                        + ": every input needs a lower and an upper bound (the input set must be a bounded box)"
                    )
        box = Box(np.array([_down(lo) for lo in lower]), np.array([_up(hi) for hi in upper]))
        key = (box.lower.tobytes(), box.upper.tobytes(), frozenset(rows))
        if key in seen:
            continue  # the same disjunct twice adds nothing to the union
        seen.add(key)
        row_keys = list(rows)
        matrix = np.array([np.frombuffer(r, dtype=np.float64) for r, _, _ in row_keys]).reshape(len(row_keys), n_out)
        disjuncts.append(Disjunct(box, matrix, np.array([r for _, r, _ in row_keys]), np.array([s for _, _, s in row_keys], dtype=bool)))
    if not disjuncts:
        raise VnnlibError(
            "the unsafe set is empty: every disjunct has contradictory constraints (input bounds "
            "that exclude each other, or a comparison of numbers that is false); nothing to verify"
        )
    return n_in, n_out, disjuncts


# ------------------------------------------------------------------ public API
def vnnlib_text(path_or_text) -> str:
    """The text of a VNN-LIB file (a path, a ``.gz`` path), or the text itself (text contains '(').
    Raises :class:`VnnlibError` naming the file when it is not UTF-8 text or not a readable gzip file."""
    if isinstance(path_or_text, (str, os.PathLike)) and not (isinstance(path_or_text, str) and "(" in path_or_text):
        path = Path(path_or_text)
        if path.is_dir():
            raise VnnlibError(f"{str(path)!r} is a directory, not a VNN-LIB file")
        try:
            with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as handle:
                return handle.read()
        except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
            why = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else f"not a readable gzip file ({error})"
            raise VnnlibError(f"{str(path)!r} is {why}: a VNN-LIB file is text") from None
    if isinstance(path_or_text, str):
        return path_or_text
    raise TypeError(f"expected a path or VNN-LIB text, got {type(path_or_text).__name__}")


def read_vnnlib(path_or_text, n_inputs: int | None = None, n_outputs: int | None = None, *, max_disjuncts: int = MAX_DISJUNCTS) -> VnnlibProperty:
    """Read a VNN-LIB property (a path, a ``.gz`` path, or the text itself: text contains '(').

    ``n_inputs`` / ``n_outputs``, when given, are the network's sizes: the declared
    ``X`` / ``Y`` variables must match them. Raises :class:`VnnlibError` for anything outside
    the supported subset (see the module docstring), for an unbounded input, and when the
    disjunctive normal form would have more than ``max_disjuncts`` disjuncts.

    Disjuncts come in the order of the DNF (asserts left to right); exact duplicates and
    disjuncts whose input bounds contradict each other are dropped.
    """
    source = vnnlib_text(path_or_text)
    reader = _Reader(source)
    asserts = []
    for node in _parse_sexprs(source):
        head = node.head() if node.is_list else None
        if head == "declare-const":
            reader.declare(node)
        elif head == "assert":
            if len(node.items) != 2:
                raise reader.error(node, "write an assertion as (assert F) with one formula F")
            asserts.append(reader.formula(node.items[1]))
        elif node.is_list:
            raise reader.error(node, f"unsupported command {head!r} (supported: declare-const, assert)")
        else:
            raise reader.error(node, "unexpected text outside parentheses")
    conjunctions = _product([_dnf(formula, max_disjuncts) for formula in asserts], max_disjuncts)
    n_in, n_out, disjuncts = _resolve(reader, conjunctions, n_inputs, n_outputs)
    return VnnlibProperty(n_in, n_out, tuple(disjuncts), reader.has_strict)


def _vector(values, what: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise VnnlibError(f"counterexample {what} has non-finite entries")
    return v


def write_counterexample(x, y) -> str:
    """The VNN-COMP result text for a counterexample: ``sat`` then ``((X_0 v) ... (Y_0 v) ...)``.

    One pair per line, flat names ``X_i`` / ``Y_j``, values in shortest round-trip ``repr``
    (so reading them back gives the same doubles). No trailing newline.
    """
    x, y = _vector(x, "x"), _vector(y, "y")
    pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(x)] + [f"(Y_{j} {float(v)!r})" for j, v in enumerate(y)]
    return "sat\n(" + "\n ".join(pairs) + ")"


def read_counterexample(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from a counterexample text (with or without a leading ``sat``), flat order."""
    nodes = _parse_sexprs(text)
    if nodes and not nodes[0].is_list and nodes[0].text in ("sat", "violated"):
        nodes = nodes[1:]
    if len(nodes) != 1 or not nodes[0].is_list:
        raise VnnlibError("a counterexample is one list ((X_0 v) ... (Y_0 v) ...), optionally after 'sat'")
    values: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
    for pair in nodes[0].items:
        if not pair.is_list or len(pair.items) != 2 or any(p.is_list for p in pair.items):
            raise _error(pair, text, "expected a pair (X_i value) or (Y_j value)")
        name, number = pair.items[0].text, pair.items[1].text
        match = re.match(r"^([XY])_(\d+)$", name)
        if not match or not _NUMBER.match(number):
            raise _error(pair, text, "expected a pair (X_i value) or (Y_j value)")
        index = int(match.group(2))
        if index in values[match.group(1)]:
            raise _error(pair, text, f"{name} appears twice")
        values[match.group(1)][index] = float(number)
    arrays = []
    for letter in "XY":
        got = values[letter]
        if sorted(got) != list(range(len(got))):
            missing = next(i for i in range(len(got) + 1) if i not in got)
            raise VnnlibError(f"counterexample lacks {letter}_{missing}")
        arrays.append(np.array([got[i] for i in range(len(got))], dtype=np.float64))
    return arrays[0], arrays[1]


def check_counterexample(prop: VnnlibProperty, x, y, tol: float = 1e-4) -> bool:
    """Whether ``(x, y)`` lies in the unsafe set: in some disjunct's box and rows, up to ``tol``.

    Like the competition's checker, this does not evaluate the network: pass ``y = net(x)``.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.size != prop.n_inputs or y.size != prop.n_outputs:
        raise VnnlibError(
            f"counterexample has {x.size} inputs and {y.size} outputs; the property has {prop.n_inputs} and {prop.n_outputs}"
        )
    return any(d.contains(x, y, tol) for d in prop.disjuncts)
