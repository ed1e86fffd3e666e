"""Multi-scale feature extraction for every family: the feature points a model declares, and one wrapper.

A family declares its feature points once, in its builder, as plain data (timm's ``feature_info`` shape)::

    BackboneClassifier(backbone, classifier, feature_info=[
        {"module": "backbone.stem.0", "num_chs": 64, "reduction": 2},
        {"module": "backbone.stages.0", "num_chs": 256, "reduction": 4},
        ...
    ])

``module`` is the path of the submodule whose output is the feature map (a state-dict prefix), ``num_chs`` its
channels and ``reduction`` its stride relative to the input; points are listed in forward order. Token models
add ``"layout": "NLC"`` (``(B, L, C)`` tokens, reshaped to a ``reduction``-strided map) and
``"prefix_tokens": n`` (class/register tokens dropped first); ``"layout": "NHWC"`` is permuted. The levels are
the ones timm's ``features_only=True`` gives for the same architecture, so code written against timm works
unchanged. ``out_indices=`` on the model (timm's default for the family, e.g. the last 3 blocks of a ViT) picks
the default levels; without it every declared level is returned.

:class:`FeatureNet` is generic. It keeps (sharing, not copying) only the modules up to the last requested
point, and runs them the way the model does: it descends into ``nn.Sequential`` containers, calling their
children in order, and collects outputs at the requested paths; a point inside a module with its own
``forward`` is captured with a forward hook, the run stopping there when it is the last one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._errors import FeatureError
from ._model import BackboneClassifier

LAYOUTS = ("NCHW", "NLC", "NHWC")
OutIndices = int | Sequence[int] | None


class FeatureInfo(list):
    """The selected levels: a list of dicts (``module``, ``num_chs``, ``reduction``, ``index``, ...).

    The accessors follow timm's ``FeatureInfo`` (``channels()``, ``reduction()``, ``module_name()``,
    ``get_dicts()``), each returning one value per selected level.
    """

    def get(self, key: str) -> list[Any]:
        return [info[key] for info in self]

    def channels(self) -> list[int]:
        return self.get("num_chs")

    def reduction(self) -> list[int]:
        return self.get("reduction")

    def module_name(self) -> list[str]:
        return self.get("module")

    def get_dicts(self, keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return [dict(info) if keys is None else {k: info[k] for k in keys} for info in self]


def declared_features(model: nn.Module, points: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The feature points ``model`` declares (its ``feature_info``), or ``points`` given for it, checked.

    Returns:
        Copies of the points, each with its ``index`` in the declaration added.

    Raises:
        FeatureError: none declared, or a malformed declaration (the message names the point and the field).
    """
    label = type(model).__name__
    if isinstance(model, FeatureNet):
        raise FeatureError("this model is already a feature extractor (mhub.features of a FeatureNet)")
    if points is None:
        points = getattr(model, "feature_info", None)
    if not points:
        raise FeatureError(f"{label} declares no feature points; an mhub family declares them with "
                           "BackboneClassifier(..., feature_info=[...]) (see docs/plugins.md)")
    previous = 1
    checked = []
    for index, point in enumerate(points):
        where = f"feature point {index} of {label}"
        if not isinstance(point, dict) or not isinstance(point.get("module"), str):
            raise FeatureError(f"{where}: expected a dict with a 'module' path, got {point!r}")
        for field in ("num_chs", "reduction"):
            value = point.get(field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FeatureError(f"{where} ('{point['module']}'): '{field}' must be a positive int, got {value!r}")
        if any(p.get("module") == point["module"] for p in points[:index]):
            raise FeatureError(f"{where}: module '{point['module']}' is listed twice")
        if point["reduction"] < previous:
            raise FeatureError(f"{where} ('{point['module']}'): reductions must not decrease (forward order)")
        if point.get("layout", "NCHW") not in LAYOUTS:
            raise FeatureError(f"{where}: layout {point['layout']!r} is not one of {', '.join(LAYOUTS)}")
        try:
            model.get_submodule(point["module"])
        except AttributeError:
            raise FeatureError(f"{where}: the model has no module '{point['module']}'") from None
        previous = point["reduction"]
        checked.append(dict(point, index=index))
    return checked


def take_indices(count: int, out_indices: OutIndices) -> list[int]:
    """Absolute, ascending level indices, as timm reads ``out_indices``.

    ``None``: all levels; an int ``n``: the last ``n``; a sequence: those levels, negative ones counted from
    the end.

    Raises:
        FeatureError: an index out of range, a repeated level, or a count outside ``1..count``.
    """
    if out_indices is None:
        return list(range(count))
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        if not 0 < out_indices <= count:
            raise FeatureError(f"out_indices={out_indices} asks for the last {out_indices} of {count} levels")
        return list(range(count - out_indices, count))
    taken = []
    for index in out_indices:
        if not isinstance(index, int) or isinstance(index, bool) or not -count <= index < count:
            raise FeatureError(f"out_indices: {index!r} is not a level index in -{count}..{count - 1}")
        taken.append(index % count)
    if not taken or len(set(taken)) != len(taken):
        raise FeatureError(f"out_indices {tuple(out_indices)!r}: give each level once, at least one")
    return sorted(taken)


def _plain_sequential(module: nn.Module) -> bool:
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _within(path: str, point: str) -> bool:
    return point == path or point.startswith(path + ".")


class _Stop(Exception):
    """Raised by the hook on the last requested point, inside a module's own forward: nothing after it is needed.

    Carries the :class:`FeatureNet` that raised it, so a FeatureNet inside another one's model (a UNet's
    encoder) lets the outer one's stop pass through.
    """

    def __init__(self, owner: nn.Module):
        super().__init__()
        self.owner = owner


class FeatureNet(nn.Module):
    """A model's feature maps at its declared points: ``forward(x)`` returns a list of NCHW tensors.

    Build it with :func:`mhub.features` or ``mhub.create(name, features_only=True)``. Its state-dict keys are
    the model's own (``backbone.…``), less everything after the last requested point (the head included).

    Attributes:
        feature_info: the selected levels (:class:`FeatureInfo`), in forward order.
    """

    def __init__(self, model: nn.Module, out_indices: OutIndices = None, *,
                 points: Sequence[dict[str, Any]] | None = None):
        """Wrap ``model``, sharing its parameters.

        Args:
            model: a :class:`mhub.BackboneClassifier` (or another ``nn.Sequential``) declaring ``feature_info``.
            out_indices: levels to return (see :func:`take_indices`); default: the model's ``out_indices``.
            points: feature points to use instead of the model's declaration (same format).

        Raises:
            FeatureError: no or a malformed declaration, bad ``out_indices``, or a model that is neither a
                ``BackboneClassifier`` nor a plain ``nn.Sequential``.
        """
        super().__init__()
        declared = declared_features(model, points)
        if points is None and out_indices is None:
            out_indices = getattr(model, "feature_out_indices", None)
        # A BackboneClassifier computes classifier(backbone(x)) whatever else its forward adds (auxiliary heads).
        if not (isinstance(model, BackboneClassifier) or _plain_sequential(model)):
            raise FeatureError(f"{type(model).__name__}: feature extraction needs an mhub.BackboneClassifier or "
                               "another nn.Sequential model")
        selected = [declared[i] for i in take_indices(len(declared), out_indices)]
        # what comes out is NCHW: how the modules lay their outputs out stays internal
        self.feature_info = FeatureInfo({k: v for k, v in point.items() if k not in ("layout", "prefix_tokens")}
                                        for point in selected)
        self._layouts = [(point.get("layout", "NCHW"), point.get("prefix_tokens", 0)) for point in selected]
        self._slots = {point["module"]: slot for slot, point in enumerate(selected)}
        self._last = selected[-1]["module"]
        modules, self._plan = self._prune(model, "")
        for name, module in modules.items():
            self.add_module(name, module)

    # -- what to keep and how to run it ---------------------------------------------------------------------
    def _prune(self, container: nn.Sequential, prefix: str) -> tuple[OrderedDict, list[tuple[str, str, Any]]]:
        """The children of ``container`` up to the one holding the last point, and the steps that run them.

        A step is ``(name, kind, detail)``: kind ``"call"`` (run the child), ``"walk"`` (a plain Sequential
        holding points; ``detail`` is its own plan) or ``"hook"`` (a module with its own forward holding
        points; ``detail`` lists their paths relative to it).
        """
        kept: OrderedDict[str, nn.Module] = OrderedDict()
        plan = []
        for name, child in container.named_children():
            path = prefix + name
            inner = [p for p in self._slots if p != path and _within(path, p)]
            if inner and _plain_sequential(child):
                pruned, steps = self._prune(child, path + ".")
                kept[name] = nn.Sequential(pruned)
                plan.append((name, "walk", steps))
            elif inner:
                kept[name] = child
                plan.append((name, "hook", [p[len(path) + 1:] for p in inner]))
            else:
                kept[name] = child
                plan.append((name, "call", None))
            if _within(path, self._last):
                break
        return kept, plan

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        height, width = x.shape[-2:]
        found: list[torch.Tensor | None] = [None] * len(self.feature_info)
        try:
            self._run(self, self._plan, "", x, found)
        except _Stop as stop:
            if stop.owner is not self:
                raise
        missing = [info["module"] for out, info in zip(found, self.feature_info) if out is None]
        if missing:
            raise FeatureError(f"the forward pass never ran the feature module(s) {', '.join(missing)}")
        return [self._to_nchw(out, info, layout, height, width)
                for out, info, layout in zip(found, self.feature_info, self._layouts)]

    def _run(self, container: nn.Module, plan, prefix: str, x, found: list) -> torch.Tensor:
        for name, kind, detail in plan:
            child = getattr(container, name)
            path = prefix + name
            if kind == "walk":
                x = self._run(child, detail, path + ".", x, found)
            elif kind == "hook":
                x = self._run_hooked(child, path, detail, x, found)
            else:
                x = child(x)
            if path in self._slots:
                found[self._slots[path]] = x
        return x  # the plan ends with the last requested point: nothing after it runs

    def _run_hooked(self, module: nn.Module, path: str, inner: list[str], x, found: list):
        def capture(full: str):
            def hook(_module, _args, output):
                found[self._slots[full]] = output
                if full == self._last:
                    raise _Stop(self)
            return hook

        handles = [module.get_submodule(rel).register_forward_hook(capture(f"{path}.{rel}")) for rel in inner]
        try:
            return module(x)
        finally:
            for handle in handles:
                handle.remove()

    @staticmethod
    def _to_nchw(out: torch.Tensor, info: dict[str, Any], layout: tuple[str, int], height: int,
                 width: int) -> torch.Tensor:
        kind, prefix_tokens = layout
        if kind == "NCHW":
            return out
        if kind == "NHWC":
            return out.permute(0, 3, 1, 2).contiguous()
        tokens = out[:, prefix_tokens:]
        reduction = info["reduction"]
        for rows, cols in ((height // reduction, width // reduction),
                           (math.ceil(height / reduction), math.ceil(width / reduction))):
            if rows * cols == tokens.shape[1]:
                return tokens.reshape(out.shape[0], rows, cols, -1).permute(0, 3, 1, 2).contiguous()
        raise FeatureError(f"'{info['module']}': {tokens.shape[1]} tokens do not tile a {height}x{width} input at "
                           f"stride {reduction}")


def features(model: nn.Module, out_indices: OutIndices = None) -> FeatureNet:
    """The multi-scale feature extractor of an mhub model, sharing its parameters.

    Args:
        model: a model that declares its feature points (every registered family's does).
        out_indices: levels to return: ``None`` (the family's default, as timm's), an int ``n`` (the last
            ``n``), or indices (negative ones count from the end).

    Returns:
        A :class:`FeatureNet`; ``net(x)`` is a list of NCHW tensors, ``net.feature_info`` describes them.

    Raises:
        FeatureError: the model declares no feature points, or ``out_indices`` is out of range.
    """
    return FeatureNet(model, out_indices)
