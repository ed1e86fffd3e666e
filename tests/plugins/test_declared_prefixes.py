"""The state-dict prefixes every architecture registers (``first_conv``, ``classifier``, ``aux_classifiers``) name
layers its model has, with the input channels and classes it was built for; and the UNets' ``first_conv``, which
the UNet plugin writes down a second time, follows from their backbones' registrations.

Pretrained loading adapts ``in_chans`` and ``num_classes`` through these prefixes, so a stale one only shows when
someone loads weights with another channel or class count. Every model is built on the meta device.
"""

from __future__ import annotations

import pytest
from conftest import on_meta

import mhub
from mhub._factory import build
from mhub_unet import configs as unet_configs

ARCHS = sorted(mhub.get_registry().archs)
UNET_ENCODER = "backbone.encoder."  # where a UNet keeps its backbone's feature extractor (mhub_unet.model)


def test_every_family_is_checked():
    assert {"resnet", "mobilenet", "efficientnet", "classic", "inception", "vit", "convnext", "convmixer", "mlpmixer",
            "resmlp", "gmlp", "unet"} <= {mhub.get_registry().arch(name).family for name in ARCHS}


@pytest.mark.parametrize("name", ARCHS)
def test_first_conv_classifier_and_aux_classifiers_name_layers_of_the_model(name):
    arch = mhub.get_registry().arch(name)
    assert arch.first_conv and arch.classifier, name
    aux = {"aux_logits": True} if arch.aux_classifiers else {}
    with on_meta():
        state = build(arch, num_classes=7, in_chans=2, **aux).state_dict()
    assert state[f"{arch.first_conv}.weight"].shape[1] == 2
    assert state[f"{arch.classifier}.weight"].shape[0] == 7
    for prefix in arch.aux_classifiers:
        assert any(key.startswith(f"{prefix}.") for key in state), prefix


def test_unet_first_conv_is_its_backbone_s_inside_the_encoder():
    registry = mhub.get_registry()
    for unet, (backbone, *_) in unet_configs.UNETS.items():
        assert registry.arch(unet).first_conv == UNET_ENCODER + registry.arch(backbone).first_conv, unet
