"""The mobilenet plugin as mhub sees it: torch-free registration, manifests, converters through the hub."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

import mhub
import mhub_registry
from conftest import REPO, serve_locally, upstream_facts
from parity import assert_outputs_close, own_size_input, randomise_model
from mhub_mobilenet import configs


def test_plugin_configs_converters_imaging_and_predict_import_without_torch():
    code = ("import sys, mhub_mobilenet.plugin, mhub_mobilenet.configs, mhub_mobilenet.convert, mhub.imaging, "
            "mhub.cli.predict; heavy = {'torch', 'PIL', 'requests', 'safetensors', 'huggingface_hub'} & "
            "set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_architecture_is_registered_with_its_table(registry):
    for name, (family, config, *_rest, num_params) in configs.ARCHS.items():
        arch = registry.arch(name)
        assert (arch.family, arch.num_params, arch.defaults["config"]) == (family, num_params, config)
        assert arch.builder == "mhub_mobilenet.model:irnet" and arch.first_conv == "backbone.stem.conv"
    assert {"torchvision.mobilenet", "torchvision.efficientnet", "timm.mobilenet", "timm.efficientnet",
            "efficientnet_pytorch.efficientnet"} <= set(registry.converters)


@pytest.mark.parametrize("family", ["mobilenet", "efficientnet"])
def test_manifests_are_what_the_generator_writes_and_all_load(family, registry, tmp_path):
    path = mhub_registry.manifest(family)
    output = tmp_path / f"{family}.toml"
    subprocess.run([sys.executable, str(REPO / "scripts" / "upstream_manifest.py"), family, "-o", str(output)],
                   check=True, capture_output=True)
    assert output.read_text() == path.read_text(), "regenerate with scripts/upstream_manifest.py"
    entries = tomllib.loads(path.read_text())["weights"]
    for entry in entries:
        name = f"{entry['model']}.{entry['tag']}"
        assert name in registry.weights, name
        assert entry["converter"] in registry.converters


def test_every_upstream_weight_set_with_a_known_hash_is_registered(registry):
    upstream = upstream_facts()
    rename = {"mnasnet_100": "mnasnet1_0", "mnasnet0_5": "mnasnet0_5_v1stem"}
    ours = {(w.model, w.tag) for w in registry.weights.values() if registry.archs[w.model].plugin == "mobilenet"}
    missing = []
    for item in upstream:
        if not any(key in item["model"] for key in ("mobilenet", "mnasnet", "efficientnet")):
            continue
        hashed = item["source"] == "torchvision" or bool(item.get("url_hash_fragment")) or bool(
            item.get("sha256") and item.get("sha256_revision"))
        if hashed and (rename.get(item["model"], item["model"]), item["tag"]) not in ours:
            missing.append(f"{item['model']}.{item['tag']}")
    assert missing == ["mobilenetv3_rw.rmsp_in1k"]  # needs a bias-free hidden layer; see the report


def test_cli_lists_and_describes_without_torch():
    from conftest import run_cli

    listed = run_cli("list", "--family", "efficientnet").stdout.split()
    assert {"efficientnet_b0", "efficientnet_v2_l", "efficientnet_lite4", "tf_efficientnet_b8"} <= set(listed)
    info = json.loads(run_cli("info", "mobilenet_v3_large", "--json").stdout)
    assert info["num_params"] == 5483032 and info["defaults"]["config"] == "mobilenet_v3_large"
    assert [w["tag"] for w in info["weights"]][0] == "tv2_in1k"  # torchvision's DEFAULT


def test_torchvision_checkpoint_loads_through_the_hub(tmp_path, monkeypatch):
    """A torchvision-layout pickle behind a file:// source is pulled, converted and loaded by mhub.create."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")

    reference = randomise_model(torchvision.models.mobilenet_v3_small())
    serve_locally(tmp_path, monkeypatch, reference.state_dict(), model="mobilenet_v3_small", tag="local_in1k",
                  converter="torchvision.mobilenet")

    model = mhub.create("mobilenet_v3_small.local_in1k", pretrained=True).eval()
    x = own_size_input("mobilenet_v3_small.local_in1k")
    with torch.inference_mode():
        assert_outputs_close(model(x), reference(x))
    with pytest.warns(UserWarning, match="newly initialised"):
        adapted = mhub.create("mobilenet_v3_small.local_in1k", pretrained=True, num_classes=5, in_chans=1)
    assert adapted.classifier.fc.out_features == 5 and adapted.backbone.stem.conv.in_channels == 1
