"""MLP-Mixer, ResMLP and gMLP as data (torch-free: ``plugin.py`` lists them without building anything).

All three share one skeleton (patch embedding, a stack of token-mixing / channel-mixing blocks, a final norm,
mean over tokens, linear head); they differ in the block. Names and parameter counts are timm's (checked
against timm's models in the tests).
"""

from __future__ import annotations

PAPERS = {
    "mixer": "Tolstikhin et al., MLP-Mixer: An all-MLP Architecture for Vision, NeurIPS 2021 (arXiv:2105.01601)",
    "resmlp": "Touvron et al., ResMLP: Feedforward networks for image classification with data-efficient "
              "training, TPAMI 2022 (arXiv:2105.03404)",
    "gmlp": "Liu et al., Pay Attention to MLPs, NeurIPS 2021 (arXiv:2105.08050)",
}
FAMILIES = {"mixer": "mlpmixer", "resmlp": "resmlp", "gmlp": "gmlp"}  # block -> family name in the registry

# name: (block, patch_size, num_blocks, embed_dim, other builder defaults, parameters at 1000 classes)
MODELS: dict[str, tuple[str, int, int, int, dict, int]] = {
    "mixer_s32_224": ("mixer", 32, 8, 512, {}, 19104624),
    "mixer_s16_224": ("mixer", 16, 8, 512, {}, 18528264),
    "mixer_b32_224": ("mixer", 32, 12, 768, {}, 60293428),
    "mixer_b16_224": ("mixer", 16, 12, 768, {}, 59880472),
    "mixer_l32_224": ("mixer", 32, 24, 1024, {}, 206939264),
    "mixer_l16_224": ("mixer", 16, 24, 1024, {}, 208196168),
    "resmlp_12_224": ("resmlp", 16, 12, 384, {"init_values": 1e-4}, 15350872),
    "resmlp_24_224": ("resmlp", 16, 24, 384, {"init_values": 1e-5}, 30020680),
    "resmlp_36_224": ("resmlp", 16, 36, 384, {"init_values": 1e-6}, 44690488),
    "resmlp_big_24_224": ("resmlp", 8, 24, 768, {"init_values": 1e-6}, 129138280),
    "gmlp_ti16_224": ("gmlp", 16, 30, 128, {}, 5867328),
    "gmlp_s16_224": ("gmlp", 16, 30, 256, {}, 19422656),
    "gmlp_b16_224": ("gmlp", 16, 30, 512, {}, 73075392),
}

FIRST_CONV = "backbone.stem.proj"
CLASSIFIER = "classifier.fc"
CONVERTER = "mhub_mlp.convert:from_timm"  # timm keeps all three in one layout (timm/models/mlp_mixer.py)


def defaults(name: str) -> dict:
    """The :func:`~mhub_mlp.model.mlp_mixer` arguments of a registered name."""
    block, patch_size, num_blocks, embed_dim, options, _ = MODELS[name]
    return dict(block=block, patch_size=patch_size, num_blocks=num_blocks, embed_dim=embed_dim, **options)
