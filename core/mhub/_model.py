"""The shape every mhub model has: a backbone followed by a classifier (Metalhead's ``Chain``)."""

from collections import OrderedDict

from torch import nn


class BackboneClassifier(nn.Sequential):
    """``nn.Sequential(backbone, classifier)`` with the two parts addressable by name.

    State-dict keys start with ``backbone.`` or ``classifier.``; ``mhub.backbone(model)`` returns the
    feature extractor (a stride-32 map for the convolutional families, the normalised tokens ``(B, N, D)`` for
    ViT and the MLP families, as timm's ``forward_features``) and ``mhub.classifier(model)`` the head, which
    starts with the global pool (with ``num_classes=0`` a model returns the pooled features).
    """

    def __init__(self, backbone: nn.Module, classifier: nn.Module):
        super().__init__(OrderedDict(backbone=backbone, classifier=classifier))


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
