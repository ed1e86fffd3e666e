"""Images in, model inputs out: loading, a weight set's own preprocessing, and ImageNet class names.

``mhub predict`` and the toolchain's ``mhub validate --image`` both go through here, so an image is seen the
same way everywhere. The recipe is torchvision's ``ImageClassification`` / timm's eval transform: resize the
shorter side (``resize``, or ``floor(crop / crop_pct)``), centre-crop ``crop`` x ``crop``, scale to [0, 1],
normalise with ``mean`` / ``std``. Pillow and torch are imported only when an image is actually loaded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ._errors import MhubError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP = 224
DEFAULT_CROP_PCT = 0.875  # 224 / 256, torchvision's and timm's default
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def _pillow():
    try:
        from PIL import Image
    except ImportError as error:
        raise MhubError("reading images needs Pillow: pip install 'mhub[images]' (or pip install pillow)") from error
    return Image


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names; index ``i`` is line ``i + 1`` of ``mhub/data/imagenet-1k-classes.txt``."""
    text = resources.files("mhub").joinpath("data/imagenet-1k-classes.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def label(index: int, num_classes: int = 1000) -> str:
    """The ImageNet name of class ``index`` for 1000-class heads, else ``"class <index>"``."""
    names = class_names()
    return names[index] if num_classes == len(names) and 0 <= index < len(names) else f"class {index}"


def resolve(preprocess: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Complete a manifest's ``preprocess`` table with the ImageNet defaults.

    Returns:
        ``resize``, ``crop``, ``interpolation``, ``mean`` and ``std``, all set.

    Raises:
        MhubError: an unknown interpolation or a non-positive size.
    """
    spec = dict(preprocess or {})
    crop = int(spec.get("crop", DEFAULT_CROP))
    resize = spec.get("resize")
    if resize is None:
        resize = math.floor(crop / float(spec.get("crop_pct", DEFAULT_CROP_PCT)))
    interpolation = str(spec.get("interpolation", "bilinear"))
    if interpolation not in INTERPOLATIONS:
        raise MhubError(f"unknown interpolation {interpolation!r}; expected one of {', '.join(INTERPOLATIONS)}")
    if crop < 1 or int(resize) < crop:
        raise MhubError(f"preprocess needs 0 < crop <= resize, got crop {crop}, resize {resize}")
    return {"resize": int(resize), "crop": crop, "interpolation": interpolation,
            "mean": tuple(spec.get("mean", IMAGENET_MEAN)), "std": tuple(spec.get("std", IMAGENET_STD))}


def open_image(path: str | Path):
    """Read an image file as an RGB ``PIL.Image``.

    Raises:
        MhubError: Pillow is missing, or the file cannot be read as an image.
    """
    Image = _pillow()
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise MhubError(f"cannot read image '{path}': {error}") from error


def to_tensor(image, preprocess: Mapping[str, Any] | None = None):
    """Preprocess an RGB ``PIL.Image`` into a float32 ``[3, crop, crop]`` tensor (see the module doc)."""
    import torch

    Image = _pillow()
    spec = resolve(preprocess)
    method = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[spec["interpolation"]]
    width, height = image.size
    scale = spec["resize"] / min(width, height)
    size = (max(spec["crop"], round(width * scale)), max(spec["crop"], round(height * scale)))
    image = image.resize(size, method)
    crop = spec["crop"]
    left, top = (size[0] - crop) // 2, (size[1] - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(crop, crop, 3)
    x = pixels.permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(spec["mean"], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(spec["std"], dtype=torch.float32).view(3, 1, 1)
    return (x - mean) / std


def load_image(path: str | Path, preprocess: Mapping[str, Any] | None = None):
    """One image file as a float32 ``[1, 3, crop, crop]`` batch, preprocessed per ``preprocess``."""
    return to_tensor(open_image(path), preprocess).unsqueeze(0)


def load_images(paths: Sequence[str | Path], preprocess: Mapping[str, Any] | None = None):
    """Several image files as one float32 ``[N, 3, crop, crop]`` batch."""
    import torch

    return torch.stack([to_tensor(open_image(path), preprocess) for path in paths])


def topk(logits, k: int = 5, num_classes: int | None = None) -> list[list[tuple[int, str, float]]]:
    """Softmax top-``k`` of a ``[N, classes]`` logits batch as ``(index, label, probability)`` per image."""
    classes = num_classes or logits.shape[-1]
    probs = logits.float().softmax(-1)
    values, indices = probs.topk(min(k, logits.shape[-1]), dim=-1)
    return [[(int(i), label(int(i), classes), float(p)) for p, i in zip(row_v, row_i)]
            for row_v, row_i in zip(values.tolist(), indices.tolist())]
