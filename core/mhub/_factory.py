"""The one chokepoint where models are built; pretrained loading lives in :mod:`mhub.hub.loading`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ._errors import FeatureError, MhubError, NoWeightsError
from ._registry import get_registry
from ._specs import ArchSpec


def build(arch: ArchSpec, *, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any):
    """Call the architecture's builder with its registered defaults, overridden by ``kwargs``.

    A ``num_classes`` in the defaults is the architecture's own default head size (``create`` reads it);
    the value given here always wins.
    """
    builder = arch.load_builder()
    defaults = {k: v for k, v in arch.defaults.items() if k not in ("num_classes", "in_chans")}
    try:
        return builder(**{**defaults, **kwargs}, num_classes=num_classes, in_chans=in_chans)
    except TypeError as error:
        # A keyword nobody along the builder's chain takes surfaces deep inside (a block's __init__): name it.
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(error))
        if unknown and unknown.group(1) in kwargs:
            raise MhubError(f"{arch.name}: unknown argument '{unknown.group(1)}' "
                            f"(see help({arch.builder_name().replace(':', '.')}))") from error
        raise


def create(name: str, pretrained: bool = False, num_classes: int | None = None, in_chans: int = 3, *,
           features_only: bool = False, out_indices: int | Sequence[int] | None = None, fuse: bool = False,
           channels_last: bool = False, compile: bool = False, **kwargs: Any):
    """Build a registered model, optionally with its pretrained weights.

    Args:
        name: ``arch`` or ``arch.tag`` (the tag picks the weight set; ``arch`` alone means the default one).
        pretrained: load the weight set, pulling and verifying it into the cache first if needed.
        num_classes: classifier outputs; defaults to the weight set's (1000 for ImageNet-1k), else the
            architecture's registered default (a UNet's 1), else 1000. With ``pretrained``, a different
            value re-initialises the head.
        in_chans: input channels; with ``pretrained`` the first convolution is adapted.
        features_only: return the multi-scale feature extractor (:func:`mhub.features`) instead: the head
            is dropped (with ``pretrained``, the backbone's weights load and ``num_classes`` is ignored).
        out_indices: with ``features_only``, the levels to return (as timm's ``out_indices``).
        fuse: an inference model: eval mode, BatchNorm folded into the layer before it, activations and
            residual additions merged into the convolutions before them (see ``mhub.fuse``).
        channels_last: parameters in ``torch.channels_last`` memory format (faster convolutions on CPU and GPU).
        compile: wrap in ``torch.compile`` (compiled at the first call; eager, with one warning, where that
            fails; see ``mhub.inference.compile_model``).
        **kwargs: passed to the family builder (e.g. ``drop_path_rate``). A weight set's ``model_args``
            (architecture arguments its weights need, such as a ViT's ``img_size``) are passed too when it is
            loaded or named (``arch.tag``, or an alias; see ``Registry.named_weights``); ``kwargs`` override them.

    Returns:
        A plain ``torch.nn.Module``; with ``features_only`` a :class:`mhub.FeatureNet`; with ``compile``
        ``torch.compile``'s wrapper of one.

    Raises:
        UnknownModelError: no such model (close matches are suggested).
        NoWeightsError: ``pretrained=True`` for an architecture without weights.
        MhubError: a negative ``num_classes``, ``in_chans`` below 1, or a keyword the builder does not take.
        FeatureError: ``out_indices`` without ``features_only``, or levels the model does not have.
    """
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                                    or num_classes < 0):
        raise MhubError(f"num_classes must be a non-negative integer (0: no classifier), got {num_classes!r}")
    if not isinstance(in_chans, int) or isinstance(in_chans, bool) or in_chans < 1:
        raise MhubError(f"in_chans must be a positive integer, got {in_chans!r}")
    if fuse or channels_last or compile:
        from .inference import prepare

        model = create(name, pretrained, num_classes, in_chans, features_only=features_only, out_indices=out_indices,
                       **kwargs)
        return prepare(model, fuse=fuse, channels_last=channels_last, compile=compile)
    if features_only:
        from ._features import features

        return features(create(name, pretrained, None if pretrained else num_classes, in_chans, **kwargs),
                        out_indices)
    if out_indices is not None:
        raise FeatureError("out_indices selects feature levels and needs features_only=True")
    registry = get_registry()
    arch, weights = registry.resolve(name)
    if pretrained:
        if weights is None:
            raise NoWeightsError(registry.no_weights_message(arch.name))
        from .hub.loading import load_pretrained

        return load_pretrained(arch, weights, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if num_classes is None:
        num_classes = weights.num_classes if weights is not None else arch.defaults.get("num_classes", 1000)
    named = registry.named_weights(name)  # arch.tag or an alias: its model_args apply; bare arch: they do not
    if named is not None:
        kwargs = {**named.model_args, **kwargs}
    return build(arch, num_classes=num_classes, in_chans=in_chans, **kwargs)


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Registered architecture names (or ``arch.tag`` weight names when ``pretrained``) matching a glob."""
    return get_registry().list_models([pattern] if pattern else [], pretrained=pretrained)
