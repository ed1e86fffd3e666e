"""A deliberately tiny convolutional classifier (the model side of the example plugin)."""

from torch import nn

from mhub import BackboneClassifier


def tinynet(*, width: int = 8, num_classes: int = 1000, in_chans: int = 3) -> BackboneClassifier:
    """Conv(3x3, stride 2) + ReLU, global average pool, linear head."""
    backbone = nn.Sequential(nn.Conv2d(in_chans, width, 3, stride=2, padding=1), nn.ReLU())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
    return BackboneClassifier(backbone, head)
