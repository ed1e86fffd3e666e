"""Key maps for state-dict converters (torch-free, so plugins' ``convert.py`` stays importable cheaply).

A converter written with :func:`rename_keys` is a table: each upstream key is renamed by the first rule whose
pattern matches all of it, optionally reshaped (a value-preserving view, e.g. a 1x1 convolution read as a
linear layer); a key no rule places, or two keys landing on one name, is an error that names them::

    RULES = [
        (r"conv_proj\\.(weight|bias)", r"backbone.patch_embed.proj.\\1"),
        (r"gamma", "backbone.ls.gamma", flatten),
    ]
    def from_upstream(state_dict):
        return rename_keys(state_dict, RULES, layout="upstream ViT")

Where a key's place depends on the whole checkpoint (block numbers counted from its keys), :func:`map_keys`
takes a function ``key -> new key or None`` instead, with the same checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._errors import ConversionError

Template = str | Callable[[re.Match], str]
Rule = tuple[str, Template] | tuple[str, Template, Callable[[Any], Any]]
Transform = Callable[[Any], Any]
MAX_LISTED = 8
PARAM = r"(weight|bias)"  # a layer's parameter names, as one regex group
NORM_PARAM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"  # a BatchNorm's state, one group


def rename_keys(state_dict: Mapping[str, Any], rules: Sequence[Rule], *, layout: str,
                drop: Iterable[str] = ()) -> dict[str, Any]:
    """Rename (and where a rule says so, reshape) every tensor of ``state_dict``.

    Args:
        state_dict: the upstream tensors.
        rules: ``(pattern, template)`` or ``(pattern, template, transform)``; ``pattern`` must match the whole
            key; ``template`` is expanded with its groups (``re.Match.expand``) or, when callable, called with
            the match (for arithmetic on indices); ``transform`` maps the value.
        layout: names the upstream layout in error messages.
        drop: patterns of keys that are deliberately left out (upstream tensors no mhub model uses).

    Returns:
        The renamed tensors, in the order of ``state_dict``.

    Raises:
        ConversionError: keys that no rule places, or several keys renamed to the same name.
    """
    compiled = [(re.compile(rule[0]), rule[1], rule[2] if len(rule) > 2 else None) for rule in rules]

    def place(key: str) -> tuple[str, Transform | None] | None:
        for pattern, template, transform in compiled:
            if match := pattern.fullmatch(key):
                return (template(match) if callable(template) else match.expand(template)), transform
        return None

    return _move(state_dict, place, layout, drop)


def map_keys(state_dict: Mapping[str, Any], rename: Callable[[str], str | None], *, layout: str,
             drop: Iterable[str] = ()) -> dict[str, Any]:
    """Rename every tensor of ``state_dict`` with a function; values pass through unchanged.

    Args:
        state_dict: the upstream tensors.
        rename: upstream key -> mhub key, or ``None`` where the key has no place.
        layout: names the upstream layout in error messages.
        drop: patterns of keys that are deliberately left out (matched against the whole key).

    Returns:
        The renamed tensors, in the order of ``state_dict``.

    Raises:
        ConversionError: keys ``rename`` places nowhere, or several keys renamed to the same name.
    """
    def place(key: str) -> tuple[str, None] | None:
        new = rename(key)
        return None if new is None else (new, None)

    return _move(state_dict, place, layout, drop)


def _move(state_dict: Mapping[str, Any], place: Callable[[str], tuple[str, Transform | None] | None], layout: str,
          drop: Iterable[str]) -> dict[str, Any]:
    dropped = [re.compile(pattern) for pattern in drop]
    out: dict[str, Any] = {}
    source: dict[str, str] = {}
    unplaced, clashes = [], []
    for key, value in state_dict.items():
        if any(pattern.fullmatch(key) for pattern in dropped):
            continue
        placed = place(key)
        if placed is None:
            unplaced.append(key)
            continue
        new, transform = placed
        if new in out:
            clashes.append(f"{source[new]} and {key} -> {new}")
        out[new] = transform(value) if transform else value
        source[new] = key
    if unplaced:
        raise ConversionError(f"{len(unplaced)} key(s) of the {layout} checkpoint have no place in mhub's layout: "
                              f"{listing(unplaced)}")
    if clashes:
        raise ConversionError(f"{layout} checkpoint: several keys map to one name: {listing(clashes)}")
    return out


def listing(items: Iterable[str], limit: int = MAX_LISTED) -> str:
    """The first ``limit`` of ``items``, comma-separated, and how many more: for error messages about keys."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f", ... and {len(items) - limit} more" if len(items) > limit else "")
