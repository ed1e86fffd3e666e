"""Change an input's normalisation inside the model (torchvision's ``transform_input``).

Weights trained on inputs scaled to ``[-1, 1]`` (``(x - 0.5) / 0.5``, the TensorFlow/Inception convention) can be
fed images normalised the ImageNet way when the network starts by undoing one normalisation and applying the
other: ``x * std_in / std_out + (mean_in - mean_out) / std_out`` per channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..imaging import IMAGENET_MEAN, IMAGENET_STD

INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


class Renormalize(nn.Module):
    """Map inputs normalised with ``(mean_in, std_in)`` to inputs normalised with ``(mean_out, std_out)``.

    Defaults map ImageNet mean/std inputs to Inception's ``[-1, 1]`` range, as torchvision's GoogLeNet and
    Inception v3 do with ``transform_input=True``. No parameters or buffers: nothing appears in a state dict.
    """

    def __init__(self, mean_in: Sequence[float] = IMAGENET_MEAN, std_in: Sequence[float] = IMAGENET_STD,
                 mean_out: Sequence[float] = INCEPTION_MEAN, std_out: Sequence[float] = INCEPTION_STD):
        super().__init__()
        if not len(mean_in) == len(std_in) == len(mean_out) == len(std_out):
            raise ValueError("Renormalize needs one mean and one std per channel, in and out")
        self.scale = tuple(si / so for si, so in zip(std_in, std_out))
        self.shift = tuple((mi - mo) / so for mi, mo, so in zip(mean_in, mean_out, std_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, len(self.scale), 1, 1)
        return x * x.new_tensor(self.scale).view(shape) + x.new_tensor(self.shift).view(shape)

    def extra_repr(self) -> str:
        return f"scale={tuple(round(s, 4) for s in self.scale)}, shift={tuple(round(s, 4) for s in self.shift)}"
