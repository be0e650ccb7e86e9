"""Independent evaluators of an imported model, and the import check built on them.

An imported :class:`~milp.core.network.Network` is only trusted after it agrees with the
framework that defines the model: :class:`OnnxReference` runs the ONNX file in
onnxruntime, :class:`TorchReference` runs a copy of the torch module. Both map a batch
``x`` of shape ``(n, input_dim)`` to ``y`` of shape ``(n, output_dim)`` in float64, so
they can also re-check every witness a query reports.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from milp.core.errors import InputError

from milp.core.box import Box, parse_box
from milp.core.network import Network

__all__ = ["ModelImportError", "OnnxReference", "TorchReference", "check_against", "tolerance_for"]


class ModelImportError(InputError):
    """A model file or module that cannot be turned into a Network, or whose import does not match its framework."""


# Tolerance factor of the import check per compute precision (see ``check_against``).
# float32 has a unit roundoff of 6e-8; the rounding of a few thousand-term dot products
# through a handful of layers stays far below 1e-4 of the largest value in the
# computation, while a wrong import (a transposed matrix, a lost bias, a sign) is off by
# the order of the values themselves. float16 (roundoff 5e-4) and bfloat16 (4e-3) get
# the same margin scaled by their roundoff; float64 leaves room for summation order only.
_TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 3e-2, "bfloat16": 2e-1}


def tolerance_for(dtype) -> float:
    """The import-check tolerance factor for a compute dtype (a numpy dtype or its name)."""
    name = str(dtype) if isinstance(dtype, str) else np.dtype(dtype).name
    if name not in _TOLERANCE:
        raise ModelImportError(f"no check tolerance for the floating-point type {name}")
    return _TOLERANCE[name]


def _numpy_dtype(ort_type: str):
    names = {
        "tensor(float)": np.float32,
        "tensor(double)": np.float64,
        "tensor(float16)": np.float16,
    }
    if ort_type not in names:
        raise ModelImportError(f"the model input has type {ort_type}; only float, double and float16 inputs are supported")
    return names[ort_type]


class OnnxReference:
    """``ref(x) -> y``: the ONNX model evaluated by onnxruntime (one thread).

    ``x`` has shape ``(n, input_dim)`` (or ``(input_dim,)``); it is cast to the model's
    input type and reshaped to its input shape. With ``extra_outputs`` (names of inner tensors),
    each row of the result is the output followed by those tensors, flattened. A model with a symbolic batch dimension
    gets the whole batch at once, any other one input at a time. Returns float64 of shape
    ``(n, output_dim)`` (or ``(output_dim,)`` for one input).
    """

    def __init__(self, path: str | os.PathLike, extra_outputs: Sequence[str] = ()) -> None:
        import onnxruntime as ort

        self.path = str(path)
        self.extra_outputs = tuple(extra_outputs)
        source = self.path
        if self.extra_outputs:
            source = self._with_outputs(self.extra_outputs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own, unrelated exception types
            first = " ".join(str(error).split())  # its messages run over several lines
            raise ModelImportError(f"onnxruntime cannot load {self.path}: {first}") from None
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 + len(self.extra_outputs):
            raise ModelImportError(
                f"{self.path}: the model must have exactly one input and one output, "
                f"it has {len(inputs)} inputs and {len(outputs)} outputs"
            )
        self.input_name = inputs[0].name
        self.dtype = _numpy_dtype(inputs[0].type)
        shape = list(inputs[0].shape)
        self.batched = bool(shape) and not isinstance(shape[0], int)
        rest = shape[1:] if self.batched else shape
        if any(not isinstance(d, int) for d in rest):
            raise ModelImportError(f"{self.path}: input shape {shape} has a symbolic dimension other than the batch dimension")
        # One input at a time: the model's own shape, or batch 1 when the batch is symbolic.
        self.sample_shape = tuple([1, *rest] if self.batched else rest)
        self.feature_shape = tuple(rest)
        self.input_dim = int(np.prod(rest, dtype=np.int64))

    def _with_outputs(self, names: Sequence[str]) -> bytes:
        """The model with the named inner tensors as further graph outputs (serialised)."""
        from onnx import load_model

        try:
            model = load_model(self.path)
        except Exception as error:
            raise ModelImportError(f"cannot read {self.path}: {error}") from None
        produced = {out for node in model.graph.node for out in node.output}
        for name in names:
            if name not in produced:
                raise ModelImportError(f"{self.path} has no tensor named {name!r}")
            value = model.graph.output.add()
            value.name = name  # no type: onnxruntime infers it
        return model.SerializeToString()

    def _run(self, x: np.ndarray) -> np.ndarray:
        outputs = self.session.run(None, {self.input_name: x})
        if len(outputs) == 1:
            return np.asarray(outputs[0], dtype=np.float64)
        # the output, then each extra tensor, flattened per sample and side by side
        n = x.shape[0] if self.batched else 1
        return np.hstack([np.asarray(o, dtype=np.float64).reshape(n, -1) for o in outputs])

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != self.input_dim:
            raise ModelImportError(f"input has {x.shape[1]} values, the model takes {self.input_dim}")
        n = x.shape[0]
        cast = x.astype(self.dtype)
        y = None
        if self.batched and n > 1:
            try:
                out = self._run(cast.reshape(n, *self.feature_shape))
                if out.ndim >= 1 and out.shape[0] == n:
                    y = out.reshape(n, -1)
            except Exception:  # a model that only runs with batch 1 (e.g. reshapes the batch away)
                y = None
        if y is None:
            y = np.stack([self._run(row.reshape(self.sample_shape)).reshape(-1) for row in cast])
        return y[0] if single else y


class TorchReference:
    """``ref(x) -> y``: a copy of a torch module in eval mode, run in ``dtype`` ("float64" or "float32").

    ``x`` has shape ``(n, input_dim)`` (or ``(input_dim,)``); returns float64 of shape
    ``(n, output_dim)`` (or ``(output_dim,)``). The caller's module is not modified.
    """

    def __init__(self, module, dtype: str = "float64") -> None:
        import torch

        if dtype not in ("float64", "float32"):
            raise ModelImportError(f"TorchReference dtype must be 'float64' or 'float32', got {dtype!r}")
        self.dtype = getattr(torch, dtype)
        self.module = copy.deepcopy(module).to(self.dtype).eval()

    def __call__(self, x) -> np.ndarray:
        import torch

        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        with torch.no_grad():
            y = self.module(torch.from_numpy(x).to(self.dtype))
        y = y.detach().to(torch.float64).numpy().reshape(x.shape[0], -1)
        return y[0] if single else y


def as_box(box, input_dim: int) -> Box | None:
    """``None``, a :class:`Box`, a ``(lower, upper)`` pair or box text, checked against ``input_dim``."""
    if box is None:
        return None
    if isinstance(box, str):
        return parse_box(box, input_dim)
    if not isinstance(box, Box):
        lower, upper = box
        box = Box(lower, upper)
    return box.check_dim(input_dim)


def check_against(
    network: Network,
    reference: Callable[[np.ndarray], np.ndarray],
    *,
    box: Box | None,
    samples: int,
    seed: int,
    tolerance: float,
    what: str,
) -> None:
    """Raise :class:`ModelImportError` unless ``network`` and ``reference`` agree on random inputs.

    Inputs are ``samples`` uniform points of ``box``, or standard normal without a box.
    The allowed error is ``tolerance * (1 + m)`` where ``m`` is the largest magnitude of
    any output or pre-activation of the float64 forward pass: low-precision rounding grows
    with the values it rounds, including hidden values that cancel in the output.
    """
    if samples <= 0:
        return
    rng = np.random.default_rng(seed)
    x = box.sample(samples, rng) if box is not None else rng.standard_normal((samples, network.input_dim))
    trace = network.forward(x)
    y = trace.output
    y_ref = np.asarray(reference(x), dtype=np.float64)
    if y_ref.shape != y.shape:
        raise ModelImportError(f"{what} gives outputs of shape {y_ref.shape[1:]}, the imported network {y.shape[1:]}")
    scale = 1.0 + max([float(np.max(np.abs(v), initial=0.0)) for v in (y, *trace.pre_activations)])
    error = np.abs(y - y_ref)
    error[~np.isfinite(y_ref)] = np.inf
    worst = np.unravel_index(int(np.argmax(error)), error.shape) if error.size else None
    if worst is not None and not error[worst] <= tolerance * scale:
        i, j = (int(k) for k in worst)
        raise ModelImportError(
            f"the imported network does not match {what}: at input {np.array2string(x[i], precision=6, separator=', ')} "
            f"output {j} is {y[i, j]:.9g} but the reference gives {y_ref[i, j]:.9g} "
            f"(difference {error[i, j]:.3g}, allowed {tolerance * scale:.3g})"
        )


def load_model(path, box: Box | None = None, check: bool = True) -> tuple[Network, "OnnxReference"]:
    """A model file as ``(network, reference)``: the float64 network and the original model
    (onnxruntime on the file) that re-checks every witness. Only ONNX files are read here;
    torch modules go through :func:`importers.from_torch`.
    """
    from .onnx_loader import load_onnx

    file = Path(path)
    if not file.exists():
        raise ModelImportError(f"model file {str(path)!r} does not exist")
    if file.suffix.lower() != ".onnx":
        raise ModelImportError(f"model file {str(path)!r}: only .onnx files are read here (use importers.from_torch for torch modules)")
    return load_onnx(file, box=box, check=check), OnnxReference(file)
