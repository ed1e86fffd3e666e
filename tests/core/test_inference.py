"""``mhub.fuse`` / ``fold_batchnorms`` on hand-made models, ``create(fuse=, channels_last=, compile=)``.

Every fused output is compared with the unfused eval-mode model, whose BatchNorms have randomised statistics.
(Every registered architecture is checked in test_inference_models.py.)
"""

from __future__ import annotations

import copy
import json
import warnings
from collections import OrderedDict

import pytest
import torch
from torch import nn

import mhub
from conftest import randomise_batchnorm
from mhub import inference
from mhub.inference import compile_model, fold_batchnorms, fold_into
from mhub.layers import Conv2dSame, conv_norm


def assert_same_function(model: nn.Module, fused: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        reference, output = model.eval()(x), fused(x)
    torch.testing.assert_close(output, reference, rtol=0, atol=1e-5 * max(1.0, reference.abs().max().item()))


def batchnorms(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class AttributeBlock(nn.Module):
    """torchvision style: layers as attributes, composed in ``forward`` (no Sequential to read)."""

    def __init__(self, chs: int = 8):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(chs, chs, 3, padding=1, bias=False), nn.BatchNorm2d(chs)
        self.conv2, self.bn2 = nn.Conv2d(chs, chs, 3, padding=1, groups=2), nn.BatchNorm2d(chs)

    def forward(self, x):
        return (self.bn2(self.conv2(self.bn1(self.conv1(x)).relu())) + x).relu()


@pytest.mark.parametrize("layer, norm, shape", [
    (nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), (2, 4, 9, 7)),
    (nn.Conv2d(6, 6, 3, stride=2, groups=6), nn.BatchNorm2d(6, affine=False), (2, 6, 9, 9)),
    (nn.Conv1d(4, 5, 3), nn.BatchNorm1d(5, eps=1e-3), (2, 4, 11)),
    (nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4), (1, 3, 4, 5, 6)),
    (nn.Linear(7, 5), nn.BatchNorm1d(5), (3, 7)),
])
def test_fold_into_equals_the_layer_then_the_batchnorm(layer, norm, shape):
    pair = randomise_batchnorm(nn.Sequential(layer, norm))
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = pair(x)
        fold_into(layer, norm)
    assert layer.bias is not None
    torch.testing.assert_close(layer(x), reference, rtol=0, atol=1e-5 * reference.abs().max().item())


def test_pairs_are_found_in_sequentials_and_in_attribute_style_forwards():
    model = randomise_batchnorm(nn.Sequential(OrderedDict(
        stem=conv_norm(3, 3, 8, stride=2), block=AttributeBlock(),
        head=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6), nn.BatchNorm1d(6)))))
    fused = mhub.fuse(model)
    assert batchnorms(fused) == [] and isinstance(fused.stem.norm, nn.Identity)
    assert_same_function(model, fused, torch.rand(2, 3, 17, 17))
    assert fold_batchnorms(model) == [("stem.conv", "stem.norm"), ("block.conv1", "block.bn1"),
                                      ("block.conv2", "block.bn2"), ("head.2", "head.3")]


class DenseLayerLike(nn.Module):
    """DenseNet's dense layer: a list of tensors in, two pre-activation units; the first unit's convolution
    feeds the second unit's norm, across the two units."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = conv_norm(1, 6, 8, revnorm=True), conv_norm(3, 8, 4, revnorm=True)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv2(self.conv1(torch.cat(features, 1)))


class PreActivationBlock(nn.Module):
    """Xception-style: the input goes through ``pre`` (norm, act) only; nested units inside ``stack``."""

    def __init__(self):
        super().__init__()
        self.pre = nn.Sequential(OrderedDict(norm=nn.BatchNorm2d(8), act=nn.ReLU()))
        self.stack = nn.Sequential(OrderedDict(a=nn.Sequential(OrderedDict(conv=nn.Conv2d(8, 8, 1))),
                                               b=conv_norm(3, 8, 8, revnorm=True)))
        self.shortcut = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        x = self.pre(x)
        return self.stack(x) + self.shortcut(x)


def test_pairs_across_blocks_are_found_through_nested_containers():
    dense = randomise_batchnorm(DenseLayerLike())
    fused = mhub.fuse(dense)
    assert batchnorms(fused) == ["conv1.norm"]  # after a concatenation: stays
    features = [torch.rand(2, 2, 9, 9), torch.rand(2, 4, 9, 9)]
    with torch.no_grad():
        torch.testing.assert_close(fused(features), dense(features), rtol=0, atol=1e-5)

    model = randomise_batchnorm(nn.Sequential(OrderedDict(stem=nn.Sequential(nn.Conv2d(3, 8, 3)),
                                                          block=PreActivationBlock())))
    fused = mhub.fuse(model)
    assert fold_batchnorms(copy.deepcopy(model)) == [("stem.0", "block.pre.norm"),
                                                     ("block.stack.a.conv", "block.stack.b.norm")]
    assert batchnorms(fused) == []
    assert_same_function(model, fused, torch.rand(1, 3, 12, 12))


def test_fuse_returns_an_eval_copy_with_the_same_function_and_leaves_the_original_alone():
    model = randomise_batchnorm(nn.Sequential(conv_norm(3, 3, 8), AttributeBlock())).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = mhub.fuse(model)
    assert model.training and not fused.training and batchnorms(fused) == []
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and len(before) == len(
        model.state_dict())
    assert_same_function(model, fused, torch.rand(2, 3, 12, 12))
    with pytest.raises(mhub.MhubError, match="^mhub.fuse takes a torch.nn.Module, not str$"):
        mhub.fuse("resnet50")


class SharedOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y  # the convolution's output has a second user: folding would change it


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace this forward, but its children are still fused."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.unit = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), conv_norm(3, 3, 3)

    def forward(self, x):
        if x.sum() > 0:
            x = self.bn(self.conv(x))
        return self.unit(x)


class StandardisedConv(nn.Conv2d):
    """Weight standardisation: a rescaled weight would be standardised away, so it must not absorb a norm."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return self._conv_forward(x, w, self.bias)


class BatchNormAct(nn.BatchNorm2d):
    """A BatchNorm subclass with its own forward (norm + activation): replacing it would drop the activation."""

    def forward(self, x):
        return super().forward(x).relu()


def batch_statistics_only(model: nn.Module) -> nn.Module:
    """``model`` (randomised) with its BatchNorms using batch statistics even in eval mode."""
    for norm in randomise_batchnorm(model).modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.track_running_stats, norm.running_mean, norm.running_var = False, None, None
    return model


@pytest.mark.parametrize("build, kept", [
    (SharedOutput, ["bn"]),
    (Untraceable, ["bn"]),
    (lambda: nn.Sequential(StandardisedConv(3, 4, 3), nn.BatchNorm2d(4)), ["1"]),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), BatchNormAct(4)), ["1"]),
    (lambda: batch_statistics_only(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))), ["1"]),
    (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)), ["2"]),
    (lambda: conv_norm(3, 3, 4, revnorm=True), ["norm"]),  # pre-activation order: the norm comes first
])
def test_batchnorms_that_cannot_be_folded_are_left(build, kept):
    model = build()
    if all(m.running_mean is not None for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        randomise_batchnorm(model)
    fused = mhub.fuse(model)
    assert batchnorms(fused) == kept
    assert_same_function(model, fused, torch.rand(2, 3, 10, 10))


def test_a_module_registered_twice_is_not_folded():
    conv = nn.Conv2d(3, 3, 3, padding=1)
    model = randomise_batchnorm(nn.Sequential(OrderedDict(a=nn.Sequential(conv, nn.BatchNorm2d(3)),
                                                          b=nn.Sequential(conv, nn.BatchNorm2d(3)))))
    fused = mhub.fuse(model)
    assert batchnorms(fused) == ["a.1", "b.1"]
    assert_same_function(model, fused, torch.rand(1, 3, 8, 8))


def test_conv2d_same_keeps_its_input_dependent_padding():
    model = randomise_batchnorm(conv_norm(3, 3, 8, stride=2, padding="same"))
    assert isinstance(model.conv, Conv2dSame) and model.conv.bias is None
    fused = mhub.fuse(model)
    assert isinstance(fused.conv, Conv2dSame) and batchnorms(fused) == []
    for size in ((33, 47), (32, 32), (7, 12)):  # odd sizes pad one more at the bottom/right
        x = torch.rand(1, 3, *size)
        assert fused(x).shape[-2:] == ((size[0] + 1) // 2, (size[1] + 1) // 2)
        assert_same_function(model, fused, x)


def test_revnorm_resnet_folds_its_shortcuts_and_keeps_its_pre_activation_norms():
    torch.manual_seed(0)
    model = randomise_batchnorm(mhub.create("resnet18", revnorm=True, num_classes=10))
    fused = mhub.fuse(model)
    pre_activation = {f"{name}.norm" for name, m in model.named_modules()
                      if isinstance(m, nn.Sequential) and next(iter(m._modules), None) == "norm"}
    assert len(pre_activation) == 16 and set(batchnorms(fused)) == pre_activation | {"backbone.norm"}
    assert_same_function(model, fused, torch.rand(1, 3, 32, 32))


def test_create_gives_the_fused_channels_last_model():
    torch.manual_seed(0)
    plain = mhub.create("mobilenetv3_small_050", num_classes=10)
    torch.manual_seed(0)
    fast = mhub.create("mobilenetv3_small_050", num_classes=10, fuse=True, channels_last=True)
    assert not fast.training and batchnorms(fast) == []
    convs = [m for m in fast.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert all(isinstance(m, inference.FusedConv2d) for m in convs)
    x = torch.rand(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    assert_same_function(plain, fast, x)
    assert mhub.create("mobilenetv3_small_050", channels_last=True).training  # only fuse implies eval


def test_pretrained_fused_model_matches_leaves_the_cached_file_alone_and_predicts_alike(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from PIL import Image

    from mhub.cli import cli
    from mhub.hub.convert import save_safetensors
    from mhub.hub.integrity import sha256_file

    torch.manual_seed(0)
    trained = randomise_batchnorm(mhub.create("mobilenetv3_small_050"))
    weights = tmp_path / "small.safetensors"
    save_safetensors(trained.state_dict(), weights)
    digest, size = sha256_file(weights)
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "test.toml").write_text(
        f'[[weights]]\nmodel = "mobilenetv3_small_050"\ntag = "fuse_test"\nsources = ["{weights.as_uri()}"]\n'
        f'sha256 = "{digest}"\nsize = {size}\nformat = "safetensors"\nlicense = "Apache-2.0"\n'
        f'preprocess = {{ resize = 72, crop = 64 }}\n')
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path / "registry"))
    mhub._registry.reset_registry()
    fused = mhub.create("mobilenetv3_small_050.fuse_test", pretrained=True, fuse=True)
    assert batchnorms(fused) == []
    assert_same_function(trained, fused, torch.rand(1, 3, 64, 64))
    cached = mhub.create("mobilenetv3_small_050.fuse_test", pretrained=True)  # from the (memory-mapped) cache
    assert_same_function(trained, cached.eval(), torch.rand(1, 3, 64, 64))
    assert sha256_file(weights)[0] == digest

    image = tmp_path / "noise.png"
    Image.fromarray((torch.rand(80, 90, 3) * 255).byte().numpy()).save(image)
    folded = []
    monkeypatch.setattr(inference, "fold_batchnorms", lambda model: folded.append(fold_batchnorms(model)))
    runs = [json.loads(CliRunner().invoke(cli, ["predict", "mobilenetv3_small_050.fuse_test", str(image), "--json",
                                                *flag], catch_exceptions=False).output)[0]["top"]
            for flag in ([], ["--fuse"])]
    assert len(folded) == 1 and len(folded[0]) == sum(isinstance(m, nn.BatchNorm2d) for m in trained.modules())
    assert [t["index"] for t in runs[0]] == [t["index"] for t in runs[1]]
    assert [t["probability"] for t in runs[1]] == pytest.approx([t["probability"] for t in runs[0]], abs=1e-6)


# -- torch.compile ------------------------------------------------------------------------------------------
def failing_backend(graph_module, example_inputs):
    raise RuntimeError("no C++ compiler found\nsecond line of the story")


def test_compile_failure_runs_eagerly_after_one_warning_line():
    model = randomise_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())).eval()
    compiled = compile_model(model, backend=failing_backend)
    x = torch.rand(1, 3, 8, 8)
    with pytest.warns(UserWarning) as caught:
        with torch.no_grad():
            output = compiled(x)
            again = compiled(torch.rand(2, 3, 9, 9))  # another shape: another graph, no second warning
    messages = [str(w.message) for w in caught if "torch.compile" in str(w.message)]
    assert messages == ["torch.compile failed for Sequential: RuntimeError: no C++ compiler found; running eagerly"]
    assert again.shape == (2, 4, 7, 7)
    torch.testing.assert_close(output, model(x))


def test_compile_unavailable_returns_the_model_with_one_warning(monkeypatch):
    def unsupported(*args, **kwargs):
        raise RuntimeError("torch.compile is not supported on Python 3.99+")

    monkeypatch.setattr(torch, "compile", unsupported)
    model = nn.Linear(2, 2)
    with pytest.warns(UserWarning, match=r"^torch.compile is unavailable for Linear: RuntimeError: torch.compile is "
                                         r"not supported on Python 3.99\+; running eagerly$"):
        assert compile_model(model) is model


def test_create_compile_goes_through_compile_model(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda model, backend: calls.append(backend) or model)
    model = mhub.create("mobilenetv3_small_050", fuse=True, compile=True)
    assert isinstance(model, mhub.BackboneClassifier) and len(calls) == 1 and callable(calls[0])


def test_no_warnings_when_nothing_fails():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mhub.fuse(nn.Sequential(AttributeBlock(), Untraceable()))
