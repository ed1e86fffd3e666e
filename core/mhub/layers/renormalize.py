"""Change an input's normalisation inside the model (torchvision's ``transform_input``).

Weights trained on inputs scaled to ``[-1, 1]`` (``(x - 0.5) / 0.5``, the TensorFlow/Inception convention) can be
fed images normalised the ImageNet way when the network starts by undoing one normalisation and applying the
other: ``x * std_in / std_out + (mean_in - mean_out) / std_out`` per channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._errors import ConfigError
from ..imaging import IMAGENET_MEAN, IMAGENET_STD

INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


class Renormalize(nn.Module):
    """Map inputs normalised with ``(mean_in, std_in)`` to inputs normalised with ``(mean_out, std_out)``.

    Defaults map ImageNet mean/std inputs to Inception's ``[-1, 1]`` range, as torchvision's GoogLeNet and
    Inception v3 do with ``transform_input=True``. No parameters or buffers: nothing appears in a state dict.

    Args:
        mean_in, std_in, mean_out, std_out: one value per channel each.
        in_chans: channels of the input: as many as the constants (the default), or 1: a grey channel is read as
            every channel (exactly what repeating it first gives), so the output has the constants' channels
            (:attr:`out_chans`) and the layers after it keep theirs.

    Raises:
        ConfigError: constants of different lengths, or ``in_chans`` neither 1 nor their length.
    """

    def __init__(self, mean_in: Sequence[float] = IMAGENET_MEAN, std_in: Sequence[float] = IMAGENET_STD,
                 mean_out: Sequence[float] = INCEPTION_MEAN, std_out: Sequence[float] = INCEPTION_STD, *,
                 in_chans: int | None = None):
        super().__init__()
        if not len(mean_in) == len(std_in) == len(mean_out) == len(std_out):
            raise ConfigError("Renormalize needs one mean and one std per channel, in and out")
        self.out_chans = len(mean_out)
        self.in_chans = self.out_chans if in_chans is None else in_chans
        if self.in_chans not in (1, self.out_chans):
            raise ConfigError(f"Renormalize maps {self.out_chans} channels, or 1 grey channel read as each of them; "
                              f"got in_chans={in_chans}")
        self.scale = tuple(si / so for si, so in zip(std_in, std_out))
        self.shift = tuple((mi - mo) / so for mi, mo, so in zip(mean_in, mean_out, std_out))

    @classmethod
    def transform_input(cls, in_chans: int = 3) -> Renormalize:
        """torchvision's ``transform_input`` (GoogLeNet, Inception v3) for a model taking ``in_chans`` channels.

        RGB inputs are transformed per channel; a grey one (``in_chans=1``) as the RGB image repeating it, so
        the first convolution keeps the 3 input channels the weights have.

        Raises:
            ConfigError: ``in_chans`` other than 3 or 1 (no per-channel transform fits them).
        """
        if in_chans not in (1, 3):
            raise ConfigError(f"transform_input re-normalises RGB inputs per channel (in_chans=3) or a grey one "
                              f"read as R, G and B (in_chans=1); got in_chans={in_chans}")
        return cls(in_chans=in_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, self.out_chans, 1, 1)  # a single grey channel broadcasts to all of them
        return x * x.new_tensor(self.scale).view(shape) + x.new_tensor(self.shift).view(shape)

    def extra_repr(self) -> str:
        grey = ", in_chans=1" if self.in_chans != self.out_chans else ""
        return f"scale={tuple(round(s, 4) for s in self.scale)}, shift={tuple(round(s, 4) for s in self.shift)}{grey}"
