"""Inference models: BatchNorm folded into the layer before it (:func:`fuse`), channels-last, ``torch.compile``.

Folding: in eval mode a BatchNorm (Ioffe & Szegedy 2015) is the per-channel affine map
``y = (x - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``; when ``x = W * u + b`` is the output of a
convolution or linear layer that nothing else uses, the pair equals that layer with weight ``W * s`` (scaled
per output channel) and bias ``(b - mean) * s + beta``.

Pairs are found from what each forward computes, not from child names: in a plain ``nn.Sequential`` each child
feeds the next and nothing else; any other module whose forward calls a BatchNorm directly is traced on its own
with ``torch.fx`` (every submodule it calls stays one node), and a pair is a BatchNorm call whose only input
is the output of a convolution or linear call with no other user. One level at a time, so a forward that
``torch.fx`` cannot trace (data-dependent control flow) only keeps its own BatchNorms; the rest still folds.

:func:`prepare` is what ``mhub.create(..., fuse=, channels_last=, compile=)`` applies.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from collections.abc import Callable, Iterator

import torch
from torch import fx, nn
from torch.nn.utils import parametrize

from ._errors import MhubError
from .layers.padding import Conv2dSame

# Layers whose forward is ``op(x, self.weight, self.bias)`` with ``op`` linear in both: exactly these classes
# and subclasses that do not override ``forward`` (a subclass that does may transform its weight, e.g.
# weight standardisation, which a rescaled weight would not survive). Conv2dSame only pads the input first.
# Plugins may add their own such classes.
FOLDABLE_LAYERS: set[type[nn.Module]] = {nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, Conv2dSame}
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def fuse(model: nn.Module) -> nn.Module:
    """An inference copy of ``model`` with each BatchNorm folded into the layer that feeds it, in eval mode.

    Folded: an ``nn.BatchNorm1d/2d/3d`` or ``nn.SyncBatchNorm`` (or a subclass keeping their forward) that
    tracks running statistics, called directly on the output of an ``nn.Conv1d/2d/3d`` or ``nn.Linear``
    (or a class in :data:`FOLDABLE_LAYERS`, e.g. :class:`mhub.layers.Conv2dSame`, which keeps its
    input-dependent padding), when both are called by the same module's forward, that output has no
    other user, and neither module is registered twice. The layer's weight and bias absorb the running
    statistics and affine parameters; the BatchNorm is replaced by ``nn.Identity`` under the same name.
    A Linear + BatchNorm1d pair assumes the Linear's output is ``(N, features)``, as in classifier heads.

    Left as they are: a BatchNorm before its convolution (pre-activation ``revnorm`` blocks, DenseNet), after
    anything else (a concatenation, a pooling, an addition), in a forward ``torch.fx`` cannot trace, and any
    other normalisation.

    Args:
        model: any ``nn.Module``; it is not modified.

    Returns:
        A deep copy, in eval mode, computing the same function as ``model.eval()`` up to float rounding.

    Raises:
        MhubError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise MhubError(f"mhub.fuse takes a torch.nn.Module, not {type(model).__name__}")
    fused = copy.deepcopy(model).eval()
    fold_batchnorms(fused)
    return fused


def fold_batchnorms(model: nn.Module) -> list[tuple[str, str]]:
    """Fold in place every BatchNorm :func:`fuse` describes; returns the ``(layer, norm)`` names folded.

    The model's BatchNorms are folded with their running statistics whatever its mode: call it on a model
    meant for eval only.
    """
    registrations = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    folded = []
    for prefix, module in list(model.named_modules()):
        if not any(_is_norm(child) for child in _called_children(module)):
            continue
        for layer_name, norm_name in _pairs(module):
            layer, norm = module.get_submodule(layer_name), module.get_submodule(norm_name)
            if registrations[id(layer)] > 1 or registrations[id(norm)] > 1 or not _fits(layer, norm):
                continue
            fold_into(layer, norm)
            parent_name, _, attr = norm_name.rpartition(".")
            setattr(module.get_submodule(parent_name), attr, nn.Identity())
            folded.append((_join(prefix, layer_name), _join(prefix, norm_name)))
    return folded


@torch.no_grad()
def fold_into(layer: nn.Module, norm: nn.Module) -> None:
    """Absorb an eval-mode BatchNorm into the convolution or linear ``layer`` that precedes it (in place).

    The per-channel scale and bias are computed in float64; the weight is rescaled in its own dtype. A layer
    without bias gets one.
    """
    inv_std = torch.rsqrt(norm.running_var.double() + norm.eps)
    scale = inv_std * norm.weight.double() if norm.weight is not None else inv_std
    shift = norm.bias.double() if norm.bias is not None else 0.0
    bias = layer.bias.double() if layer.bias is not None else 0.0
    weight = layer.weight
    weight.mul_(scale.to(weight.dtype).reshape(-1, *([1] * (weight.dim() - 1))))
    new_bias = ((bias - norm.running_mean.double()) * scale + shift).to(weight.dtype)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias, requires_grad=weight.requires_grad)
    else:
        layer.bias.copy_(new_bias)


def prepare(model: nn.Module, *, fuse: bool = False, channels_last: bool = False,
            compile: bool = False) -> nn.Module:
    """Make ``model`` an inference model in place (``mhub.create``'s ``fuse``/``channels_last``/``compile``).

    Args:
        model: a model the caller owns (it is modified, not copied).
        fuse: eval mode and :func:`fold_batchnorms`.
        channels_last: 4-D parameters and buffers in ``torch.channels_last`` memory format; convolutions
            then produce channels-last outputs (inputs may stay NCHW, though converting them once with
            ``x.to(memory_format=torch.channels_last)`` saves the first layer a copy).
        compile: wrap in ``torch.compile`` (see :func:`compile_model`).

    Returns:
        ``model``, or its compiled wrapper when ``compile``.
    """
    if fuse:
        fold_batchnorms(model.eval())
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model = compile_model(model)
    return model


def compile_model(model: nn.Module, backend: str | Callable = "inductor") -> nn.Module:
    """``torch.compile(model)`` that runs eagerly, with one warning, where compilation fails.

    ``torch.compile`` compiles at the first call, for the shapes it sees, so that is where failures show up:
    when ``backend`` raises (no C++ compiler, an unsupported operator...) the graph runs eagerly instead and
    one line is warned (``torch.compile failed for <model>: <reason>; running eagerly``). Where
    ``torch.compile`` itself is unavailable (a Python version it does not support), ``model`` is returned
    as it is, with the same kind of warning.

    Args:
        model: the module to compile.
        backend: a ``torch.compile`` backend name or callable.

    Returns:
        The compiled module (``state_dict`` keys gain ``torch.compile``'s ``_orig_mod.`` prefix), or ``model``.
    """
    label = type(model).__name__
    try:
        import torch._dynamo

        compiler = torch._dynamo.lookup_backend(backend) if isinstance(backend, str) else backend
        return torch.compile(model, backend=_EagerFallback(compiler, label))
    except Exception as error:  # noqa: BLE001 -- torch.compile unusable here: say so once, run eagerly
        warnings.warn(f"torch.compile is unavailable for {label}: {_first_line(error)}; running eagerly",
                      stacklevel=2)
        return model


class _EagerFallback:
    """A ``torch.compile`` backend: ``compiler``'s result, or the eager graph (warned once) when it fails."""

    def __init__(self, compiler: Callable, label: str):
        self.compiler = compiler
        self.label = label
        self.warned = False

    def __call__(self, graph_module: fx.GraphModule, example_inputs):
        try:
            return self.compiler(graph_module, example_inputs)
        except Exception as error:  # noqa: BLE001 -- any compiler failure: run this graph eagerly
            if not self.warned:
                self.warned = True
                warnings.warn(f"torch.compile failed for {self.label}: {_first_line(error)}; running eagerly",
                              stacklevel=2)
            return graph_module.forward


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _overrides_forward(module: nn.Module, bases: tuple[type, ...]) -> bool:
    return type(module).forward not in {base.forward for base in bases}


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, _NORMS) and not _overrides_forward(module, _NORMS) \
        and module.running_mean is not None and module.running_var is not None


def _is_layer(module: nn.Module) -> bool:
    foldable = tuple(FOLDABLE_LAYERS)
    return isinstance(module, foldable) and (type(module) in FOLDABLE_LAYERS
                                             or not _overrides_forward(module, foldable)) \
        and isinstance(module._parameters.get("weight"), nn.Parameter) and not parametrize.is_parametrized(module)


def _fits(layer: nn.Module, norm: nn.Module) -> bool:
    out = layer.out_channels if hasattr(layer, "out_channels") else layer.out_features
    return _is_layer(layer) and _is_norm(norm) and out == norm.num_features


def _called_children(module: nn.Module) -> Iterator[nn.Module]:
    """Submodules a forward can call directly: the children, looking inside ModuleList/ModuleDict."""
    for child in module.children():
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
            yield from _called_children(child)
        else:
            yield child


class _OneLevelTracer(fx.Tracer):
    """Traces one forward; every submodule it calls stays a single node (each level is traced on its own)."""

    def __init__(self):
        super().__init__(autowrap_modules=(), autowrap_functions=())

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return True


def _pairs(module: nn.Module) -> list[tuple[str, str]]:
    """``(layer, norm)`` names, relative to ``module``, of the foldable pairs its own forward calls."""
    if type(module).forward is nn.Sequential.forward:  # each child feeds the next and nothing else
        names = list(module._modules)
        return [(a, b) for a, b in zip(names, names[1:])
                if _is_layer(module._modules[a]) and _is_norm(module._modules[b])]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = _OneLevelTracer().trace(module)
    except Exception:  # noqa: BLE001 -- any untraceable forward just keeps its BatchNorms
        return []
    calls = [node for node in graph.nodes if node.op == "call_module"]
    times_called = Counter(node.target for node in calls)
    pairs = []
    for node in calls:
        source = node.args[0] if len(node.args) == 1 and not node.kwargs else None
        if not isinstance(source, fx.Node) or source.op != "call_module" or len(source.users) != 1:
            continue
        if times_called[node.target] == 1 and times_called[source.target] == 1 \
                and _is_norm(module.get_submodule(node.target)) and _is_layer(module.get_submodule(source.target)):
            pairs.append((source.target, node.target))
    return pairs
