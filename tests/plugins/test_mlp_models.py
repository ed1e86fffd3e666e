"""MLP-Mixer, ResMLP and gMLP against timm: parameter counts, converted outputs, options, levels.

The larger models are compared on layouts (meta device) and numerically on two blocks of timm's own
architecture (built on the meta device, cut to two blocks and given random values).
"""

from __future__ import annotations

import pytest
import torch

import mhub
from conftest import count
from family_checks import assert_parity, assert_same_layout, materialise, on_meta, randomise
from mhub_mlp import configs
from mhub_mlp.convert import from_timm
from mhub_mlp.model import MLPConfigError, MLPMixer, ResMLP, gMLP, mlp_mixer

timm = pytest.importorskip("timm")

FULL_DEPTH = {"mixer_s32_224", "mixer_s16_224", "resmlp_12_224", "gmlp_ti16_224"}  # cheap enough to run whole


def ours_meta(name: str, **kwargs):
    return on_meta(mlp_mixer, **{**configs.defaults(name), **kwargs})


def x_for() -> torch.Tensor:
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def test_every_architecture_has_its_counted_parameters():
    for name, row in configs.MODELS.items():
        assert count(ours_meta(name)) == row[-1], name


@pytest.mark.parametrize("name", list(configs.MODELS))
def test_parameters_equal_timm(name):
    assert configs.MODELS[name][-1] == count(on_meta(timm.create_model, name))


@pytest.mark.parametrize("name", list(configs.MODELS))
def test_output_parity_with_timm(name):
    torch.manual_seed(0)
    if name in FULL_DEPTH:
        assert_parity(timm.create_model(name), ours_meta(name), from_timm, x_for())
        return
    reference = on_meta(timm.create_model, name)
    assert_same_layout(reference, ours_meta(name), from_timm)
    reference.blocks = reference.blocks[:2]
    assert_parity(materialise(reference), ours_meta(name, num_blocks=2), from_timm, x_for())


def test_converter_names_the_keys_it_cannot_place():
    # Facebook's original ResMLP layout, which timm renames on load
    state = {"patch_embed.proj.weight": torch.zeros(1), "blocks.0.gamma_1": torch.zeros(1),
             "blocks.0.attn.weight": torch.zeros(1)}
    with pytest.raises(mhub.ConversionError, match="3 key.*no place.*patch_embed.proj.weight, blocks.0.gamma_1"):
        from_timm(state)


def test_backbone_returns_normalised_tokens_and_the_classifier_averages_them():
    torch.manual_seed(0)
    reference = randomise(timm.create_model("gmlp_ti16_224", img_size=64))
    model = on_meta(mlp_mixer, "gmlp", 16, 3, 128, img_size=64).eval()
    reference.blocks = reference.blocks[:3]
    model.load_state_dict(from_timm(reference.state_dict()), assign=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        tokens = mhub.backbone(model)(x)
        torch.testing.assert_close(tokens, reference.forward_features(x), rtol=0, atol=1e-5)
        torch.testing.assert_close(mhub.classifier(model)(tokens), model(x))
        torch.testing.assert_close(model.classifier[:-1](tokens), reference.forward_head(tokens, pre_logits=True))


def test_options():
    mixer = ours_meta("mixer_b16_224", drop_path_rate=0.1)
    assert {block.drop_path.p for block in mixer.backbone.blocks} == {0.1}  # timm: the same rate in every block
    resmlp = mlp_mixer("resmlp", 16, 2, 32, img_size=32, init_values=0.5)
    assert torch.equal(resmlp.backbone.blocks[1].ls2.gamma, torch.full((32,), 0.5))
    assert type(resmlp.backbone.norm).__name__ == "Affine"
    with pytest.raises(MLPConfigError, match="init_values is a ResMLP option"):
        mlp_mixer("gmlp", 16, 2, 32, init_values=0.1)
    with pytest.raises(MLPConfigError, match="unknown block 'conv'; valid: mixer, resmlp, gmlp"):
        mlp_mixer("conv", 16, 2, 32)


def test_high_level_constructors():
    with pytest.raises(MLPConfigError, match=r"MLPMixer has no default configuration; give \(size, patch_size\)"):
        MLPMixer()
    with pytest.raises(MLPConfigError, match=r"MLPMixer has no configuration \('base', 8\)"):
        MLPMixer("base", 8)
    with pytest.raises(MLPConfigError, match=r"ResMLP has no default configuration.*\(12, False\)"):
        ResMLP()
    with pytest.raises(MLPConfigError, match="gMLP has no default configuration; give a size: 'tiny', 'small'"):
        gMLP()
    with torch.device("meta"):
        assert count(MLPMixer("base", 16)) == 59880472
        assert count(ResMLP(12)) == 15350872
        assert count(ResMLP(24, big=True)) == 129138280
        assert count(gMLP("small")) == 19422656
        assert gMLP("tiny", num_classes=10, in_chans=1).classifier.fc.out_features == 10
