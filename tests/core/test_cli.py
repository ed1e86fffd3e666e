"""The CLI: catalog commands never import torch, errors are one line, `python -m mhub` works."""

import json
import subprocess
import sys

import pytest

from conftest import REPO, run_cli

import mhub

# Runs the CLI in-process and reports which heavy modules it imported.
PROBE = """
import runpy, sys
sys.argv = ["mhub", *{args!r}]
try:
    runpy.run_module("mhub", run_name="__main__")
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("torch", "requests", "huggingface_hub", "safetensors", "numpy", "fsspec") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["list"], ["list", "--pretrained", "--json"], ["info", "resnet50"],
                                  ["plugins"], ["--help"], ["eval", "--help"], ["bench", "--help"],
                                  ["--version"]])
def test_catalog_commands_never_import_heavy_modules(args):
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True)
    heavy = [l for l in result.stderr.splitlines() if l.startswith("HEAVY=")]
    assert heavy == ["HEAVY="], result.stderr[-2000:]


def test_version_and_python_m():
    assert run_cli("--version").stdout.strip() == f"mhub, version {mhub.__version__}"
    script = subprocess.run([str(REPO / ".venv" / "bin" / "mhub"), "--help"], capture_output=True, text=True)
    if script.returncode == 0:  # the console script exists when installed into .venv
        assert "list" in script.stdout and "pull" in script.stdout


def test_unknown_model_is_one_clear_line_and_nonzero_exit():
    result = run_cli("info", "resnet5O", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown model 'resnet5O'" in lines[0], result.stderr


def test_info_json_shows_hash_strength_and_sources():
    data = json.loads(run_cli("info", "resnet50", "--json").stdout)
    assert data["family"] == "resnet" and data["num_params"] == 25557032
    strengths = {w["tag"]: w["hash"] for w in data["weights"]}
    assert strengths["tv_in1k"] == "sha256"
    assert all(w["sources"] for w in data["weights"])
    text = run_cli("info", "resnet50").stdout
    assert "resnet50.tv2_in1k (default)" in text and "sha256 " in text


def test_info_shows_everything_registered(registry):
    """Architecture description and prefixes; each weight set's preprocessing, classes, test size, origin."""
    data = json.loads(run_cli("info", "resnet50", "--json").stdout)
    arch = registry.arch("resnet50")
    assert (data["description"], data["first_conv"], data["classifier"]) == \
        (arch.description, arch.first_conv, arch.classifier)
    by_tag = {w["tag"]: w for w in data["weights"]}
    for spec in registry.tags("resnet50"):
        shown = by_tag[spec.tag]
        assert shown["preprocess"] == dict(spec.preprocess) and shown["num_classes"] == spec.num_classes
        assert shown["origin"] == spec.origin and shown.get("description") == spec.description
    assert by_tag["a1_in1k"]["preprocess"]["test_size"] == 288
    text = run_cli("info", "resnet50.a1_in1k").stdout
    for words in ("first conv  backbone.stem.0.conv", "classifier  classifier.fc", "crop_pct=0.95",
                  "test_size=288", "classes     1000", "description timm resnet50.a1_in1k", "manifest "):
        assert words in text, (words, text)


def test_list_json_matches_python_api():
    assert json.loads(run_cli("list", "--json").stdout) == mhub.list_models()
    assert json.loads(run_cli("list", "resnext*", "--pretrained", "--json").stdout) == \
        mhub.list_models("resnext*", pretrained=True)


@pytest.mark.parametrize("args, status, words", [
    (["frob"], 2, "No such command 'frob'"),
    (["list", "--bogus"], 2, "No such option"),
    (["list", "--family", "resnt"], 1, "unknown family 'resnt'; did you mean 'resnet'?"),
    (["pull", "mnasnet0_5"], 1, "weights exist for the variant(s) mnasnet0_5_v1stem.tv_in1k"),
])
def test_every_error_is_one_line(args, status, words):
    result = run_cli(*args, check=False)
    assert result.returncode == status
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ") and words in result.stderr, \
        result.stderr


def test_info_works_for_every_alias(registry):
    """timm users find the architectures by their timm names, with or without weights registered."""
    from click.testing import CliRunner

    from mhub.cli import cli

    assert registry.aliases
    for alias, (target, tag) in registry.aliases.items():
        result = CliRunner().invoke(cli, ["info", alias, "--json"])
        assert result.exit_code == 0, (alias, result.output)
        data = json.loads(result.output)
        assert data["name"] == target and alias in data["aliases"]
        if tag is not None:
            assert [w["tag"] for w in data["weights"]] == [tag]


def test_headless_weights_cannot_classify_and_nothing_is_pulled(tmp_path, isolated_home):
    from PIL import Image

    image = tmp_path / "grey.png"
    Image.new("RGB", (40, 30), (90, 90, 90)).save(image)
    result = run_cli("predict", "vgg16.tv_features_in1k", str(image), check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "has no usable classifier" in lines[0], result.stderr
    assert not (isolated_home / "blobs").exists()
