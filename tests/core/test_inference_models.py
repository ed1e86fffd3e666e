"""``mhub.fuse`` on every registered architecture: same outputs, no BatchNorm left after a convolution.

Parametrised over the registry as the installed plugins build it, so families that land later are covered
without a change here. Which BatchNorms follow a convolution is observed independently of ``mhub.fuse``'s
own search: hooks record, during a forward pass, every BatchNorm whose input *is* (the same tensor object,
unchanged since) the output of a convolution or linear layer. Each model runs at the smallest input it
accepts, batch 1.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import mhub
from conftest import count, on_meta, randomise_batchnorm
from mhub.inference import FusedConv2d, fold_batchnorms, fuse_in_place

ARCHS = mhub.get_registry().archs
SIZES = (32, 64, 128, 224, 299)  # tried in turn: a model runs at the first it accepts
BIG = 100_000_000  # parameters: checked for BatchNorms on the meta device before being built
GIANT = 200_000_000  # parameters: fused in place, so the shared machine never holds two copies
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def relative_tolerance(reference: torch.Tensor) -> float:
    return 1e-4 * max(1.0, reference.abs().max().item())


def build_with_batchnorm(name: str) -> nn.Module:
    """``name`` with the builder's random weights and randomised BatchNorm statistics, in eval mode; skips if it
    has no BatchNorm. (The builders' initialisers keep activations in range; uniformly filled weights make some
    deep networks amplify any difference, float64 rounding included.)"""
    known = ARCHS[name].num_params
    if known is None or known > BIG:  # a cheap look first: giant BatchNorm-free models are never built
        try:
            with on_meta():
                probe = mhub.create(name)
        except Exception:  # noqa: BLE001 -- a builder that needs real tensors: build it for real below
            probe = None
        if probe is not None and not any(isinstance(m, _BatchNorm) for m in probe.modules()):
            pytest.skip(f"{name} has no BatchNorm")
    model = mhub.create(name)
    if not any(isinstance(m, _BatchNorm) for m in model.modules()):
        pytest.skip(f"{name} has no BatchNorm")
    return randomise_batchnorm(model)


class BatchNormsAfterLayers:
    """Hooks that record, by tensor identity, which BatchNorms take a conv/linear layer's output as input."""

    def __init__(self, model: nn.Module):
        self.names = {module: name for name, module in model.named_modules()}
        self.handles = []
        for module in model.modules():
            if isinstance(module, LAYERS):
                self.handles.append(module.register_forward_hook(self._layer_ran))
            elif isinstance(module, _BatchNorm):
                self.handles.append(module.register_forward_pre_hook(self._norm_runs))
        self.reset()

    def reset(self) -> None:
        self.outputs: dict[int, tuple[torch.Tensor, int]] = {}  # id -> (tensor, version); alive: ids stay unique
        self.ran: set[str] = set()
        self.after_layer: set[str] = set()

    def _layer_ran(self, module, args, output) -> None:
        if isinstance(module, FusedConv2d) and (module.residual or not isinstance(module.act, nn.Identity)):
            return  # its output is no longer the convolution's alone: a BatchNorm after it cannot fold
        self.outputs[id(output)] = output, output._version

    def _norm_runs(self, module, args) -> None:
        name = self.names[module]
        self.ran.add(name)
        layer_output, version = self.outputs.get(id(args[0]), (None, None)) if args else (None, None)
        if layer_output is args[0] and args[0]._version == version:  # not changed in place since (an activation)
            self.after_layer.add(name)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def run_smallest(model: nn.Module, recorder: BatchNormsAfterLayers) -> tuple[torch.Tensor, torch.Tensor]:
    """The first of :data:`SIZES` the model accepts: ``(input, output)``, recorded by ``recorder``."""
    error = None
    for size in SIZES:
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
        recorder.reset()
        try:
            with torch.no_grad():  # not inference mode: version counters show in-place changes
                return x, model(x)
        except Exception as exc:  # noqa: BLE001 -- too small for this model: try the next size
            error = exc
    raise AssertionError(f"no input size in {SIZES} works") from error


def batchnorm_names(model: nn.Module) -> set[str]:
    return {name for name, module in model.named_modules() if isinstance(module, _BatchNorm)}


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_fuse_keeps_outputs_and_folds_every_batchnorm_after_a_layer(name):
    model = build_with_batchnorm(name)
    before = BatchNormsAfterLayers(model)
    x, reference = run_smallest(model, before)
    before.remove()
    names = batchnorm_names(model)
    giant = count(model) > GIANT
    if giant:  # in place, as fuse does to its copy: the shared machine never holds two copies
        fuse_in_place(model)
        fused = model
    else:
        fused = mhub.fuse(model)
    after = BatchNormsAfterLayers(fused)
    with torch.no_grad():
        output = fused(x)

    assert not fused.training
    assert not after.after_layer, f"BatchNorms still after a convolution: {sorted(after.after_layer)[:5]}"
    removed = names - batchnorm_names(fused)
    assert not (removed & before.ran) - before.after_layer, \
        "a BatchNorm that follows no convolution or linear layer was removed"

    tolerance = relative_tolerance(reference)
    error = (output - reference).abs().max().item()
    if error <= tolerance or giant:
        assert error <= tolerance, f"fused differs by {error:.3g} (allowed {tolerance:.3g})"
        return
    # Randomised statistics can make a deep network amplify float32 rounding beyond the tolerance (SE-ResNet-152
    # changes by ~10% when its weights move by 1e-7). Then float32 cannot resolve the tolerance even without
    # fusion; show that, and compare in float64 instead.
    del fused
    model.double()
    with torch.inference_mode():
        reference64 = model(x.double())
        float32_noise = (reference.double() - reference64).abs().max().item()
        assert float32_noise > tolerance, f"fused differs by {error:.3g} (allowed {tolerance:.3g}); float32 " \
                                          f"itself is accurate to {float32_noise:.3g} here"
        error64 = (mhub.fuse(model)(x.double()) - reference64).abs().max().item()
    assert error64 <= relative_tolerance(reference64), f"float64: fused differs by {error64:.3g}"


def smallest_per_family() -> list[str]:
    """One architecture per family, the one with the fewest parameters (cheap, and well conditioned)."""
    chosen: dict[str, str] = {}
    for name in sorted(ARCHS):
        spec, best = ARCHS[name], chosen.get(ARCHS[name].family)
        size = spec.num_params or float("inf")
        if best is None or size < (ARCHS[best].num_params or float("inf")):
            chosen[spec.family] = name
    return sorted(chosen.values())


@pytest.mark.parametrize("name", smallest_per_family())
def test_fused_convolutions_keep_outputs_in_every_family_channels_last_too(name):
    """Families without BatchNorm (ViT, MLPs) included: every plain Conv2d becomes a FusedConv2d."""
    model = randomise_batchnorm(mhub.create(name)).eval()
    recorder = BatchNormsAfterLayers(model)
    x, reference = run_smallest(model, recorder)
    recorder.remove()
    fused = mhub.fuse(model)
    assert not any(type(m) is nn.Conv2d for m in fused.modules())
    folded = copy.deepcopy(model)
    fold_batchnorms(folded)
    assert fused.state_dict().keys() == folded.state_dict().keys()  # the same parameters under the same names
    fast = fused.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        for candidate, inputs in ((fused, x), (fast, x.contiguous(memory_format=torch.channels_last))):
            error = (candidate(inputs) - reference).abs().max().item()
            assert error <= relative_tolerance(reference), f"fused differs by {error:.3g}"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", smallest_per_family())
def test_fused_model_on_cuda_in_float32_and_in_bfloat16_channels_last(name):
    from mhub_tools.validate import run_on

    model = build_with_batchnorm(name)
    recorder = BatchNormsAfterLayers(model)
    x, reference = run_smallest(model, recorder)
    recorder.remove()
    fused = mhub.fuse(model)
    assert (run_on(fused, "cuda", x, tf32=False) - reference).abs().max() <= relative_tolerance(reference)

    # bfloat16 keeps ~3 significant digits: the fused model must be as accurate as the unfused one there.
    x_fast = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    errors = {}
    for label, candidate in (("fused", fused), ("unfused", model)):
        candidate = candidate.to(torch.bfloat16).to(memory_format=torch.channels_last)
        errors[label] = (run_on(candidate, "cuda", x_fast) - reference).abs().max().item()
    assert errors["fused"] <= max(2 * errors["unfused"], 1e-2 * max(1.0, reference.abs().max().item())), errors
