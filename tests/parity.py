"""Comparing an mhub model with its reference implementation: one helper for every family's parity tests.

Compare at each weight set's own input size (:func:`input_sizes`, read from ``registry/*.toml``) and with a
tolerance relative to the output scale (:func:`assert_outputs_close`): two correct float32 implementations of a
deep model at 224 px differ by 2e-5 to 8e-5 in absolute terms (the convolution libraries sum in different
orders; in float64 the difference is exactly 0), so a fixed absolute tolerance fails correct ports with large
logits or, loosened, hides real errors in small ones. Where float32 noise dominates even relative to the scale,
compare ``model.double()`` outputs instead. Build the reference with ``conftest.randomly_filled`` (random
tensors filled once, not by the upstream initialisers) and ours with ``conftest.on_meta()`` plus
``load_state_dict(..., assign=True)``, so the comparison, not the set-up, is what the test spends its time on.
"""

from __future__ import annotations

from functools import lru_cache

import torch

import mhub_registry
from mhub._manifest import load_manifest

# The ResNet and MobileNet/EfficientNet ports differ from torchvision/timm by exactly 0 at their own sizes (same
# kernels, same order); a family whose reference sums in another order may need up to 1e-4 (say why).
REL = 1e-5
SMALL = (64, 64)  # (height, width) for architectures without registered weights: no input size of their own


@lru_cache(maxsize=1)
def _registry_crops() -> dict[str, tuple[int, ...]]:
    crops: dict[str, set[int]] = {}
    for path in sorted(mhub_registry.DIRECTORY.glob("*.toml")):
        for spec in load_manifest(path):
            crops.setdefault(spec.model, set()).add(int(spec.preprocess.get("crop", 224)))
    return {model: tuple(sorted(sizes)) for model, sizes in crops.items()}


def input_sizes(arch: str, default: tuple[int, int] = SMALL) -> tuple[tuple[int, int], ...]:
    """``(height, width)`` of each distinct ``preprocess.crop`` of ``arch``'s weight sets in ``registry/``.

    ``(default,)`` for an architecture without registered weights.
    """
    crops = _registry_crops().get(arch)
    return tuple((crop, crop) for crop in crops) if crops else (default,)


def randomise_model(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Trained-looking BatchNorm statistics (:func:`conftest.randomise_batchnorm`) and ``Linear`` weights from
    N(0, 0.05), so the logits are not squashed towards zero (a fresh torchvision MobileNetV3's are ~1e-9, and
    would pass any absolute tolerance). Returns the model, in eval mode."""
    from conftest import randomise_batchnorm

    randomise_batchnorm(model, seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, 0.05, generator=generator)
    return model.eval()


def relative_atol(expected: torch.Tensor, rel: float = REL) -> float:
    """``rel * max(1, |expected|.max())``: the allowed absolute error for outputs of this scale."""
    return rel * max(1.0, float(expected.abs().max()))


def assert_outputs_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = REL, min_scale: float = 0.1,
                         what: str = "") -> None:
    """``actual`` equals ``expected`` within :func:`relative_atol` (no relative term per element).

    ``min_scale`` guards against a comparison that cannot fail: outputs squashed towards zero would pass any
    tolerance.
    """
    scale = float(expected.abs().max())
    assert scale > min_scale, f"{what}: reference outputs are near zero (max |ref| = {scale:.3g})"
    torch.testing.assert_close(actual, expected, rtol=0, atol=relative_atol(expected, rel),
                               msg=lambda message: f"{what}: {message}" if what else message)


def own_size_input(name: str, seed: int = 1) -> torch.Tensor:
    """A ``[1, 3, crop, crop]`` standard-normal batch at the input size of the registered weight set ``name``
    (``arch.tag``, or ``arch`` for its default), as :func:`mhub.imaging.resolve` reads its ``preprocess``."""
    import mhub
    from mhub import imaging

    crop = imaging.resolve(mhub.get_registry().weights_for(name).preprocess)["crop"]
    return torch.randn(1, 3, crop, crop, generator=torch.Generator().manual_seed(seed))
