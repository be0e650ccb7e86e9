"""Turn a torch module into a :class:`milp.core.network.Network`.

Supported modules (in eval-mode semantics): ``nn.Sequential`` (nested too), ``nn.Linear``,
``nn.ReLU``, ``nn.Flatten`` (of a ``(batch, features)`` input), ``nn.Identity``,
``nn.Dropout`` (identity), ``nn.BatchNorm1d`` (running statistics folded into an affine
map) and :class:`Residual` — ``Residual(body)`` computes ``x + body(x)``, the way to
write a residual block. Subclasses that override ``forward`` are not accepted, since
their computation is not known. torch is imported only when a function here is called.
"""

from __future__ import annotations

import functools

import numpy as np

from milp.core.network import Network

from .graph import Builder, Expr
from .reference import ModelImportError, TorchReference, as_box, check_against, tolerance_for

__all__ = ["from_torch", "Residual", "SUPPORTED_MODULES"]

SUPPORTED_MODULES = ("Sequential", "Linear", "ReLU", "Flatten", "Identity", "Dropout", "BatchNorm1d", "importers.Residual")


@functools.cache
def _residual_class():
    from torch import nn

    class Residual(nn.Module):
        """A residual block: ``forward(x) = x + body(x)``; ``body`` maps features to the same number of features."""

        def __init__(self, body: nn.Module) -> None:
            super().__init__()
            self.body = body

        def forward(self, x):
            return x + self.body(x)

    Residual.__module__ = __name__
    Residual.__qualname__ = "Residual"
    return Residual


def __getattr__(name: str):
    # ``Residual`` subclasses torch.nn.Module; it is created on first use so that the
    # rest of the package works without torch.
    if name == "Residual":
        return _residual_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _kind(module) -> str | None:
    """The supported kind of a module, or None. A subclass overriding ``forward`` is not supported."""
    from torch import nn

    kinds = {
        nn.Sequential: "Sequential", nn.Linear: "Linear", nn.ReLU: "ReLU", nn.Flatten: "Flatten",
        nn.Identity: "Identity", nn.Dropout: "Dropout", nn.BatchNorm1d: "BatchNorm1d", _residual_class(): "Residual",
    }
    for cls, kind in kinds.items():
        if isinstance(module, cls) and type(module).forward is cls.forward:
            return kind
    return None


def _problems(module, path: str) -> list[str]:
    """Every module of the tree that cannot be imported, as readable lines."""
    kind = _kind(module)
    where = f"module '{path or '(root)'}' ({type(module).__name__})"
    if kind is None:
        return [f"{where}: unsupported module"]
    if kind == "Flatten" and not (module.start_dim in (1, -1) and module.end_dim in (1, -1)):
        return [f"{where}: only Flatten of a (batch, features) input is supported (start_dim=1, end_dim=-1)"]
    if kind == "BatchNorm1d" and module.running_mean is None:
        return [f"{where}: BatchNorm1d without running statistics (track_running_stats=False) depends on the batch"]
    if kind == "Sequential":
        return [line for name, child in module.named_children() for line in _problems(child, f"{path}.{name}" if path else name)]
    if kind == "Residual":
        return _problems(module.body, f"{path}.body" if path else "body")
    return []


def _array(tensor, what: str) -> np.ndarray:
    import torch

    array = tensor.detach().cpu().to(dtype=torch.float64).numpy().copy()
    if not np.all(np.isfinite(array)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ModelImportError(f"{what} has a non-finite value {array[bad]} at index {bad}")
    return array


def _first_width(module) -> int | None:
    """The input width the first layer expects, when a layer says so."""
    kind = _kind(module)
    if kind == "Linear":
        return int(module.in_features)
    if kind == "BatchNorm1d":
        return int(module.num_features)
    if kind == "Sequential":
        for child in module.children():
            width = _first_width(child)
            if width is not None:
                return width
            if _kind(child) not in ("Flatten", "Identity", "Dropout", "ReLU"):
                return None
    if kind == "Residual":
        return _first_width(module.body)
    return None


def _convert(module, expr: Expr, builder: Builder, path: str) -> Expr:
    kind = _kind(module)
    where = f"module '{path or '(root)'}' ({type(module).__name__})"
    if kind == "Sequential":
        for name, child in module.named_children():
            expr = _convert(child, expr, builder, f"{path}.{name}" if path else name)
        return expr
    if kind == "Residual":
        out = _convert(module.body, expr, builder, f"{path}.body" if path else "body")
        if out.size != expr.size:
            raise ModelImportError(f"{where}: the body maps {expr.size} features to {out.size}; a residual block needs the same number")
        return expr.add(out)
    if kind == "ReLU":
        return builder.relu(expr)
    if kind in ("Flatten", "Identity", "Dropout"):
        return expr
    if kind == "Linear":
        if expr.size != module.in_features:
            raise ModelImportError(f"{where}: expects {module.in_features} features but receives {expr.size}")
        out = expr.matmul(_array(module.weight, f"{where} weight").T, var_left=True)
        if module.bias is not None:
            out = out.add_const(_array(module.bias, f"{where} bias"))
        return out
    if kind == "BatchNorm1d":
        if expr.size != module.num_features:
            raise ModelImportError(f"{where}: expects {module.num_features} features but receives {expr.size}")
        mean = _array(module.running_mean, f"{where} running_mean")
        var = _array(module.running_var, f"{where} running_var")
        weight = _array(module.weight, f"{where} weight") if module.weight is not None else np.ones_like(mean)
        bias = _array(module.bias, f"{where} bias") if module.bias is not None else np.zeros_like(mean)
        return expr.add_const(-mean).scale(weight / np.sqrt(var + module.eps)).add_const(bias)
    raise ModelImportError(f"{where}: unsupported module")  # _problems reports these first


def from_torch(module, input_dim: int | None = None, box=None, check: bool = True, samples: int = 256, seed: int = 0) -> Network:
    """The network a torch module computes in eval mode, on inputs of shape ``(batch, input_dim)``.

    ``input_dim`` defaults to the width the first ``Linear``/``BatchNorm1d`` expects.
    With ``check`` the network is compared with the module run in float64 and in
    float32 on ``samples`` random inputs (uniform in ``box``, else standard normal).
    Raises :class:`ModelImportError` naming every unsupported module (see the module
    docstring for the supported ones) or when the check fails. ``module`` is not modified.
    """
    from torch import nn

    if not isinstance(module, nn.Module):
        raise ModelImportError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    problems = _problems(module, "")
    if problems:
        raise ModelImportError(
            "cannot import the torch module:\n  " + "\n  ".join(problems)
            + f"\nsupported modules: {', '.join(SUPPORTED_MODULES)}"
        )
    if input_dim is None:
        input_dim = _first_width(module)
        if input_dim is None:
            raise ModelImportError("cannot tell the input width from the module; pass input_dim")
    if int(input_dim) < 1:
        raise ModelImportError(f"input_dim must be at least 1, got {input_dim}")
    builder = Builder((int(input_dim),))
    output = _convert(module, builder.input, builder, "")
    network = builder.network(output, source_description=f"torch module {type(module).__name__}")
    if check:
        box = as_box(box, network.input_dim)
        for dtype in ("float64", "float32"):
            check_against(
                network,
                TorchReference(module, dtype),
                box=box,
                samples=samples,
                seed=seed,
                tolerance=tolerance_for(dtype),
                what=f"the torch module in {dtype}",
            )
    return network
