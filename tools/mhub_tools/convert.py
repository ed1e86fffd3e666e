"""Turn an upstream checkpoint into an mhub safetensors file: a registered key map, else a structural matcher.

Reading is the hub's :func:`mhub.hub.convert.read_checkpoint`: a safetensors file directly, a torch
checkpoint (zip or legacy pickle, told apart by the file's first bytes, never its suffix) only through
``torch.load(weights_only=True)``, which refuses any pickle that would construct something other than
tensors and plain containers (a malicious checkpoint is refused before any of its code runs, naming the
global it would have called).

Key maps: family plugins register converters named ``"<source>.<family>"`` (``torchvision.resnet``,
``timm.resnet``, ...). A map *fits* when its output has exactly the model's keys and shapes.

Structural matcher (``--from auto``, or when no map fits). A state dict lists tensors in its model's
registration order, so the checkpoint is paired with *our* registration order, within each signature class
(leaf name such as ``weight`` / ``running_mean``, shape, float or integer) -- but only where that order is
provably the forward order. One forward pass on the meta device (free, even at 224 px) records, through a
``TorchFunctionMode``, when each tensor is first used and which tensors' data flowed into that use. Two
same-signature tensors whose registration order contradicts the data flow (B is registered first, yet A's
output feeds B) cannot be decided by order -- the checkpoint may follow either convention -- and are
refused with :class:`mhub.ConversionError`. Tensors the data flow leaves unordered (parallel branches, such
as a residual block's main path and its shortcut projection, whichever runs first) keep registration order,
the convention a checkpoint also follows. The premise: the checkpoint lists tensors in an order consistent
with its own model's data flow, as torchvision and timm state dicts do.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mhub import ConversionError, MhubError

SOURCES = ("torchvision", "timm")


# -- the target model ----------------------------------------------------------------------------------------
def build_meta(arch, *, num_classes: int = 1000, in_chans: int = 3):
    """Build ``arch`` on the meta device (no memory, no random init), in eval mode."""
    import torch

    from mhub._factory import build

    with torch.device("meta"):
        model = build(arch, num_classes=num_classes, in_chans=in_chans)
    return model.eval()


def infer_head(arch, state: Mapping[str, Any]) -> tuple[int, int]:
    """``(num_classes, in_chans)`` of the model a state dict fits.

    Reads the arch's ``classifier`` / ``first_conv`` prefixes when the state dict has them (our layout),
    else the last 2-D tensor (a linear head) and the first 4-D tensor (the stem convolution); 1000 and 3
    when neither exists.
    """
    head = state.get(f"{arch.classifier}.weight") if arch.classifier else None
    if head is None:
        head = next((v for v in reversed(list(state.values())) if v.dim() == 2), None)
    stem = state.get(f"{arch.first_conv}.weight") if arch.first_conv else None
    if stem is None:
        stem = next((v for v in state.values() if v.dim() == 4), None)
    num_classes = int(head.shape[0]) if head is not None else 1000
    in_chans = int(stem.shape[1]) if stem is not None else 3
    return num_classes, in_chans


@dataclass
class Trace:
    """What one forward pass reveals: each tensor's first use and the tensors upstream of that use."""

    order: list[str]  # state-dict keys by first use; unused ones last, in registration order
    upstream: dict[str, frozenset[str]]  # key -> keys whose data flowed into its first use

    def depends(self, later: str, earlier: str) -> bool:
        """True when ``earlier``'s data reaches the first use of ``later``."""
        return earlier in self.upstream.get(later, frozenset())


def trace_forward(model, size: int, in_chans: int) -> Trace:
    """Run one forward pass and record first uses and data flow of every parameter and buffer.

    Works on the meta device (no memory, no arithmetic). Every torch function call is intercepted: a call
    whose inputs include a parameter or buffer is that tensor's use, and the set of tensors upstream of
    each produced tensor travels along with it.

    Raises:
        ConversionError: the forward pass failed (the order cannot be trusted then).
    """
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten

    state = model.state_dict(keep_vars=True)
    key_of = {id(tensor): key for key, tensor in state.items()}

    class Lineage(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.flow: dict[int, frozenset[str]] = {}
            self.alive: list[Any] = []  # keeps produced tensors alive, so their ids stay unique
            self.first: dict[str, int] = {}
            self.upstream: dict[str, frozenset[str]] = {}

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            result = func(*args, **kwargs)
            outputs = [t for t in tree_flatten(result)[0] if isinstance(t, torch.Tensor)]
            if not outputs:  # .dim(), .shape and friends: no data moves
                return result
            inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            owned = [key_of[id(t)] for t in inputs if id(t) in key_of]
            flowing = frozenset().union(*(self.flow.get(id(t), frozenset()) for t in inputs))
            for key in owned:
                if key not in self.first:
                    self.first[key] = len(self.first)
                    self.upstream[key] = flowing - {key}
            lineage = flowing | frozenset(owned)
            for tensor in outputs:
                self.flow[id(tensor)] = self.flow.get(id(tensor), frozenset()) | lineage
                self.alive.append(tensor)
            return result

    device = next((t.device for t in state.values()), torch.device("cpu"))
    lineage = Lineage()
    try:
        with torch.no_grad(), lineage:
            model(torch.zeros(1, in_chans, size, size, device=device))
    except Exception as error:  # noqa: BLE001 - any failure means we cannot trust the order
        raise ConversionError(f"forward pass for the structural matcher failed: {type(error).__name__}: "
                              f"{error}") from error
    used = sorted(lineage.first, key=lineage.first.get)
    order = used + [key for key in state if key not in lineage.first]
    return Trace(order, lineage.upstream)


# -- structural matching ---------------------------------------------------------------------------------------
@dataclass
class Match:
    """The outcome of a conversion: our state dict and how each key was obtained."""

    state: "OrderedDict[str, Any]"
    converter: str  # "torchvision.resnet@1", "structural" or "identity"
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (source key, our key)
    notes: list[str] = field(default_factory=list)


def _signature(key: str, tensor_shape: tuple[int, ...], floating: bool, with_leaf: bool) -> tuple:
    leaf = key.rpartition(".")[2] if with_leaf else ""
    return (leaf, tuple(tensor_shape), floating)


def _describe(signature: tuple) -> str:
    leaf, shape, floating = signature
    kind = "" if floating else " (integer)"
    return f"{leaf or 'tensor'}{list(shape)}{kind}"


def structural_match(source: Mapping[str, Any], target_shapes: Mapping[str, tuple[tuple[int, ...], bool]],
                     trace: Trace) -> list[tuple[str, str]]:
    """Pair source keys with target keys by order within signature classes (see the module docstring).

    Args:
        source: key -> tensor in checkpoint order (meta tensors are fine).
        target_shapes: our key -> (shape, is_floating), in registration (state-dict) order.
        trace: our model's forward pass (see :func:`trace_forward`).

    Returns:
        ``(source key, target key)`` pairs, in our forward order.

    Raises:
        ConversionError: the tensors do not correspond one to one, or an ambiguity order cannot decide.
    """
    source_leaves = {k.rpartition(".")[2] for k in source}
    target_leaves = {k.rpartition(".")[2] for k in target_shapes}
    # Leaf names (weight, bias, running_mean, ...) separate same-shaped tensors of one module; use them
    # whenever both layouts use the same vocabulary, which standard torch modules guarantee.
    with_leaf = source_leaves == target_leaves

    def classes(keys, shape_of) -> dict[tuple, list[str]]:
        grouped: dict[tuple, list[str]] = defaultdict(list)
        for key in keys:
            shape, floating = shape_of(key)
            grouped[_signature(key, shape, floating, with_leaf)].append(key)
        return grouped

    src = classes(source, lambda k: (tuple(source[k].shape), source[k].is_floating_point()))
    ours = classes(target_shapes, lambda k: target_shapes[k])

    problems = []
    for signature in sorted(set(src) | set(ours), key=str):
        have, want = len(src.get(signature, [])), len(ours.get(signature, []))
        if have != want:
            problems.append(f"{_describe(signature)}: checkpoint has {have}, model has {want}")
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... {len(problems) - 6} more" if len(problems) > 6 else "")
        raise ConversionError(f"structural matcher: checkpoint and model tensors do not correspond: {shown}")

    for signature, registered in ours.items():
        for i, first in enumerate(registered):
            for second in registered[i + 1:]:
                if trace.depends(first, second):
                    raise ConversionError(
                        f"structural matcher: ambiguous: '{first}' and '{second}' are both "
                        f"{_describe(signature)}; the model registers '{first}' first although data flows "
                        f"from '{second}' into it, so the checkpoint's order cannot decide which is which; use "
                        "a registered key map (--from torchvision|timm)")

    position = {key: i for i, key in enumerate(trace.order)}
    pairs = [(s, t) for signature, keys in src.items() for s, t in zip(keys, ours[signature])]
    return sorted(pairs, key=lambda pair: position.get(pair[1], len(position)))


# -- converting ------------------------------------------------------------------------------------------------
def _shapes(state: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], bool]]:
    return {k: (tuple(v.shape), v.is_floating_point()) for k, v in state.items()}


def _fit_problem(converted: Mapping[str, Any], target: Mapping[str, tuple[tuple[int, ...], bool]]) -> str | None:
    missing = [k for k in target if k not in converted]
    unexpected = [k for k in converted if k not in target]
    if missing or unexpected:
        return (f"{len(missing)} missing key(s) {missing[:3]}, {len(unexpected)} unexpected key(s) "
                f"{unexpected[:3]}")
    wrong = [f"{k} {list(converted[k].shape)} != {list(target[k][0])}" for k in target
             if tuple(converted[k].shape) != target[k][0]]
    return f"shape mismatch: {', '.join(wrong[:3])}" if wrong else None


def candidate_converters(registry, family: str, source: str | None) -> list[Any]:
    """Registered key maps into ``family`` (named ``"<source>.<family>"``).

    Only ``source``'s map when it names one; otherwise all of them, torchvision's and timm's first.
    """
    suffix = f".{family}"

    def rank(name: str) -> tuple[int, str]:
        prefix = name[:-len(suffix)]
        return (SOURCES.index(prefix) if prefix in SOURCES else len(SOURCES), name)

    names = sorted((n for n in registry.converters if n.endswith(suffix)), key=rank)
    if source not in (None, "auto", "mhub"):
        names = [n for n in names if n == f"{source}{suffix}"]
    return [registry.converters[n] for n in names]


def apply_converter(converter, state: Mapping[str, Any]) -> "OrderedDict[str, Any]":
    """Run a registered converter on a state dict (the converter is imported here)."""
    from mhub._lazy import import_string

    function = import_string(converter.function)
    return OrderedDict(function(OrderedDict(state)))


def convert_state(arch, source_state: Mapping[str, Any], *, source: str | None = None,
                  num_classes: int | None = None, in_chans: int | None = None, size: int = 224,
                  log: Callable[[str], None] = lambda _: None) -> Match:
    """Convert a loaded checkpoint into our layout for ``arch``.

    Args:
        arch: the :class:`mhub._specs.ArchSpec` to convert for.
        source_state: tensors in checkpoint order.
        source: the layout of the checkpoint: a converter prefix such as ``"torchvision"`` or ``"timm"``
            (that map, then the matcher), ``"mhub"`` (our own layout), ``"auto"`` (the matcher only) or ``None``
            (our own layout, then every map registered for the family, then the matcher).
        num_classes, in_chans: the model's head and stem; inferred from the checkpoint when ``None``.
        size: input size of the forward pass that orders the model's tensors.
        log: receives progress lines (the CLI prints them).

    Returns:
        A :class:`Match` whose ``state`` loads strictly into ``arch`` built with the inferred head and stem.

    Raises:
        ConversionError: nothing fits, or the matcher meets an ambiguity.
    """
    from mhub import get_registry
    from mhub.hub.loading import _absent_aux_classifiers

    registry = get_registry()
    tried: list[str] = []
    candidates: list[tuple[str, Callable[[], Mapping[str, Any]]]] = []
    if source in (None, "mhub"):
        candidates.append(("identity", lambda: OrderedDict(source_state)))
    if source not in ("auto", "mhub"):
        maps = candidate_converters(registry, arch.family, source)
        if source is not None and not maps:
            known = sorted(n for n in registry.converters if n.endswith(f".{arch.family}"))
            tried.append(f"no key map '{source}.{arch.family}' is registered (known: {', '.join(known) or 'none'})")
        for converter in maps:
            candidates.append((f"{converter.name}@{converter.version}",
                               lambda converter=converter: apply_converter(converter, source_state)))

    def target_for(state: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], bool]]:
        classes, chans = infer_head(arch, state)
        return _shapes(build_meta(arch, num_classes=num_classes or classes, in_chans=in_chans or chans).state_dict())

    for name, run in candidates:
        try:
            converted = run()
        except ConversionError as error:  # the map does not read this layout (it names the keys it cannot place)
            tried.append(f"{name}: {error}")
            continue
        except MhubError:
            raise
        except Exception as error:  # noqa: BLE001 - a map written for another layout may raise anything
            tried.append(f"{name}: raised {type(error).__name__}: {error}")
            continue
        target = target_for(converted)
        _absent_aux_classifiers(arch, converted, target)  # training-only heads the model is built without
        problem = _fit_problem(converted, target)
        if problem is None:
            log(f"key map {name}: fits ({len(converted)} tensors)")
            ordered = OrderedDict((k, converted[k]) for k in target)
            return Match(ordered, name, notes=tried)
        tried.append(f"{name}: does not fit: {problem}")

    for line in tried:
        log(line)
    log("structural matcher: pairing tensors by shape and order (registration order, checked against the "
        "forward pass's data flow)")
    classes, chans = infer_head(arch, source_state)
    model = build_meta(arch, num_classes=num_classes or classes, in_chans=in_chans or chans)
    target = _shapes(model.state_dict())
    pairs = structural_match(source_state, target, trace_forward(model, size, in_chans or chans))
    state = OrderedDict((t, source_state[s]) for s, t in pairs)
    return Match(OrderedDict((k, state[k]) for k in target), "structural", pairs=pairs, notes=tried)


def save_converted(path: str | Path, match: Match, *, model: str, source_sha256: str) -> Path:
    """Write our state dict as safetensors with provenance metadata (model, source sha256, converter, version).

    Raises:
        NoSpaceError: the disk filled up; neither ``path`` nor a partial file is left.
    """
    import mhub
    from mhub.hub.convert import save_safetensors

    metadata = {"format": "pt", "model": model, "source_sha256": source_sha256, "converter": match.converter,
                "mhub_version": mhub.__version__}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")  # never a half-written file under the final name
    save_safetensors(match.state, tmp, metadata=metadata, advice="write the output elsewhere")
    tmp.replace(path)
    return path
