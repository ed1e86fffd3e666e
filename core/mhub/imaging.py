"""Images in, model inputs out: loading, a weight set's own preprocessing, and ImageNet class names.

``mhub predict``, ``mhub eval`` and the toolchain's ``mhub validate --image`` go through here, so an image is
seen the same way everywhere, and the tensor that reaches the model is the one upstream's own eval transform
gives: bit for bit torchvision's ``ImageClassification`` preset (the ``transforms`` of its weight
enums) and timm's ``create_transform(**resolve_data_config(...))`` for a PIL image.

Reading a manifest's ``preprocess`` table (:func:`resolve`):

- ``crop`` (default 224) is the square input the model sees. The scale size is ``resize`` where given; a set
  that carries ``crop_pct`` (a timm set) has ``floor(crop / crop_pct)``, as timm computes it, and a ``resize``
  beside it must agree; neither gives ``crop_pct`` 0.875 (224 -> 256), both libraries' default. Both
  libraries share the arithmetic below, so only ``crop_pct`` and ``crop_mode`` say "timm".
- ``crop_mode`` (timm's; default ``center``):
  ``center`` scales the shorter side to ``resize`` and the longer to ``floor(resize * long / short)``
  (truncated, as torchvision's ``Resize(int)``), then cuts the centre ``crop`` x ``crop``;
  ``squash`` scales both sides to ``resize`` (the aspect ratio is not kept), then cuts the centre;
  ``border`` scales the longer side to ``resize`` and the shorter to ``round(short / (long / resize))``, then
  cuts the centre or pads to ``crop`` with the mean colour ``round(255 * mean)``.
  A centre cut starts at ``round((size - crop) / 2)``, rounding a half to even (Python's ``round``, which
  both libraries use); padding puts ``(crop - size) // 2`` pixels before the image.
- ``interpolation``: Pillow's filter of that name (antialiased when shrinking, as upstream's PIL path; a
  tensor resize would differ). The resize is skipped when the size does not change.
- pixels become float32 ``/ 255``, then ``(x - mean) / std`` per channel, the same float32 operations in the
  same order as both upstream pipelines. (A ``transforms.v2`` chain with ``ToDtype(float32, scale=True)``
  multiplies by ``1 / 255`` instead and differs by at most one float32 ulp before normalisation.)
- ``resolve(preprocess, test=True)`` uses upstream's test-time size, as timm's
  ``resolve_data_config(use_test_size=True)``: ``crop`` becomes ``test_size`` and ``crop_pct`` becomes
  ``test_crop_pct`` where given, and the scale size follows from them (``crop_pct`` 0.875 when the set has
  none).

Images in any Pillow mode are first converted with ``Image.convert("RGB")``, exactly what torchvision's
``ImageFolder`` loader and timm's datasets do: greyscale is repeated into three channels, palettes are
expanded, alpha is dropped (not composited: a transparent pixel keeps its stored colour), and 16- or 32-bit
integer greyscale (``I;16``, ``I``) is clamped to 0..255 rather than rescaled, so a 16-bit image using the
full range comes out mostly white; scale such images to 8 bits first if that is not wanted. EXIF orientation
is not applied, as upstream does not. Pillow and torch are imported only when an image is actually used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ._errors import MhubError
from ._manifest import CROP_MODES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP = 224
DEFAULT_CROP_PCT = 0.875  # 224 / 256, torchvision's and timm's default
# Pillow's filters under the names torchvision's InterpolationMode and timm use
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")


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


def resolve(preprocess: Mapping[str, Any] | None = None, *, test: bool = False) -> dict[str, Any]:
    """Complete a manifest's ``preprocess`` table with the defaults (see the module doc for the rules).

    Args:
        preprocess: the table, or None for the ImageNet defaults.
        test: use the test-time size (``test_size``, ``test_crop_pct``) where the table gives one.

    Returns:
        ``resize`` (the scale size), ``crop``, ``crop_mode``, ``interpolation``, ``mean`` and ``std``, all set.

    Raises:
        MhubError: an unknown interpolation or crop mode, a non-positive size, a scale size below the crop,
            or a ``resize`` that contradicts ``crop_pct``.
    """
    spec = dict(preprocess or {})
    crop, crop_pct, resize = int(spec.get("crop", DEFAULT_CROP)), spec.get("crop_pct"), spec.get("resize")
    if crop_pct is not None:
        timm_resize = math.floor(crop / float(crop_pct))
        if resize is not None and int(resize) != timm_resize:
            raise MhubError(f"preprocess gives resize {resize} and crop_pct {crop_pct}, which means resize "
                            f"{timm_resize} (floor(crop / crop_pct)); give one of them, or make them agree")
        resize = timm_resize
    if test and (spec.get("test_size") is not None or spec.get("test_crop_pct") is not None):
        crop = int(spec.get("test_size") or crop)
        crop_pct = spec.get("test_crop_pct") or crop_pct or DEFAULT_CROP_PCT
        resize = math.floor(crop / float(crop_pct))
    if resize is None:
        resize = math.floor(crop / DEFAULT_CROP_PCT)
    interpolation = str(spec.get("interpolation", "bilinear"))
    if interpolation not in INTERPOLATIONS:
        raise MhubError(f"unknown interpolation {interpolation!r}; expected one of {', '.join(INTERPOLATIONS)}")
    crop_mode = str(spec.get("crop_mode", "center"))
    if crop_mode not in CROP_MODES:
        raise MhubError(f"unknown crop_mode {crop_mode!r}; expected one of {', '.join(CROP_MODES)}")
    if crop < 1 or int(resize) < crop:
        raise MhubError(f"preprocess needs 0 < crop <= resize, got crop {crop}, resize {resize}")
    return {"resize": int(resize), "crop": crop, "crop_mode": crop_mode, "interpolation": interpolation,
            "mean": tuple(spec.get("mean", IMAGENET_MEAN)), "std": tuple(spec.get("std", IMAGENET_STD))}


def override(preprocess: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``preprocess`` with ``overrides`` on top, for command-line ``--preprocess KEY=VALUE`` options.

    ``resize`` and ``crop_pct`` say the same thing in a timm set, so the one the overrides give wins: a ``resize``
    override drops the set's ``crop_pct``, and a ``crop`` or ``crop_pct`` override drops the set's ``resize``
    (``crop=288`` on a timm set means its own crop_pct at 288). Both given in the overrides must agree.
    """
    overrides = dict(overrides or {})
    merged = {**(preprocess or {}), **overrides}
    if "resize" in overrides and "crop_pct" not in overrides:
        merged.pop("crop_pct", None)
    elif "resize" not in overrides and "crop_pct" in merged and {"crop", "crop_pct"} & overrides.keys():
        merged.pop("resize", None)
    return merged


def scaled_size(width: int, height: int, spec: Mapping[str, Any]) -> tuple[int, int]:
    """The ``(width, height)`` an image of ``width`` x ``height`` is resized to under a resolved ``spec``."""
    size, mode = spec["resize"], spec["crop_mode"]
    if mode == "squash":
        return size, size
    if mode == "border":
        # timm divides by a float ratio and rounds; integer arithmetic would round some halves differently
        ratio = max(width, height) / size
        return max(1, round(width / ratio)), max(1, round(height / ratio))
    if width <= height:  # exact integer form of torchvision's int(size * long / short)
        return size, size * height // width
    return size * width // height, size


def _centre(size: int, crop: int) -> tuple[int, int, int]:
    """Along one axis: ``(first source pixel, first target pixel, length)`` of the centre cut or pad."""
    if size >= crop:
        return round((size - crop) / 2), 0, crop  # x.5 rounds to even, as upstream's round()
    return 0, (crop - size) // 2, size


def prepare_image(image, preprocess: Mapping[str, Any] | None = None, *, test: bool = False):
    """Convert a ``PIL.Image`` to RGB, resize and crop it per ``preprocess``: an RGB ``crop`` x ``crop`` image.

    Raises:
        MhubError: ``image`` is not a ``PIL.Image``, or ``preprocess`` is invalid (see :func:`resolve`).
    """
    return _prepare(image, resolve(preprocess, test=test))


def _prepare(image, spec: Mapping[str, Any]):
    Image = _pillow()
    if not isinstance(image, Image.Image):
        raise MhubError(f"expected a PIL.Image, got {type(image).__name__}")
    if image.mode != "RGB":
        image = image.convert("RGB")
    size = scaled_size(*image.size, spec)
    if size != image.size:
        image = image.resize(size, getattr(Image.Resampling, spec["interpolation"].upper()))
    crop = spec["crop"]
    (x, dx, w), (y, dy, h) = _centre(size[0], crop), _centre(size[1], crop)
    region = image.crop((x, y, x + w, y + h))
    if (w, h) == (crop, crop):
        return region
    canvas = Image.new("RGB", (crop, crop), tuple(round(255 * m) for m in spec["mean"]))
    canvas.paste(region, (dx, dy))
    return canvas


def to_tensor(image, preprocess: Mapping[str, Any] | None = None, *, test: bool = False):
    """Preprocess a ``PIL.Image`` into a float32 ``[3, crop, crop]`` tensor (see the module doc).

    Args:
        image: a ``PIL.Image`` in any mode (converted to RGB first).
        preprocess: the weight set's ``preprocess`` table.
        test: use upstream's test-time size (see :func:`resolve`).

    Raises:
        MhubError: as :func:`prepare_image`.
    """
    import torch

    spec = resolve(preprocess, test=test)
    crop = spec["crop"]
    pixels = torch.frombuffer(bytearray(_prepare(image, spec).tobytes()), dtype=torch.uint8)
    x = pixels.view(crop, crop, 3).permute(2, 0, 1).to(torch.float32).div(255)  # upstream's exact float32 op
    mean = torch.tensor(spec["mean"], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(spec["std"], dtype=torch.float32).view(3, 1, 1)
    return (x - mean) / std


def open_image(path: str | Path):
    """Read an image file as an RGB ``PIL.Image`` (``Image.convert("RGB")``, see the module doc).

    Raises:
        MhubError: Pillow is missing, or the file cannot be read as an image.
    """
    Image = _pillow()
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise MhubError(f"cannot read image '{path}': {error}") from error


def load_image(path: str | Path, preprocess: Mapping[str, Any] | None = None, *, test: bool = False):
    """One image file as a float32 ``[1, 3, crop, crop]`` batch, preprocessed per ``preprocess``."""
    return to_tensor(open_image(path), preprocess, test=test).unsqueeze(0)


def load_images(paths: Sequence[str | Path], preprocess: Mapping[str, Any] | None = None, *, test: bool = False):
    """Several image files as one float32 ``[N, 3, crop, crop]`` batch."""
    import torch

    return torch.stack([to_tensor(open_image(path), preprocess, test=test) for path in paths])


def topk(logits, k: int = 5, num_classes: int | None = None) -> list[list[tuple[int, str, float]]]:
    """Softmax top-``k`` of a ``[N, classes]`` logits batch as ``(index, label, probability)`` per image."""
    classes = num_classes or logits.shape[-1]
    probs = logits.float().softmax(-1)
    values, indices = probs.topk(min(k, logits.shape[-1]), dim=-1)
    return [[(int(i), label(int(i), classes), float(p)) for p, i in zip(row_v, row_i)]
            for row_v, row_i in zip(values.tolist(), indices.tolist())]
