"""The ViT family against torchvision and timm: parameter counts, converted outputs, position-embedding
resampling, attention on scaled_dot_product_attention, the three interface levels.

Giants (ViT-L, ViT-H) are compared on layouts (meta device) and numerically on two blocks of their real width.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import mhub
from conftest import count, serve_locally, upstream_facts
from family_checks import assert_parity, assert_same_layout, on_meta, randomise
from parity import assert_outputs_close
from mhub.layers import ImageSizeError
from mhub_vit import configs
from mhub_vit.convert import from_timm, from_torchvision
from mhub_vit.model import ViT, ViTConfigError, vit

torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

TORCHVISION = [name for name, row in configs.MODELS.items() if row[3] == "torchvision"]
TIMM_ONLY = [name for name, row in configs.MODELS.items() if row[3] == "timm"]
TIMM_NAME = {ours: theirs for theirs, ours in configs.TIMM_NAMES.items() if theirs.endswith("_224")}
GIANTS = {"vit_l_16", "vit_l_32", "vit_h_14"}  # compared on layouts and on two blocks
SLOW_TOKENS = {"vit_b_8"}  # 785 tokens: two blocks are enough


def build(name: str, **kwargs):
    size, patch_size, *_ = configs.MODELS[name]
    return vit(size, patch_size, **kwargs)


def meta(name: str, **kwargs):
    """Ours on the meta device: the checkpoint under test supplies every value."""
    return on_meta(build, name, **kwargs)


def x_for(size: int = 224) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))


# -- parameter counts ------------------------------------------------------------------------------
def test_every_architecture_has_its_counted_parameters():
    for name, row in configs.MODELS.items():
        assert count(on_meta(build, name)) == row[2], name


def torchvision_facts() -> list[dict]:
    return [f for f in upstream_facts() if f["source"] == "torchvision" and f["model"] in configs.MODELS]


@pytest.mark.parametrize("fact", torchvision_facts(), ids=lambda f: f"{f['model']}.{f['tag']}")
def test_parameters_equal_torchvision_published_num_params(fact):
    # torchvision builds each weight set at its min_size (SWAG end-to-end sets at 384, 512 or 518 px)
    size = fact["min_size"][0]
    assert count(on_meta(build, fact["model"], img_size=size)) == fact["num_params"]
    if size == 224:
        assert configs.MODELS[fact["model"]][2] == fact["num_params"]


@pytest.mark.parametrize("name", TIMM_ONLY)
def test_parameters_equal_timm(name):
    assert configs.MODELS[name][2] == count(on_meta(timm.create_model, TIMM_NAME[name]))


# -- outputs after conversion ----------------------------------------------------------------------
def _torchvision_two_blocks(name: str, image_size: int = 224):
    """torchvision's architecture of ``name`` (dimensions read from its own builder) with two encoder blocks, at
    ``image_size``."""
    full = on_meta(getattr(torchvision.models, name))
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size, full.patch_size, 2, full.encoder.layers[0].num_heads, full.hidden_dim,
                             full.mlp_dim)


@pytest.mark.parametrize("name", TORCHVISION)
def test_output_parity_with_torchvision(name):
    torch.manual_seed(0)
    if name in GIANTS:
        assert_same_layout(on_meta(getattr(torchvision.models, name)), on_meta(build, name), from_torchvision)
        assert_parity(_torchvision_two_blocks(name), meta(name, depth=2), from_torchvision, x_for())
    else:
        assert_parity(getattr(torchvision.models, name)(), meta(name), from_torchvision, x_for())


@pytest.mark.parametrize("name", ["vit_b_16", "vit_l_16"])
def test_swag_end_to_end_weight_sets_match_torchvision_at_their_own_size(name):
    """The SWAG end-to-end sets (trained at 384/512/518 px) build at their model_args img_size: two blocks of the
    real width against torchvision's VisionTransformer at that image_size, on inputs of the weight set's crop."""
    spec = mhub.get_registry().weights[f"{name}.tv_swag_e2e_in1k"]
    size = spec.model_args["img_size"]
    assert size == spec.preprocess["crop"] > 224
    torch.manual_seed(0)
    assert_parity(_torchvision_two_blocks(name, size), meta(name, img_size=size, depth=2), from_torchvision,
                  x_for(size))


@pytest.mark.parametrize("name", TIMM_ONLY)
def test_output_parity_with_timm(name):
    # timm's layout is one map for every size; ViT-B/16 in timm's layout is the 384 px test below
    torch.manual_seed(0)
    depth = {"depth": 2} if name in SLOW_TOKENS else {}
    assert_parity(timm.create_model(TIMM_NAME[name], **depth), meta(name, **depth), from_timm, x_for())


def test_timm_layout_of_the_384px_large_model():
    torch.manual_seed(0)
    assert_same_layout(on_meta(timm.create_model, "vit_large_patch32_384"), on_meta(build, "vit_l_32", img_size=384),
                       from_timm)
    assert_parity(timm.create_model("vit_large_patch32_384", depth=2), meta("vit_l_32", img_size=384, depth=2),
                  from_timm, x_for(384))


def test_layer_scale_and_pre_logits_in_timm_checkpoints():
    torch.manual_seed(0)
    reference = timm.create_model("vit_tiny_patch16_224", init_values=1e-5, depth=2, img_size=32)
    ours = vit("tiny", 16, init_values=1e-5, depth=2, img_size=32)
    state = {**reference.state_dict(), "pre_logits.fc.weight": torch.zeros(1)}  # old in21k files; timm drops it
    assert_parity(reference, ours, lambda _: from_timm(state), x_for(32))
    assert "backbone.blocks.1.ls2.gamma" in ours.state_dict()


def test_converters_name_the_keys_they_cannot_place():
    state = on_meta(timm.create_model, "vit_tiny_patch16_224", global_pool="avg").state_dict()
    with pytest.raises(mhub.ConversionError, match=r"have no place in mhub's layout: fc_norm\.weight, fc_norm\.bias"):
        from_timm(state)
    with pytest.raises(mhub.ConversionError, match="torchvision ViT checkpoint have no place.*cls_token"):
        from_torchvision(state)


def test_old_torchvision_mlp_names_load():
    # each tensor under an old name lands where its current name puts it: linear_1 is fc1, linear_2 is fc2
    state = on_meta(torchvision.models.vit_b_32).state_dict()
    renamed = {k.replace("mlp.0.", "mlp.linear_1.").replace("mlp.3.", "mlp.linear_2."): v for k, v in state.items()}
    assert sum(".linear_1." in k or ".linear_2." in k for k in renamed) == 4 * 12
    old, current = from_torchvision(renamed), from_torchvision(state)
    assert old.keys() == current.keys()
    assert [k for k in current if old[k] is not current[k]] == []  # the same tensor object under every key


# -- other input sizes -----------------------------------------------------------------------------
def test_384px_from_a_224px_checkpoint_equals_timm_resampling(tmp_path, monkeypatch):
    """mhub.create(..., img_size=384) of a 224 px timm checkpoint equals timm's vit_base_patch16_224 created at
    img_size=384 with the same weights (timm's checkpoint filter resamples the position embedding). Two blocks
    deep: the resampling happens before the first block."""
    torch.manual_seed(0)
    checkpoint = randomise(timm.create_model("vit_base_patch16_224", depth=2)).state_dict()
    reference = timm.create_model("vit_base_patch16_224", img_size=384, depth=2)
    from timm.models.vision_transformer import checkpoint_filter_fn

    reference.load_state_dict(checkpoint_filter_fn(checkpoint, reference), strict=True)
    serve_locally(tmp_path, monkeypatch, checkpoint, model="vit_b_16", converter="timm.vit")
    ours = mhub.create("vit_b_16.local_test", pretrained=True, img_size=384, depth=2).eval()
    assert ours.backbone.embed.pos_embed.shape == (1, 577, 768)
    with torch.inference_mode():
        expected, actual = reference.eval()(x_for(384)), ours(x_for(384))
    assert float(expected.abs().max()) > 0.1
    assert_outputs_close(actual, expected)


def test_weights_trained_at_another_size_build_at_it(tmp_path, monkeypatch):
    """A weight set's model_args (img_size) reach the builder, so its own size needs no resampling."""
    torch.manual_seed(0)
    reference = randomise(timm.create_model("vit_tiny_patch16_224", img_size=64))
    serve_locally(tmp_path, monkeypatch, reference.state_dict(), model="vit_ti_16", converter="timm.vit",
                  model_args={"img_size": 64})
    ours = mhub.create("vit_ti_16.local_test", pretrained=True).eval()
    assert ours.backbone.patch_embed.img_size == (64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x_for(64)), reference(x_for(64)), rtol=0, atol=1e-5)


def test_inputs_of_another_size_are_refused():
    model = vit("tiny", 16, img_size=32, depth=1)
    with pytest.raises(ImageSizeError, match="build it with img_size"):
        model(torch.randn(1, 3, 48, 48))


# -- attention -------------------------------------------------------------------------------------
def test_attention_runs_on_scaled_dot_product_attention(monkeypatch):
    calls = []
    original = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    model = vit("small", 16, img_size=32, depth=3).eval()
    with torch.inference_mode():
        model(torch.randn(2, 3, 32, 32))
    assert calls == [(2, 6, 5, 64)] * 3  # (batch, heads, 1 + 4 tokens, head_dim) in every block


# -- structure and interface levels ----------------------------------------------------------------
def test_backbone_returns_normalised_tokens_and_the_classifier_pools_the_class_token():
    torch.manual_seed(0)
    reference = randomise(timm.create_model("vit_small_patch16_224", img_size=32, depth=2))
    model = vit("small", 16, img_size=32, depth=2).eval()
    model.load_state_dict(from_timm(reference.state_dict()))
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        tokens = mhub.backbone(model)(x)
        torch.testing.assert_close(tokens, reference.forward_features(x), rtol=0, atol=1e-5)
        torch.testing.assert_close(mhub.classifier(model)(tokens), model(x))
        headless = vit("small", 16, img_size=32, depth=2, num_classes=0).eval()
        headless.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")})
        torch.testing.assert_close(headless(x), reference.forward_head(reference.forward_features(x), pre_logits=True),
                                   rtol=0, atol=1e-5)
    assert [name for name, _ in model.backbone.named_children()] == ["patch_embed", "embed", "blocks", "norm"]
    assert len(model.backbone.blocks) == 2


def test_stochastic_depth_grows_linearly_to_the_last_block():
    rates = [block.drop_path.p for block in vit("tiny", 16, img_size=32, drop_path_rate=0.1).backbone.blocks[1:]]
    assert rates == pytest.approx([0.1 * i / 11 for i in range(1, 12)])


def test_high_level_constructor():
    sizes = "'tiny', 'small', 'base', 'large', 'huge'"
    with pytest.raises(ViTConfigError, match=f"ViT has no default configuration; give a size: {sizes}$"):
        ViT()
    with pytest.raises(ViTConfigError, match=f"ViT has no default configuration; give a size: {sizes}$"):
        ViT(patch_size=16)
    with pytest.raises(ViTConfigError, match=r"needs a patch_size; registered: 16, 32"):
        ViT("small")
    with pytest.raises(ViTConfigError, match=f"ViT has no configuration 'giant'; valid: {sizes}$"):
        ViT("giant", patch_size=14)
    with pytest.raises(ViTConfigError, match="ViT has no configuration 'giant'"):
        ViT("giant", patch_size=14, pretrained=True)
    with pytest.raises(ViTConfigError, match="unknown ViT size 'giant'; valid: tiny, small, base, large, huge"):
        vit("giant", 14)
    with torch.device("meta"):
        assert count(ViT("base", patch_size=16)) == 86567656
        assert ViT("base", patch_size=16, img_size=384).backbone.embed.pos_embed.shape[1] == 577
        assert ViT("tiny", patch_size=8, num_classes=10, in_chans=1).backbone.patch_embed.proj.in_channels == 1
    with pytest.raises(ViTConfigError, match="no pretrained ViT tiny with patch_size 8"):
        ViT("tiny", patch_size=8, pretrained=True)


def test_timm_names_are_aliases():
    registry = mhub.get_registry()
    assert registry.resolve("vit_base_patch16_224")[0].name == "vit_b_16"
    arch, weights = registry.resolve("vit_large_patch32_384")
    assert (arch.name, weights.tag, dict(weights.model_args)) == ("vit_l_32", "orig_in21k_ft_in1k_384",
                                                                  {"img_size": 384})
    with torch.device("meta"):
        assert mhub.create("vit_large_patch32_384").backbone.patch_embed.img_size == (384, 384)
        assert mhub.create("vit_large_patch32_224").backbone.patch_embed.img_size == (224, 224)
    assert "vit_base_patch16_384" not in registry.aliases  # its 384 px weights have no known hash: not listed
