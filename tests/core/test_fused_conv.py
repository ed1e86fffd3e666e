"""``FusedConv2d`` and ``fuse_convolutions``: one oneDNN call computing ``act(conv(x) + residual)`` on CPU.

The reference is always the same convolution run by ``nn.Conv2d``, then the addition and the activation
module, op by op. Whether the oneDNN path ran is read from the weight it reorders and keeps.
"""

from __future__ import annotations

import copy
import io
from collections import OrderedDict

import pytest
import torch
from torch import fx, nn

import mhub
from conftest import randomise_batchnorm
from mhub.inference import FusedConv2d, fold_batchnorms, fuse_convolutions

ACTIVATIONS = [None, nn.ReLU(), nn.ReLU6(), nn.Hardtanh(-0.5, 0.25), nn.SiLU(), nn.Hardswish(), nn.Sigmoid(),
               nn.GELU(), nn.GELU(approximate="tanh")]
CONVS = [  # in_chs, out_chs, kernel, stride, padding, dilation, groups, bias
    (6, 8, 3, 1, 1, 1, 1, True),
    (6, 6, 3, 2, 1, 1, 6, False),  # depthwise, strided
    (4, 8, 1, 1, 0, 1, 2, True),   # grouped pointwise
    (4, 4, 5, 1, 4, 2, 1, True),   # dilated
]


def reference(conv: nn.Conv2d, act: nn.Module | None, x: torch.Tensor, residual=None) -> torch.Tensor:
    out = nn.Conv2d.forward(conv, x)
    out = out if residual is None else out + residual
    return out if act is None else act(out)


def make_conv(spec, dtype=torch.float32) -> nn.Conv2d:
    in_chs, out_chs, kernel, stride, padding, dilation, groups, bias = spec
    torch.manual_seed(0)
    return nn.Conv2d(in_chs, out_chs, kernel, stride, padding, dilation, groups, bias).to(dtype)


def close(a: torch.Tensor, b: torch.Tensor, dtype=torch.float32) -> None:
    atol = (1e-5 if dtype == torch.float32 else 2e-2) * max(1.0, b.abs().max().item())
    torch.testing.assert_close(a.float(), b.float(), rtol=0, atol=atol)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: repr(a))
@pytest.mark.parametrize("spec", CONVS)
@pytest.mark.parametrize("residual", [False, True])
def test_equals_the_convolution_then_the_addition_then_the_activation(spec, act, residual):
    conv = make_conv(spec)
    fused = FusedConv2d(copy.deepcopy(conv), copy.deepcopy(act), residual=residual)
    assert fused.weight is not conv.weight and torch.equal(fused.weight, conv.weight)
    with torch.inference_mode():
        for shape in ((2, spec[0], 13, 11), (1, spec[0], 8, 8)):  # reordered for the first, reused for another
            for layout in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(shape).contiguous(memory_format=layout)
                extra = torch.randn_like(nn.Conv2d.forward(conv, x)) if residual else None
                close(fused(x, extra) if residual else fused(x), reference(conv, act, x, extra))
    merged = act is None or type(act) is nn.ReLU or not residual  # what oneDNN merges after an addition
    assert (fused._post_op is not None) == merged
    assert (fused._packed is not None) == merged, "the oneDNN path ran" if fused._packed else "it did not run"


@pytest.mark.parametrize("act, residual", [(nn.ReLU(), True), (None, True), (nn.SiLU(), False)], ids=repr)
def test_bfloat16_matches_the_bfloat16_reference(act, residual):
    conv = make_conv(CONVS[0], torch.bfloat16)
    fused = FusedConv2d(copy.deepcopy(conv), act, residual=residual)
    x = torch.randn(2, 6, 12, 12, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    extra = torch.randn(2, 8, 12, 12, dtype=torch.bfloat16) if residual else None
    with torch.inference_mode():
        close(fused(x, extra) if residual else fused(x), reference(conv, act, x, extra), torch.bfloat16)
    assert fused._packed is not None


def test_gradients_float64_and_broadcast_residuals_run_op_by_op():
    conv = make_conv(CONVS[0])
    fused = FusedConv2d(copy.deepcopy(conv), nn.SiLU(), residual=True)
    x = torch.randn(2, 6, 9, 9, requires_grad=True)
    extra = torch.randn(1, 8, 1, 1)  # broadcast: oneDNN's addition takes only the full shape
    out = fused(x, extra)
    out.sum().backward()
    assert fused._packed is None and fused.weight.grad is not None and x.grad is not None
    close(out.detach(), reference(conv, nn.SiLU(), x, extra).detach())
    with torch.inference_mode():
        close(fused(x, extra), reference(conv, nn.SiLU(), x, extra))
        assert fused._packed is None
        double = copy.deepcopy(fused).double()
        close(double(x.double(), extra.double()), reference(conv.double(), nn.SiLU(), x.double(), extra.double()))


def test_a_changed_weight_is_reordered_again_and_copies_leave_the_reordered_weight_behind():
    conv = make_conv(CONVS[0])
    fused = FusedConv2d(copy.deepcopy(conv), nn.ReLU())
    x = torch.randn(1, 6, 10, 10)
    with torch.inference_mode():
        fused(x)
    assert fused._packed is not None
    assert fused.__getstate__()["_packed"] is None  # what pickling and copying take
    clone = copy.deepcopy(fused)
    assert clone._packed is None
    with torch.inference_mode():
        close(clone(x), reference(conv, nn.ReLU(), x))
    with torch.no_grad():
        conv.weight.mul_(-2)
        fused.load_state_dict(conv.state_dict())
    with torch.inference_mode():
        close(fused(x), reference(conv, nn.ReLU(), x))
        moved = fused.to(memory_format=torch.channels_last)
        assert moved._packed is None
        close(moved(x), reference(conv, nn.ReLU(), x))
    buffer = io.BytesIO()
    torch.save(fused.state_dict(), buffer)
    assert list(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)) == ["weight", "bias"]


def test_residual_input_must_match_the_construction():
    fused = FusedConv2d(make_conv(CONVS[0]), residual=True)
    with pytest.raises(mhub.MhubError, match="^this FusedConv2d takes residual input$"):
        fused(torch.randn(1, 6, 8, 8))
    with pytest.raises(mhub.MhubError, match="^this FusedConv2d takes no residual input$"):
        FusedConv2d(make_conv(CONVS[0]))(torch.randn(1, 6, 8, 8), torch.randn(1, 8, 8, 8))


class Residual(nn.Module):
    """A ResNet-style block: act(norm(conv(x)) + shortcut(x)), with an identity between."""

    def __init__(self, chs=8, downsample=False):
        super().__init__()
        self.conv1 = nn.Sequential(OrderedDict(conv=nn.Conv2d(chs, chs, 3, padding=1, bias=False),
                                               norm=nn.BatchNorm2d(chs), act=nn.ReLU(inplace=True)))
        self.conv2 = nn.Sequential(OrderedDict(conv=nn.Conv2d(chs, chs, 3, padding=1, bias=False),
                                               norm=nn.BatchNorm2d(chs)))
        self.shortcut = nn.Sequential(nn.Conv2d(chs, chs, 1), nn.BatchNorm2d(chs)) if downsample else nn.Identity()
        self.drop_path = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.drop_path(self.conv2(self.conv1(x))) + self.shortcut(x))


class SecondUse(nn.Module):
    """The convolution's output is also used after the addition: it cannot be merged."""

    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()

    def forward(self, x):
        y = self.conv(x)
        return self.act(y + x) + y


class SharedActivation(nn.Module):
    """One activation module called twice, as torchvision's blocks do: the addition merges, the call stays."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.relu = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 1), nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


def run(model, x):
    with torch.inference_mode():
        return model(x)


def test_residual_blocks_merge_additions_and_activations_and_keep_their_names_and_state():
    model = randomise_batchnorm(nn.Sequential(Residual(), Residual(downsample=True), SecondUse(),
                                              SharedActivation())).eval()
    x = torch.randn(2, 8, 10, 10)
    expected = run(model, x)
    fused = copy.deepcopy(model)
    fold_batchnorms(fused)
    keys = fused.state_dict().keys()
    merged = fuse_convolutions(fused)
    assert sorted(merged) == ["0.conv1.conv", "0.conv2.conv", "1.conv1.conv", "1.conv2.conv", "3.conv2"]
    assert isinstance(fused[0], fx.GraphModule) and type(fused[0]).__name__ == "Residual"
    assert isinstance(fused[2], SecondUse) and isinstance(fused[2].conv, FusedConv2d)  # reordered only
    assert not fused[2].conv.residual and isinstance(fused[2].conv.act, nn.Identity)
    assert isinstance(fused[3].relu, nn.ReLU) and isinstance(fused[3].conv2.act, nn.Identity)
    assert fused[0].conv2.conv.residual and isinstance(fused[0].conv2.conv.act, nn.ReLU)
    assert isinstance(fused[0].conv1.act, nn.Identity) and isinstance(fused[0].conv1.conv.act, nn.ReLU)
    assert fused.state_dict().keys() == keys
    close(run(fused, x), expected)
    close(run(fused, x.contiguous(memory_format=torch.channels_last)), expected)


def test_modules_registered_twice_and_the_root_forward_are_left_alone():
    conv = nn.Conv2d(8, 8, 3, padding=1)
    model = nn.Sequential(OrderedDict(a=nn.Sequential(conv, nn.ReLU()), b=nn.Sequential(conv, nn.ReLU())))
    assert fuse_convolutions(model) == [] and model.a[0] is conv and isinstance(model.a[1], nn.ReLU)
    block = Residual()
    fold_batchnorms(block)
    assert fuse_convolutions(block) == ["conv1.conv"] and type(block) is Residual  # its own add stays
    assert isinstance(block.conv2.conv, FusedConv2d) and not block.conv2.conv.residual


def test_resnet_features_and_torch_compile_run_on_the_fused_model():
    torch.manual_seed(0)
    model = randomise_batchnorm(mhub.create("resnet18", num_classes=10)).eval()
    fused = mhub.fuse(model)
    folded = copy.deepcopy(model)
    fold_batchnorms(folded)
    merged = fuse_convolutions(folded)
    assert sum(name.endswith("conv2.conv") for name in merged) == 8  # every BasicBlock's addition
    x = torch.randn(1, 3, 64, 64)
    expected = run(model, x)
    close(run(fused, x), expected)
    features = mhub.features(model)
    close(run(mhub.fuse(features), x)[-1], run(features, x)[-1])
    compiled = torch.compile(fused, backend="eager")  # dynamo traces the op-by-op path
    close(run(compiled, x), expected)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # torch's flags() notes its Intel GPU TF32
def test_with_onednn_switched_off_it_runs_op_by_op():
    conv = make_conv(CONVS[0])
    fused = FusedConv2d(copy.deepcopy(conv), nn.ReLU())
    x = torch.randn(1, 6, 10, 10)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        close(fused(x), reference(conv, nn.ReLU(), x))
    assert fused._packed is None
