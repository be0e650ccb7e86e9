"""Model importers: ONNX files and torch modules -> :class:`milp.core.network.Network`.

* :func:`load_onnx` reads an ONNX file and checks it against onnxruntime (:func:`load_onnx_nodes`
  also gives the affine map of named inner tensors);
* :func:`load_model` reads a model file for re-checked answers: ``(network, reference)``;
* :func:`from_torch` converts a torch module and checks it against torch;
* :func:`save_onnx` writes any Network as an ONNX file;
* :class:`OnnxReference` / :class:`TorchReference` evaluate the original model
  (``ref(x) -> y`` in float64) to re-check results;
* :class:`Residual` is the torch module for residual blocks (``x + body(x)``);
* every failure raises :class:`ModelImportError` (a ``ValueError``).

torch is imported only by :func:`from_torch`, :class:`TorchReference` and :class:`Residual`.
"""

from .onnx_export import save_onnx
from .onnx_loader import SUPPORTED_OPS, load_onnx, load_onnx_nodes
from .reference import ModelImportError, OnnxReference, TorchReference, load_model
from .torch_loader import SUPPORTED_MODULES, from_torch

__all__ = [
    "load_onnx",
    "load_onnx_nodes",
    "load_model",
    "from_torch",
    "save_onnx",
    "OnnxReference",
    "TorchReference",
    "Residual",
    "ModelImportError",
    "SUPPORTED_OPS",
    "SUPPORTED_MODULES",
]


def __getattr__(name: str):
    # Residual subclasses torch.nn.Module, so it is created on first access.
    if name == "Residual":
        from .torch_loader import Residual

        return Residual
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
