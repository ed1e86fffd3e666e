"""Inference models: BatchNorm folded into the layer before it, fused convolutions (:func:`fuse`), channels-last,
``torch.compile``.

Folding: in eval mode a BatchNorm (Ioffe & Szegedy 2015) is the per-channel affine map
``y = (x - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``; when ``x = W * u + b`` is the output of a
convolution or linear layer that nothing else uses, the pair equals that layer with weight ``W * s`` (scaled
per output channel) and bias ``(b - mean) * s + beta``.

Pairs are found from what each forward computes, not from child names (:class:`_DataFlow`): in a plain
``nn.Sequential`` each child feeds the next and nothing else; any other module is traced on its own with
``torch.fx`` (every submodule it calls stays one node). A pair is a BatchNorm that alone consumes the output
of a convolution or linear layer that nothing else uses, also across block boundaries: the last layer of one
block and the first norm of the next (followed through nested containers). A forward that ``torch.fx``
cannot trace (data-dependent control flow) only hides its own pairs; the rest still folds.

Convolutions: after folding, each 2-D convolution becomes a :class:`FusedConv2d` (:func:`fuse_convolutions`),
merging the activation (ReLU, ReLU6/Hardtanh, SiLU, Hardswish, Sigmoid, GELU) or residual addition
(``act(conv(x) + shortcut)``, with or without the activation) its output alone feeds. On CPU in inference it
computes that in one oneDNN call with its weight reordered for oneDNN once, ahead of time (as
``torch.compile``'s CPU freezing does), instead of reordering the weight at every call and writing a full
tensor to memory for the convolution, the addition and the activation each.

:func:`prepare` is what ``mhub.create(..., fuse=, channels_last=, compile=)`` applies.
"""

from __future__ import annotations

import copy
import functools
import inspect
import operator
import warnings
from collections import Counter
from collections.abc import Callable

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
    tracks running statistics and takes as its only input the output of an ``nn.Conv1d/2d/3d`` or
    ``nn.Linear`` (or a class in :data:`FOLDABLE_LAYERS`, e.g. :class:`mhub.layers.Conv2dSame`, which keeps
    its input-dependent padding) that nothing else uses, where the data flow shows it: consecutive in an
    ``nn.Sequential``, ``bn(conv(x))`` in a forward ``torch.fx`` traces, or a block ending in the layer
    feeding a block starting with the norm (DenseNet's ``conv1`` -> ``conv2.norm``). Neither may be
    registered twice. The layer's weight and bias absorb the running statistics and affine parameters; the
    BatchNorm is replaced by ``nn.Identity`` under the same name. A Linear + BatchNorm1d pair assumes the
    Linear's output is ``(N, features)``, as in classifier heads. Then :func:`fuse_convolutions` makes the
    2-D convolutions :class:`FusedConv2d`, merging the activations and residual additions they feed.

    Left as they are: a BatchNorm fed by anything else (an input, a concatenation, a pooling, an addition,
    an activation, as in pre-activation ``revnorm`` blocks whose norm comes first), a pair hidden in a forward
    ``torch.fx`` cannot trace, and any other normalisation.

    Args:
        model: any ``nn.Module``; it is not modified.

    Returns:
        A deep copy, in eval mode, computing the same function as ``model.eval()`` up to float rounding.

    Raises:
        MhubError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise MhubError(f"mhub.fuse takes a torch.nn.Module, not {type(model).__name__}")
    fused = copy.deepcopy(model)
    fuse_in_place(fused)
    return fused


def fuse_in_place(model: nn.Module) -> list[tuple[str, str]]:
    """What :func:`fuse` does to its copy, done to ``model``: :func:`fold_batchnorms`, then
    :func:`fuse_convolutions`. Returns the BatchNorm pairs folded."""
    folded = fold_batchnorms(model)
    fuse_convolutions(model)
    return folded


def fold_batchnorms(model: nn.Module) -> list[tuple[str, str]]:
    """Put ``model`` in eval mode and fold in place every BatchNorm :func:`fuse` describes.

    Returns:
        The ``(layer, norm)`` names of the pairs folded.
    """
    model.eval()  # the data flow is traced, and the running statistics are used, as in eval mode
    registrations = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    flow = _DataFlow()
    folded = []
    for prefix, module in list(model.named_modules()):
        for producer, consumer in flow.edges(module):
            tail = flow.tail(module.get_submodule(producer))
            head = flow.head(module.get_submodule(consumer))
            if tail is None or head is None:
                continue
            layer_name, norm_name = _join(producer, tail), _join(consumer, head)
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


# oneDNN post-ops for the activations FusedConv2d can merge: (attribute, scalars, algorithm) from the module.
_ONEDNN_ACTIVATIONS: dict[type[nn.Module], Callable[[nn.Module], tuple[str, list, str]]] = {
    nn.ReLU: lambda act: ("relu", [], ""),
    nn.Hardtanh: lambda act: ("hardtanh", [float(act.min_val), float(act.max_val)], ""),
    nn.ReLU6: lambda act: _ONEDNN_ACTIVATIONS[nn.Hardtanh](act),  # a Hardtanh from 0 to 6
    nn.SiLU: lambda act: ("swish", [], ""),
    nn.Hardswish: lambda act: ("hardswish", [], ""),
    nn.Sigmoid: lambda act: ("sigmoid", [], ""),
    nn.GELU: lambda act: ("gelu", [], act.approximate),
}


class FusedConv2d(nn.Conv2d):
    """``act(conv(x) + residual)`` as one layer; the residual (a second input) and the activation are optional.

    On CPU, in inference (no gradient needed), for float32 and bfloat16, this runs as one oneDNN convolution
    with the addition and activation as post-ops, its weight reordered for oneDNN at the first call and kept
    (again after ``load_state_dict``, ``.to(...)`` or any in-place change of the weight). Everywhere else
    (CUDA, autograd, other dtypes, tracing, ``torch.compile``) it runs ``nn.Conv2d``'s forward, the addition
    and the activation module one after another. Parameters and state-dict keys are the convolution's.

    Args:
        conv: the convolution whose parameters it takes over (shared, not copied).
        act: the activation applied last (kept as the child ``act``), or None.
        residual: whether ``forward`` takes the tensor added before the activation.
    """

    def __init__(self, conv: nn.Conv2d, act: nn.Module | None = None, residual: bool = False):
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                         conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, device="meta")
        self.weight, self.bias = conv.weight, conv.bias
        self.act = act if act is not None else nn.Identity()
        self.residual = residual
        self._post_op = _onednn_post_op(act, residual) if isinstance(self.padding, tuple) \
            and self.padding_mode == "zeros" else None
        self._packed: tuple[tuple, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if (residual is None) == self.residual:
            raise MhubError(f"this FusedConv2d {'takes' if self.residual else 'takes no'} residual input")
        if self._onednn_applies(x, residual):
            args = (list(self.padding), list(self.stride), list(self.dilation), self.groups)
            attr, scalars, algorithm = self._post_op
            if residual is None:
                return torch.ops.mkldnn._convolution_pointwise(x, self._packed_weight(x, args), self.bias, *args,
                                                               attr, scalars, algorithm)
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, residual, self._packed_weight(x, args), self.bias, *args, "add", 1.0,
                None if attr == "none" else attr, scalars, algorithm)
        out = super().forward(x)
        return self.act(out if residual is None else out + residual)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", residual=True" if self.residual else "")

    def _onednn_applies(self, x, residual) -> bool:
        weight = self.weight
        if self._post_op is None or not isinstance(x, torch.Tensor) or x.device.type != "cpu" or x.dim() != 4 \
                or x.dtype not in (torch.float32, torch.bfloat16) or x.dtype != weight.dtype \
                or (self.bias is not None and self.bias.dtype != x.dtype) or not torch.backends.mkldnn.enabled \
                or not torch.backends.mkldnn.is_available() \
                or torch.compiler.is_compiling() or torch.jit.is_scripting() or torch.jit.is_tracing():
            return False
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                        or (self.bias is not None and self.bias.requires_grad)
                                        or (residual is not None and residual.requires_grad)):
            return False
        if residual is None:
            return True
        size = [(x.shape[i + 2] + 2 * self.padding[i] - self.dilation[i] * (self.kernel_size[i] - 1) - 1)
                // self.stride[i] + 1 for i in range(2)]
        return isinstance(residual, torch.Tensor) and residual.dtype == x.dtype and residual.device == x.device \
            and list(residual.shape) == [x.shape[0], self.out_channels, *size]

    def _packed_weight(self, x: torch.Tensor, args: tuple) -> torch.Tensor:
        weight = self.weight
        key = (weight.data_ptr(), weight._version, weight.dtype, tuple(weight.shape))
        if self._packed is None or self._packed[0] != key:
            self._packed = key, torch.ops.mkldnn._reorder_convolution_weight(weight.detach(), *args, list(x.shape))
        return self._packed[1]

    def _apply(self, fn, recurse=True):
        self._packed = None  # parameters move or change type: reorder again at the next call
        return super()._apply(fn, recurse)

    def __getstate__(self):  # copies and pickles leave the oneDNN weight behind (rebuilt at the next call)
        state = dict(super().__getstate__())
        state["_packed"] = None
        return state


@functools.cache
def _onednn_supports(attr: str, scalars: tuple, algorithm: str, residual: bool) -> bool:
    """Whether this torch build's oneDNN convolution runs the post-op (tried once on a tiny input)."""
    x, weight = torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    args = ([0, 0], [1, 1], [1, 1], 1)
    try:
        packed = torch.ops.mkldnn._reorder_convolution_weight(weight, *args, [1, 1, 1, 1])
        if residual:
            torch.ops.mkldnn._convolution_pointwise.binary(x, x, packed, None, *args, "add", 1.0,
                                                           None if attr == "none" else attr, list(scalars), algorithm)
        else:
            torch.ops.mkldnn._convolution_pointwise(x, packed, None, *args, attr, list(scalars), algorithm)
    except Exception:  # noqa: BLE001 -- no oneDNN, or not this post-op: FusedConv2d runs op by op
        return False
    return True


def _onednn_post_op(act: nn.Module | None, residual: bool) -> tuple[str, list, str] | None:
    attr, scalars, algorithm = ("none", [], "") if act is None else _ONEDNN_ACTIVATIONS[type(act)](act)
    if not torch.backends.mkldnn.is_available() or not _onednn_supports(attr, tuple(scalars), algorithm, residual):
        return None
    return attr, scalars, algorithm


def fuse_convolutions(model: nn.Module) -> list[str]:
    """Make 2-D convolutions :class:`FusedConv2d`, merging the activations and residual additions they feed.

    A :class:`FusedConv2d` replaces, under the same name, each ``nn.Conv2d`` (exactly that class) registered
    once, merging what its output alone feeds:

    - an activation of :data:`_ONEDNN_ACTIVATIONS` in an ``nn.Sequential`` (``nn.Identity`` children between
      them, such as folded BatchNorms, pass through); the activation becomes ``nn.Identity``;
    - an addition ``conv(x) + shortcut`` in a forward ``torch.fx`` traces (through ``nn.Identity`` calls and
      a Sequential holding only the convolution), and the activation applied to the sum where one alone
      takes it and oneDNN merges it after an addition (ReLU). That module is replaced by the
      ``torch.fx.GraphModule`` of its rewritten forward, under the same name and class name, with the same
      submodules and state-dict keys.

    Modules registered twice, and additions in ``model``'s own forward (it cannot be replaced in place), are
    left alone. Use it on inference models: a rewritten forward keeps the branches taken in eval mode.

    Returns:
        The names of the convolutions that merged an activation or an addition.
    """
    model.eval()
    registrations = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    fused = []
    for prefix, module in list(model.named_modules()):
        if _is_sequential(module):
            fused += [_join(prefix, name) for name in _fuse_sequential_activations(module, registrations)]
        elif prefix and not _is_leaf(module) and registrations[id(module)] == 1:
            rewritten, names = _fuse_residual_additions(module, registrations)
            if names:
                parent, _, attr = prefix.rpartition(".")
                setattr(model.get_submodule(parent), attr, rewritten)
                fused += [_join(prefix, name) for name in names]
    for name, module in list(model.named_modules()):  # the rest: weights reordered once, nothing merged
        if name and _convertible(module, registrations):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, FusedConv2d(module))
    return fused


def _convertible(module: nn.Module | None, registrations: Counter) -> bool:
    return type(module) is nn.Conv2d and _is_layer(module) and registrations[id(module)] == 1


def _activation(module: nn.Module | None) -> bool:
    return type(module) in _ONEDNN_ACTIVATIONS


def _fuse_sequential_activations(sequential: nn.Module, registrations: Counter) -> list[str]:
    children = [(name, m) for name, m in sequential._modules.items() if type(m) is not nn.Identity]
    fused = []
    for (conv_name, conv), (act_name, act) in zip(children, children[1:]):
        if _convertible(conv, registrations) and _activation(act) and registrations[id(act)] == 1:
            setattr(sequential, conv_name, FusedConv2d(conv, act))
            setattr(sequential, act_name, nn.Identity())
            fused.append(conv_name)
    return fused


def _fuse_residual_additions(module: nn.Module, registrations: Counter) -> tuple[nn.Module, list[str]]:
    """``module`` rewritten as a GraphModule with ``act(conv(x) + shortcut)`` as one :class:`FusedConv2d` call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            graph = _OneLevelTracer().trace(module)
        except Exception:  # noqa: BLE001 -- an untraceable forward keeps its additions
            return module, []
    called = _times_called(graph)
    fused = []
    for add in list(graph.nodes):
        if add.op != "call_function" or add.target not in (operator.add, torch.add) or add.kwargs \
                or len(add.args) != 2 or not all(isinstance(arg, fx.Node) for arg in add.args):
            continue
        for side in (0, 1):
            found = _conv_feeding(module, add.args[side], called, registrations)
            if found is None:
                continue
            conv_name, conv_input, dead = found
            shortcut = add.args[1 - side]
            (act_node,) = add.users if len(add.users) == 1 else (None,)
            act = module.get_submodule(act_node.target) if act_node is not None and act_node.op == "call_module" \
                and _sole_input(act_node) is add and called[act_node.target] == 1 else None
            act = act if _activation(act) and registrations[id(act)] == 1 \
                and _onednn_post_op(act, residual=True) is not None else None  # else: the addition alone
            with graph.inserting_before(add):
                call = graph.call_module(conv_name, (conv_input, shortcut))
            last = act_node if act is not None else add
            last.replace_all_uses_with(call)
            for node in ([act_node] if act is not None else []) + [add, *dead]:
                graph.erase_node(node)
            parent, _, attr = conv_name.rpartition(".")
            setattr(module.get_submodule(parent), attr,
                    FusedConv2d(module.get_submodule(conv_name), act, residual=True))
            fused.append(conv_name)
            break
    if not fused:
        return module, []
    graph.lint()
    return fx.GraphModule(module, graph, class_name=type(module).__name__), fused


def _conv_feeding(module: nn.Module, node: fx.Node, called: Counter,
                  registrations: Counter) -> tuple[str, fx.Node, list[fx.Node]] | None:
    """``(convolution name, its input node, nodes that become unused)`` when ``node`` is a convertible
    convolution's output reached through ``nn.Identity`` calls and a Sequential holding only it."""
    dead = []
    while node.op == "call_module" and type(module.get_submodule(node.target)) is nn.Identity \
            and len(node.users) == 1 and _sole_input(node) is not None:
        dead.append(node)
        node = _sole_input(node)
    if node.op != "call_module" or len(node.users) != 1 or _sole_input(node) is None or called[node.target] != 1:
        return None
    target = module.get_submodule(node.target)
    if _is_sequential(target):
        inner = [(name, m) for name, m in target._modules.items() if type(m) is not nn.Identity]
        if len(inner) != 1 or registrations[id(target)] != 1:
            return None
        name, target = _join(node.target, inner[0][0]), inner[0][1]
    else:
        name = node.target
    if not _convertible(target, registrations):
        return None
    return name, _sole_input(node), [*dead, node]


def prepare(model: nn.Module, *, fuse: bool = False, channels_last: bool = False,
            compile: bool = False) -> nn.Module:
    """Make ``model`` an inference model in place (``mhub.create``'s ``fuse``/``channels_last``/``compile``).

    Args:
        model: a model the caller owns (it is modified, not copied).
        fuse: eval mode and :func:`fuse_in_place`.
        channels_last: 4-D parameters and buffers in ``torch.channels_last`` memory format; convolutions
            then produce channels-last outputs (inputs may stay NCHW, though converting them once with
            ``x.to(memory_format=torch.channels_last)`` saves the first layer a copy).
        compile: wrap in ``torch.compile`` (see :func:`compile_model`).

    Returns:
        ``model``, or its compiled wrapper when ``compile``.
    """
    if fuse:
        fuse_in_place(model)
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


def _join(*names: str) -> str:
    return ".".join(name for name in names if name)


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
    if not (_is_layer(layer) and _is_norm(norm)):
        return False
    return (layer.out_channels if hasattr(layer, "out_channels") else layer.out_features) == norm.num_features


class _OneLevelTracer(fx.Tracer):
    """Traces one forward; every submodule it calls stays a single node (each level is traced on its own)."""

    def __init__(self):
        super().__init__(autowrap_modules=(), autowrap_functions=())

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return True


class _DataFlow:
    """Which submodule feeds which, read from ``nn.Sequential`` order or a one-level ``torch.fx`` trace.

    Names are relative to the module asked about. ``edges``: ``(a, b)`` where ``a``'s output is ``b``'s only
    input and has no other use. ``tail``: the leaf whose output is the module's output and nothing else's
    input; ``head``: the leaf that alone consumes the module's input ("" for a leaf itself; None when unknown).
    Following tails and heads through nested containers pairs a convolution ending one block with a
    BatchNorm starting the next (DenseNet's bottleneck convolution and the next unit's norm, say).
    """

    def __init__(self):
        self._graphs: dict[int, fx.Graph | None] = {}

    def edges(self, module: nn.Module) -> list[tuple[str, str]]:
        if _is_leaf(module):
            return []
        if _is_sequential(module):
            names = list(module._modules)
            return list(zip(names, names[1:]))
        graph = self._graph(module)
        if graph is None:
            return []
        called = _times_called(graph)
        return [(node.args[0].target, node.target) for node in graph.nodes
                if _sole_input(node) is not None and node.args[0].op == "call_module"
                and len(node.args[0].users) == 1 and called[node.target] == called[node.args[0].target] == 1]

    def tail(self, module: nn.Module) -> str | None:
        if _is_leaf(module):
            return ""
        if _is_sequential(module):
            last = next(reversed(module._modules), None)
            return self._inside(module, last, self.tail)
        graph = self._graph(module)
        if graph is None:
            return None
        output = next(node for node in graph.nodes if node.op == "output").args[0]
        if isinstance(output, (list, tuple)) and len(output) == 1:
            output = output[0]
        if not isinstance(output, fx.Node) or output.op != "call_module" or len(output.users) != 1 \
                or _times_called(graph)[output.target] != 1:
            return None
        return self._inside(module, output.target, self.tail)

    def head(self, module: nn.Module) -> str | None:
        if _is_leaf(module):
            return ""
        if _is_sequential(module):
            return self._inside(module, next(iter(module._modules), None), self.head)
        graph = self._graph(module)
        inputs = [node for node in graph.nodes if node.op == "placeholder"] if graph is not None else []
        if len(inputs) != 1 or len(inputs[0].users) != 1:
            return None
        (user,) = inputs[0].users
        if _sole_input(user) is not inputs[0] or _times_called(graph)[user.target] != 1:
            return None
        return self._inside(module, user.target, self.head)

    def _inside(self, module: nn.Module, name: str | None, follow) -> str | None:
        if name is None:
            return None
        inner = follow(module.get_submodule(name))
        return None if inner is None else _join(name, inner)

    def _graph(self, module: nn.Module) -> fx.Graph | None:
        key = id(module)
        if key not in self._graphs:
            self._graphs[key] = _trace(module)
        return self._graphs[key]


def _trace(module: nn.Module) -> fx.Graph | None:
    """The module's own forward as a graph of calls to its submodules, or None where torch.fx cannot trace it.

    A forward that takes a list of tensors (annotated ``list``/``tuple``/``Sequence``) is traced with a list of
    two placeholders for it, as DenseNet's dense layers take their predecessors' outputs.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _OneLevelTracer().trace(module)
        except Exception:  # noqa: BLE001 -- untraceable as called with tensors; maybe with lists below
            pass
        try:
            parameters = inspect.signature(module.forward).parameters.values()
        except (TypeError, ValueError):
            return None
        lists = {p.name: [fx.PH, fx.PH] for p in parameters
                 if str(p.annotation).lower().startswith(("list", "tuple", "sequence", "typing.list"))}
        if not lists:
            return None
        try:
            return _OneLevelTracer().trace(module, concrete_args=lists)
        except Exception:  # noqa: BLE001 -- any untraceable forward just keeps its BatchNorms
            return None


def _is_leaf(module: nn.Module) -> bool:
    return not module._modules or _is_layer(module) or _is_norm(module)


def _is_sequential(module: nn.Module) -> bool:
    """A container whose forward feeds each child's output to the next child only."""
    return type(module).forward is nn.Sequential.forward and all(m is not None for m in module._modules.values())


def _times_called(graph: fx.Graph) -> Counter:
    return Counter(node.target for node in graph.nodes if node.op == "call_module")


def _sole_input(node: fx.Node) -> fx.Node | None:
    """The one argument of a submodule call that takes exactly one node and nothing else."""
    if node.op == "call_module" and len(node.args) == 1 and not node.kwargs and isinstance(node.args[0], fx.Node):
        return node.args[0]
    return None
