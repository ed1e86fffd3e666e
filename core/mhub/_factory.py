"""The one chokepoint where models are built; pretrained loading lives in :mod:`mhub.hub.loading`."""

from __future__ import annotations

from typing import Any

from ._errors import NoWeightsError
from ._registry import get_registry
from ._specs import ArchSpec


def build(arch: ArchSpec, *, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any):
    """Call the architecture's builder with its registered defaults, overridden by ``kwargs``."""
    builder = arch.load_builder()
    return builder(**{**arch.defaults, **kwargs}, num_classes=num_classes, in_chans=in_chans)


def create(name: str, pretrained: bool = False, num_classes: int | None = None, in_chans: int = 3, *,
           fuse: bool = False, channels_last: bool = False, compile: bool = False, **kwargs: Any):
    """Build a registered model, optionally with its pretrained weights.

    Args:
        name: ``arch`` or ``arch.tag`` (the tag picks the weight set; ``arch`` alone means the default one).
        pretrained: load the weight set, pulling and verifying it into the cache first if needed.
        num_classes: classifier outputs; defaults to the weight set's (1000 for ImageNet-1k). With
            ``pretrained``, a different value re-initialises the head.
        in_chans: input channels; with ``pretrained`` the first convolution is adapted.
        fuse: an inference model: eval mode, BatchNorm folded into the layer before it (see ``mhub.fuse``).
        channels_last: parameters in ``torch.channels_last`` memory format (faster convolutions on CPU and GPU).
        compile: wrap in ``torch.compile`` (compiled at the first call; eager, with one warning, where that
            fails; see ``mhub.inference.compile_model``).
        **kwargs: passed to the family builder (e.g. ``drop_path_rate``).

    Returns:
        A plain ``torch.nn.Module`` (``torch.compile``'s wrapper of one with ``compile``).

    Raises:
        UnknownModelError: no such model (close matches are suggested).
        NoWeightsError: ``pretrained=True`` for an architecture without weights.
    """
    registry = get_registry()
    arch, weights = registry.resolve(name)
    if pretrained:
        if weights is None:
            raise NoWeightsError(registry.no_weights_message(arch.name))
        from .hub.loading import load_pretrained

        model = load_pretrained(arch, weights, num_classes=num_classes, in_chans=in_chans, **kwargs)
    else:
        if num_classes is None:
            num_classes = weights.num_classes if weights is not None else 1000
        model = build(arch, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if fuse or channels_last or compile:
        from .inference import prepare

        model = prepare(model, fuse=fuse, channels_last=channels_last, compile=compile)
    return model


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Registered architecture names (or ``arch.tag`` weight names when ``pretrained``) matching a glob."""
    return get_registry().list_models([pattern] if pattern else [], pretrained=pretrained)
