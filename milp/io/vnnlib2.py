"""VNN-LIB 2.0 queries: networks declared by name, hidden nodes, several networks in one query.

The text is read by the maintained parser of the standard, the ``vnnlib`` package (it type-checks
the query and reports undeclared variables, bad indices and non-linear terms with their line). This
module turns its syntax tree into the project's values:

* :func:`read_vnnlib2` gives a :class:`Query`: the network declarations (inputs, ``declare-hidden``
  nodes with their ONNX names, outputs, ``equal-to`` / ``isomorphic-to``) and the assertions in
  disjunctive normal form, each comparison a linear :class:`Atom` over scalar variables;
* :func:`build_joint` puts the networks of a query side by side in one network
  (:func:`milp.core.compose.side_by_side`) and the query into a :class:`~milp.io.vnnlib.VnnlibProperty`
  over that network, so the verifier of VNN-LIB 1.0 answers it: one branch and bound over all the
  networks at once.

How a query maps onto one network (a :class:`JointQuery`):

* **Inputs.** Every input element of every network is a position of one joint input, except that an
  equation ``(== A[i] C[j])`` (or ``(== (- A[i] C[j]) 0)``, any non-zero multiple) asserted in every
  disjunct *ties* the two into one position: that is how a query says "the same input". Comparisons
  of one input element with a number bound its position (the box of each disjunct); every position
  needs a lower and an upper bound.
* **Outputs and hidden nodes.** The joint network outputs each network's output, then its declared
  hidden nodes (each an affine map of the network's earlier ReLU layers, post- or pre-activation,
  whatever the ONNX tensor is), network after network. Any other comparison is a row over these
  columns; one that mentions an input over more than a bound adds the joint input as further columns.
* ``<`` and ``>`` are read as ``<=`` and ``>=``, as for VNN-LIB 1.0 (the unsafe set can only grow, so
  ``unsat`` stays true; a counterexample is checked against the rows); ``!=`` is not supported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from milp.core.box import Box
from milp.core.compose import side_by_side
from milp.core.network import Affine, Network
from milp.io.vnnlib import MAX_DISJUNCTS, Disjunct, VnnlibError, VnnlibProperty

__all__ = ["TensorDecl", "NetworkDecl", "Atom", "Query", "JointQuery", "Implementation", "is_vnnlib2", "read_vnnlib2",
           "build_joint"]

_VERSION = re.compile(r"\(\s*vnnlib-version\s*<(\d+)\.(\d+)>\s*\)")


def is_vnnlib2(text: str) -> bool:
    """Whether a query text declares VNN-LIB version 2 or later (``(vnnlib-version <2.0>)``)."""
    match = _VERSION.search(text)
    return bool(match) and int(match.group(1)) >= 2


@dataclass(frozen=True)
class TensorDecl:
    """A declared tensor: ``kind`` is ``input``, ``hidden`` or ``output``; ``dtype`` as written (``real``,
    ``float32``, ...); ``onnx_name`` the ONNX tensor of a hidden node."""

    network: str
    name: str
    kind: str
    dtype: str
    shape: tuple[int, ...]
    onnx_name: str | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class NetworkDecl:
    """A ``declare-network``: its name, ``equal_to`` (another declaration's name, which it shares the
    ONNX model of) or ``isomorphic_to``, and its tensors in declaration order."""

    name: str
    equal_to: str | None
    isomorphic_to: str | None
    inputs: tuple[TensorDecl, ...]
    hidden: tuple[TensorDecl, ...]
    outputs: tuple[TensorDecl, ...]


@dataclass(frozen=True)
class Atom:
    """``sum_i coeffs[i] * variable_i  op  rhs`` with ``op`` one of ``<=``, ``<``, ``==``; a variable is
    ``(tensor name, flat index)`` (row-major). ``line`` is the assertion's line in the file."""

    terms: tuple[tuple[tuple[str, int], float], ...]
    op: str
    rhs: float
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class Query:
    """A VNN-LIB 2.0 query: the networks and the unsafe set as a union of conjunctions of atoms."""

    version: str
    networks: tuple[NetworkDecl, ...]
    disjuncts: tuple[tuple[Atom, ...], ...]

    def tensor(self, name: str) -> TensorDecl:
        for network in self.networks:
            for t in (*network.inputs, *network.hidden, *network.outputs):
                if t.name == name:
                    return t
        raise VnnlibError(f"no tensor named {name!r} is declared")

    def implemented(self) -> tuple[str, ...]:
        """The networks that need a model file: all but those ``equal-to`` another."""
        return tuple(n.name for n in self.networks if not n.equal_to)


def _parser_error(error: Exception, source: str) -> VnnlibError:
    """The parser's message (a JSON list of errors, or one line) as one line naming the file and line."""
    text = str(error)
    try:
        errors = json.loads(text)["errors"]
        parts = [f"line {e.get('line', '?')}: {e.get('message', '')}"
                 + (f" '{e['offendingSymbol']}'" if e.get("offendingSymbol") else "") + f": {e.get('hint', '')}".rstrip(": ")
                 for e in errors]
        text = "; ".join(parts)
        if any("type 'Unknown'" in e.get("hint", "") for e in errors):
            text += " (an element type the parser does not know: write 'real' or an ONNX type such as float32)"
    except (ValueError, KeyError, TypeError):
        text = " ".join(text.split())
    return VnnlibError(f"{source}: {text}")


def _dtype(value) -> str:
    name = str(value).split(".")[-1]
    return {"Real": "real", "F16": "float16", "F32": "float32", "F64": "float64", "BF16": "bfloat16"}.get(name, name.lower())


def _flat(shape: tuple[int, ...], indices) -> int:
    indices = tuple(int(i) for i in indices)
    if not shape:
        return 0
    return int(np.ravel_multi_index(indices, shape))


def read_vnnlib2(path_or_text) -> Query:
    """Read a VNN-LIB 2.0 query (a path, or the text itself) with the ``vnnlib`` parser."""
    try:
        import vnnlib
    except ImportError:  # pragma: no cover - vnnlib is a dependency
        raise VnnlibError("reading VNN-LIB 2.0 needs the 'vnnlib' package (pip install vnnlib)") from None
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "(" not in path_or_text):
        path = Path(path_or_text)
        source = str(path)
        text = path.read_text()
    else:
        source, text = "query", str(path_or_text)
    try:
        parsed = vnnlib.parse_query_string(text)
    except vnnlib.VNNLibException as error:
        raise _parser_error(error, source) from None
    version = _VERSION.search(text)
    networks = []
    for n in parsed.networks:
        def decls(items, kind):
            out = []
            for t in items:
                onnx_name = t.onnx_name
                if onnx_name is not None and len(onnx_name) >= 2 and onnx_name[0] == onnx_name[-1] == '"':
                    onnx_name = re.sub(r'\\(["\\])', r"\1", onnx_name[1:-1])
                out.append(TensorDecl(n.name, t.name, kind, _dtype(t.dtype), tuple(int(d) for d in t.shape), onnx_name))
            return tuple(out)

        networks.append(NetworkDecl(n.name, n.equal_to or None, n.isometric_to or None,
                                    decls(n.inputs, "input"), decls(n.hidden, "hidden"), decls(n.outputs, "output")))
    shapes = {t.name: t.shape for n in networks for t in (*n.inputs, *n.hidden, *n.outputs)}
    disjuncts: list[tuple[Atom, ...]] = [()]
    for assertion in parsed.assertions:
        try:
            dnf = assertion.expr.to_dnf()
        except vnnlib.VNNLibException as error:
            raise _parser_error(error, source) from None
        options = [tuple(_atom(c, shapes, source, vnnlib) for c in conjunction) for conjunction in dnf]
        if len(disjuncts) * len(options) > MAX_DISJUNCTS:
            raise VnnlibError(f"{source}: the query has more than {MAX_DISJUNCTS} disjuncts in disjunctive normal form")
        disjuncts = [d + o for d in disjuncts for o in options]
    return Query(f"{version.group(1)}.{version.group(2)}" if version else "2.0", tuple(networks), tuple(disjuncts))


def _atom(comparison, shapes: dict, source: str, vnnlib) -> Atom:
    kind = type(comparison).__name__
    if kind == "NotEqual":
        raise VnnlibError(f"{source}: '!=' is not supported ({comparison}): the set it describes is not convex")
    try:
        left, right = comparison.lhs.to_linear_expr(), comparison.rhs.to_linear_expr()
    except vnnlib.VNNLibException as error:
        raise _parser_error(error, source) from None
    coeffs: dict[tuple[str, int], float] = {}
    for sign, side in ((1.0, left), (-1.0, right)):
        for term in side.terms:
            var = term.var
            key = (var.name, _flat(shapes[var.name], var.indices))
            coeffs[key] = coeffs.get(key, 0.0) + sign * float(term.coeff)
    rhs = float(right.constant) - float(left.constant)
    op = {"LessEqual": "<=", "LessThan": "<", "Equal": "==", "GreaterEqual": ">=", "GreaterThan": ">"}[kind]
    if op in (">=", ">"):  # a >= b is -a <= -b
        coeffs, rhs, op = {k: -v for k, v in coeffs.items()}, -rhs, op.replace(">", "<")
    terms = tuple(sorted((k, v) for k, v in coeffs.items() if v != 0.0))
    return Atom(terms, op, rhs, str(comparison))


# ------------------------------------------------------------------ one network for the query
@dataclass(frozen=True)
class Implementation:
    """A declared network's model: the float64 ``network``, the affine map of each hidden node it
    declares (by ONNX name, over the network's sources), and the model's input element type."""

    network: Network
    hidden: Mapping[str, Affine]
    input_dtype: str = "real"


@dataclass(frozen=True, eq=False)
class JointQuery:
    """The query as one network and one property (see the module docstring).

    ``positions[name]`` (input_dim of that network,) are the joint input positions a network reads;
    ``columns[tensor]`` (size,) the joint output columns of an output or hidden tensor (and of an input
    tensor when inputs are columns too).
    """

    query: Query
    network: Network
    prop: VnnlibProperty
    positions: Mapping[str, np.ndarray]
    columns: Mapping[str, np.ndarray]
    input_columns: np.ndarray | None

    def reference(self, references: Mapping[str, Callable[[np.ndarray], np.ndarray]]) -> Callable[[np.ndarray], np.ndarray]:
        """A reference for the joint network from one per declared network: ``references[name](x)`` maps
        (n, that network's inputs) to (n, its outputs then its hidden nodes), e.g. onnxruntime on its file."""
        order = [n.name for n in self.query.networks]

        def joint(x) -> np.ndarray:
            x = np.asarray(x, dtype=np.float64)
            single = x.ndim == 1
            x = np.atleast_2d(x)
            parts = [np.asarray(references[name](x[:, self.positions[name]]), dtype=np.float64).reshape(x.shape[0], -1)
                     for name in order]
            if self.input_columns is not None:
                parts.append(x)
            out = np.hstack(parts)
            return out[0] if single else out

        return joint

    def assignment(self, x: np.ndarray, values: np.ndarray) -> list[tuple[TensorDecl, np.ndarray]]:
        """Every declared tensor with its value at a counterexample, in declaration order (per network:
        inputs, hidden nodes, outputs); ``x`` is the joint input, ``values`` the joint outputs."""
        out = []
        for n in self.query.networks:
            offset = 0
            for t in n.inputs:
                out.append((t, np.asarray(x)[self.positions[n.name][offset : offset + t.size]]))
                offset += t.size
            for t in (*n.hidden, *n.outputs):
                out.append((t, np.asarray(values)[self.columns[t.name]]))
        return out

    def assignment_text(self, x: np.ndarray, values: np.ndarray) -> str:
        """The standard's command-line assignment: ``name type [dims]`` then one value per line."""
        lines = []
        for t, v in self.assignment(x, values):
            lines.append(f"{t.name} {t.dtype} [{','.join(str(d) for d in t.shape)}]")
            lines.extend(repr(float(e)) for e in np.asarray(v).reshape(-1))
        return "\n".join(lines)


class _Ties:
    """Union-find over the input variables ``(tensor, index)``."""

    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, a):
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def join(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)


def _is_tie(atom: Atom, inputs: set[str]) -> bool:
    if atom.op != "==" or atom.rhs != 0.0 or len(atom.terms) != 2:
        return False
    ((a, ca), (b, cb)) = atom.terms
    return a[0] in inputs and b[0] in inputs and ca == -cb


def build_joint(query: Query, implementations: Mapping[str, Implementation]) -> JointQuery:
    """The query as one network and one property. ``implementations`` maps every declared network name
    (those ``equal-to`` another included) to its :class:`Implementation`."""
    inputs = {t.name: t for n in query.networks for t in n.inputs}
    nets = []
    for n in query.networks:
        if n.name not in implementations:
            raise VnnlibError(f"network {n.name!r} is declared in the query but no model is given for it")
        impl = implementations[n.name]
        if len(n.inputs) != 1 or len(n.outputs) != 1:
            raise VnnlibError(f"network {n.name!r} declares {len(n.inputs)} inputs and {len(n.outputs)} outputs; "
                              "milp reads models with one input and one output")
        (x_decl,), (y_decl,) = n.inputs, n.outputs
        if x_decl.size != impl.network.input_dim:
            raise VnnlibError(f"{x_decl.name} of network {n.name!r} is declared {list(x_decl.shape)} ({x_decl.size} values) "
                              f"but the model's input has {impl.network.input_dim} values")
        if y_decl.size != impl.network.output_dim:
            raise VnnlibError(f"{y_decl.name} of network {n.name!r} is declared {list(y_decl.shape)} ({y_decl.size} values) "
                              f"but the model's output has {impl.network.output_dim} values")
        if x_decl.dtype != "real" and x_decl.dtype != impl.input_dtype:
            raise VnnlibError(f"{x_decl.name} of network {n.name!r} is declared {x_decl.dtype} but the model's input is "
                              f"{impl.input_dtype} (declare it real to accept the model's own type)")
        maps = [impl.network.output]
        for h in n.hidden:
            if h.onnx_name not in impl.hidden:
                raise VnnlibError(f"hidden node {h.name} of network {n.name!r}: the model has no tensor {h.onnx_name!r}")
            form = impl.hidden[h.onnx_name]
            if form.out_dim != h.size:
                raise VnnlibError(f"hidden node {h.name} of network {n.name!r} is declared {list(h.shape)} ({h.size} values) "
                                  f"but the tensor {h.onnx_name!r} has {form.out_dim}")
            maps.append(form)
        nets.append(Network(impl.network.input_dim, impl.network.relu_layers, Affine.stack(maps)))

    # ties: equations between two input variables asserted in every disjunct
    ties = _Ties()
    shared = set.intersection(*({a for a in d if _is_tie(a, set(inputs))} for d in query.disjuncts)) if query.disjuncts else set()
    for atom in shared:
        ties.join(atom.terms[0][0], atom.terms[1][0])
    position_of: dict = {}
    for n in query.networks:
        for i in range(n.inputs[0].size):
            root = ties.find((n.inputs[0].name, i))
            position_of.setdefault(root, len(position_of))
    positions = {n.name: np.array([position_of[ties.find((n.inputs[0].name, i))] for i in range(n.inputs[0].size)])
                 for n in query.networks}
    d = len(position_of)

    columns: dict[str, np.ndarray] = {}
    offset = 0
    for n in query.networks:
        for t in (*n.outputs, *n.hidden):
            columns[t.name] = np.arange(offset, offset + t.size)
            offset += t.size
    # an input compared with more than a number: the joint input becomes columns too
    def is_bound(atom: Atom) -> bool:
        return len(atom.terms) == 1 and atom.terms[0][0][0] in inputs

    needs_inputs = any(not is_bound(a) and not (a in shared) and any(v[0] in inputs for v, _ in a.terms)
                       for dis in query.disjuncts for a in dis)
    input_columns = None
    if needs_inputs:
        input_columns = np.arange(offset, offset + d)
        offset += d
    n_cols = offset

    def column(var) -> int:
        name, index = var
        if name in inputs:
            return int(input_columns[positions[inputs[name].network][index]])
        return int(columns[name][index])

    disjuncts, has_strict, empty = [], False, 0
    for dis in query.disjuncts:
        lower, upper = np.full(d, -np.inf), np.full(d, np.inf)
        rows, rhs, strict = [], [], []
        for atom in dis:
            if atom in shared:
                continue
            if is_bound(atom):
                (var, c), = atom.terms
                p = positions[inputs[var[0]].network][var[1]]
                value = atom.rhs / c
                if value * c != atom.rhs:  # rounded: widen outward, the box then contains the exact one
                    lo, hi = np.nextafter(value, -np.inf), np.nextafter(value, np.inf)
                else:
                    lo = hi = value
                if atom.op == "==" or c > 0:
                    upper[p] = min(upper[p], hi)
                if atom.op == "==" or c < 0:
                    lower[p] = max(lower[p], lo)
                has_strict |= atom.op == "<"
                continue
            row = np.zeros(n_cols)
            for var, c in atom.terms:
                row[column(var)] += c
            for sign in ((1.0, -1.0) if atom.op == "==" else (1.0,)):
                rows.append(sign * row)
                rhs.append(sign * atom.rhs)
                strict.append(atom.op == "<")
            has_strict |= atom.op == "<"
        missing = np.flatnonzero(~np.isfinite(lower) | ~np.isfinite(upper))
        if missing.size:
            name, index = next((k, i) for k, p in positions.items() for i, q in enumerate(p) if q == missing[0])
            decl = next(n for n in query.networks if n.name == name).inputs[0]
            raise VnnlibError(f"input {decl.name}[{index}] of network {name!r} needs a lower and an upper bound in every "
                              "disjunct of the query")
        if np.any(lower > upper):
            empty += 1
            continue
        disjuncts.append(Disjunct(Box(lower, upper), np.array(rows).reshape(len(rows), n_cols), np.array(rhs), np.array(strict, dtype=bool)))
    if not disjuncts:
        raise VnnlibError("the unsafe set is empty as written: every disjunct has contradictory input bounds")
    joint = side_by_side(nets, [positions[n.name] for n in query.networks], d)
    if input_columns is not None:
        joint = Network(d, joint.relu_layers, Affine.stack([joint.output, Affine(((0, np.eye(d)),), np.zeros(d))]))
    prop = VnnlibProperty(d, n_cols, tuple(disjuncts), has_strict)
    return JointQuery(query, joint, prop, positions, columns, input_columns)
