"""ConvNeXt and ConvMixer against torchvision and timm: parameter counts, converted outputs, options, levels.

The large models (ConvNeXt small/base/large/xlarge, ConvMixers) are compared on layouts (meta device) and
numerically at their real widths with fewer blocks, built from the dimensions upstream's own builders use.
"""

from __future__ import annotations

import pytest
import torch

import mhub
from conftest import count, published_torchvision_params
from family_checks import assert_parity, assert_same_layout, on_meta, randomise
from mhub_convnext import configs
from mhub_convnext.convert import convmixer_from_timm, convnext_from_timm, convnext_from_torchvision
from mhub_convnext.model import ConvMixer, ConvNeXt, ConvNeXtConfigError, convmixer, convnext

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

TORCHVISION = [name for name, row in configs.CONVNEXT.items() if row[2] == "torchvision"]
TIMM_ONLY = [name for name, row in configs.CONVNEXT.items() if row[2] == "timm"]
SMALL = {"convnext_atto", "convnext_femto", "convnext_pico", "convnext_nano", "convnext_tiny"}  # run at full depth


def x_for(size: int = 224) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))


def ours_meta(name: str, **kwargs):
    if name in configs.CONVMIXER:
        return on_meta(convmixer, **{**configs.convmixer_defaults(name), **kwargs})
    return on_meta(convnext, configs.CONVNEXT[name][0], **kwargs)


# -- parameter counts ------------------------------------------------------------------------------
def test_every_architecture_has_its_counted_parameters():
    for name, row in configs.CONVNEXT.items():
        assert count(ours_meta(name)) == row[1], name
    for name, row in configs.CONVMIXER.items():
        assert count(ours_meta(name)) == row[-1], name


@pytest.mark.parametrize("name", TORCHVISION)
def test_parameters_equal_torchvision_published_num_params(name):
    assert configs.CONVNEXT[name][1] == published_torchvision_params()[name]


@pytest.mark.parametrize("name", TIMM_ONLY + list(configs.CONVMIXER))
def test_parameters_equal_timm(name):
    row = configs.CONVMIXER.get(name) or configs.CONVNEXT[name]
    assert count(on_meta(timm.create_model, name)) == (row[-1] if name in configs.CONVMIXER else row[1])


# -- outputs after conversion ----------------------------------------------------------------------
def _stage_dims(full) -> list[int]:
    """Channels per stage of a torchvision ConvNeXt, read from its blocks."""
    return [stage[0].block[0].in_channels for stage in full.features[1::2]]


def _torchvision_shallow(name: str):
    """torchvision's ConvNeXt of ``name`` (widths read from its builder) with one block per stage."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt as TorchvisionConvNeXt

    dims = _stage_dims(on_meta(getattr(torchvision.models, name)))
    settings = [CNBlockConfig(d, nxt, 1) for d, nxt in zip(dims, dims[1:] + [None])]
    return TorchvisionConvNeXt(settings), dims


@pytest.mark.parametrize("name", TORCHVISION)
def test_convnext_output_parity_with_torchvision(name):
    torch.manual_seed(0)
    if name in SMALL:
        assert_parity(getattr(torchvision.models, name)(), ours_meta(name), convnext_from_torchvision, x_for())
        return
    assert_same_layout(on_meta(getattr(torchvision.models, name)), ours_meta(name), convnext_from_torchvision)
    reference, dims = _torchvision_shallow(name)
    assert_parity(reference, on_meta(convnext, depths=(1, 1, 1, 1), dims=dims), convnext_from_torchvision, x_for())


@pytest.mark.parametrize("name", TIMM_ONLY + ["convnext_tiny"])
def test_convnext_output_parity_with_timm(name):
    # atto ... nano use 1x1-convolution MLPs and channels-first norms in timm; tiny (full depth against
    # torchvision above) and xlarge linear ones
    torch.manual_seed(0)
    if name in TIMM_ONLY and name in SMALL:
        assert_parity(timm.create_model(name), ours_meta(name), convnext_from_timm, x_for())
        return
    assert_same_layout(on_meta(timm.create_model, name), ours_meta(name), convnext_from_timm)
    assert_parity(timm.create_model(name, depths=(1, 1, 1, 1)), ours_meta(name, depths=(1, 1, 1, 1)),
                  convnext_from_timm, x_for())


def _timm_convmixer_shallow(name: str):
    """timm's ConvMixer of ``name`` (width, kernel, patch and activation read from its builder), two blocks."""
    from timm.models.convmixer import ConvMixer as TimmConvMixer

    full = on_meta(timm.create_model, name)
    return TimmConvMixer(full.num_features, 2, kernel_size=full.blocks[0][0].fn[0].kernel_size[0],
                         patch_size=full.stem[0].kernel_size[0], act_layer=type(full.stem[1]))


@pytest.mark.parametrize("name", list(configs.CONVMIXER))
def test_convmixer_output_parity_with_timm(name):
    torch.manual_seed(0)
    assert_same_layout(on_meta(timm.create_model, name), ours_meta(name), convmixer_from_timm)
    assert_parity(_timm_convmixer_shallow(name), ours_meta(name, depth=2), convmixer_from_timm, x_for())


def test_converters_name_the_keys_they_cannot_place():
    state = on_meta(timm.create_model, "convnextv2_atto").state_dict()  # ConvNeXt-V2: global response norm
    with pytest.raises(mhub.ConversionError, match=r"timm ConvNeXt checkpoint have no place.*mlp\.grn\."):
        convnext_from_timm(state)
    with pytest.raises(mhub.ConversionError, match="torchvision ConvNeXt checkpoint have no place.*stem"):
        convnext_from_torchvision(state)


def test_validate_maps_our_weights_back_to_upstream_layouts_exactly(registry):
    """The reshaping maps (layer scale (C,1,1) -> (C,), 1x1 convolution -> linear) still invert exactly, so
    mhub validate --reference torchvision:/timm: works for ConvNeXt."""
    from mhub_tools.validate import upstream_state

    torch.manual_seed(0)
    for library, reference, converter in [
            ("torchvision", _torchvision_shallow("convnext_tiny")[0], convnext_from_torchvision),
            ("timm", timm.create_model("convnext_atto"), convnext_from_timm)]:
        original = randomise(reference).state_dict()
        back = upstream_state(registry.arch("convnext_tiny"), library, original, converter(original))
        assert list(back) == list(original)
        assert all(torch.equal(back[k], original[k]) for k in original), library


# -- options, structure and interface levels -------------------------------------------------------
def test_stochastic_depth_follows_torchvision_and_layer_scale_can_be_off():
    theirs = [m.p for m in on_meta(torchvision.models.convnext_tiny, stochastic_depth_prob=0.1).modules()
              if type(m).__name__ == "StochasticDepth"]
    ours = [block.drop_path.p if hasattr(block.drop_path, "p") else 0.0
            for stage in ours_meta("convnext_tiny", drop_path_rate=0.1).backbone.stages for block in stage.blocks]
    assert ours == pytest.approx(theirs)
    plain = ours_meta("convnext_atto", layer_scale=None)
    assert count(plain) == configs.CONVNEXT["convnext_atto"][1] - (2 * 40 + 2 * 80 + 6 * 160 + 2 * 320)  # gammas


def test_backbone_is_the_stride_32_map_and_the_classifier_pools_then_normalises():
    torch.manual_seed(0)
    reference = randomise(timm.create_model("convnext_atto"))
    model = ours_meta("convnext_atto").eval()
    model.load_state_dict(convnext_from_timm(reference.state_dict()), assign=True)
    x = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        features = mhub.backbone(model)(x)
        assert features.shape == (2, 320, 2, 3)
        torch.testing.assert_close(features, reference.forward_features(x), rtol=0, atol=1e-5)
        torch.testing.assert_close(mhub.classifier(model)(features), model(x))
        torch.testing.assert_close(model.classifier[:-1](features), reference.forward_head(features, pre_logits=True),
                                   rtol=0, atol=1e-5)
    assert list(dict(model.classifier.named_children())) == ["pool", "flatten", "norm", "fc"]
    assert [list(dict(stage.named_children())) for stage in model.backbone.stages][:2] == [
        ["blocks"], ["downsample", "blocks"]]


def test_mid_level_refuses_unknown_sizes_and_uneven_or_empty_stages():
    with pytest.raises(ConvNeXtConfigError, match="unknown ConvNeXt size 'huge'"):
        convnext("huge")
    for depths, dims in [((2, 2), (8,)), ((2, 0), (8, 16)), (None, (8, 16))]:
        with pytest.raises(ConvNeXtConfigError, match="needs a size, or depths"):
            convnext(depths=depths, dims=dims)


def test_high_level_constructors():
    with pytest.raises(ConvNeXtConfigError, match="no default configuration; give a size: 'atto', 'femto'"):
        ConvNeXt()
    with pytest.raises(ConvNeXtConfigError, match="ConvNeXt has no configuration 'huge'"):
        ConvNeXt("huge")
    with pytest.raises(ConvNeXtConfigError, match=r"give dim and depth, e.g. \(768, 32\), \(1024, 20\), \(1536, 20\)"):
        ConvMixer()
    with torch.device("meta"):
        assert count(ConvNeXt("tiny")) == 28589128
        assert count(ConvMixer(768, 32)) == 21110248
        assert count(ConvMixer(1024, 20)) == 24383464
        assert ConvNeXt("atto", num_classes=10, in_chans=1).backbone.stem.conv.in_channels == 1
        assert ConvMixer(256, 8).backbone.blocks[0].dw.conv.kernel_size == (9, 9)  # not registered: built
    with pytest.raises(ConvNeXtConfigError, match=r"no pretrained ConvMixer\(256, 8\)"):
        ConvMixer(256, 8, pretrained=True)
