"""The shape every mhub model has: a backbone followed by a classifier (Metalhead's ``Chain``)."""

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn


class BackboneClassifier(nn.Sequential):
    """``nn.Sequential(backbone, classifier)`` with the two parts addressable by name.

    State-dict keys start with ``backbone.`` or ``classifier.``; ``mhub.backbone(model)`` returns the
    feature extractor (a stride-32 map for the convolutional families, the normalised tokens ``(B, N, D)`` for
    ViT and the MLP families, as timm's ``forward_features``) and ``mhub.classifier(model)`` the head, which
    starts with the global pool (with ``num_classes=0`` a model returns the pooled features).

    Args:
        backbone: the feature extractor.
        classifier: the head.
        feature_info: the family's feature points, plain data: one dict per level, in forward order, with the
            ``module`` path (``"backbone.stages.0"``), ``num_chs`` and ``reduction`` (stride), as timm's
            ``features_only`` levels for the same architecture (see :func:`mhub.features`).
        out_indices: the levels :func:`mhub.features` returns by default (timm's default for the family);
            ``None``: every declared level.
    """

    def __init__(self, backbone: nn.Module, classifier: nn.Module, *,
                 feature_info: Sequence[dict[str, Any]] | None = None,
                 out_indices: int | Sequence[int] | None = None):
        super().__init__(OrderedDict(backbone=backbone, classifier=classifier))
        if feature_info is not None:
            self.feature_info = [dict(point) for point in feature_info]
            self.feature_out_indices = out_indices


def backbone(model: nn.Module) -> nn.Module:
    """The feature extractor of an mhub model."""
    return _part(model, "backbone")


def classifier(model: nn.Module) -> nn.Module:
    """The classification head of an mhub model."""
    return _part(model, "classifier")


def _part(model: nn.Module, name: str) -> nn.Module:
    part = getattr(model, name, None)
    if not isinstance(part, nn.Module):
        from ._errors import MhubError

        raise MhubError(f"{type(model).__name__} has no '{name}'; mhub models are BackboneClassifier instances")
    return part
