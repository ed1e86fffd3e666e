"""The example plugin, installed as a real distribution, used as its users and its author would.

Every hook is exercised; its weights come from a loopback server through its own ``tiny://`` scheme (with a
dropped connection resumed by the fetcher), are converted by its key map and validated against the reference
outputs it ships; the README's author steps, run literally, reproduce the shipped files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from loopback import Fault, LoopbackServer
from parity import assert_outputs_close

from mhub import plugins

EXAMPLE = REPO / "examples" / "mhub-example-plugin"
WEIGHTS = EXAMPLE / "weights" / "tinynet-demo.pth"
SHIPPED_REFERENCE = EXAMPLE / "mhub_example" / "references" / "tinynet.demo.safetensors"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """pip-install a clean copy of the example into a private target directory.

    Only the subprocesses of these tests put it on ``PYTHONPATH``: the virtual environment, and every other
    test, never see it. The copy keeps build leftovers of the source tree out of the wheel.
    """
    root = tmp_path_factory.mktemp("example")
    source, target = root / "src", root / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True)
    return target


def env_with(site: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")])), **extra}


def mhub(site: Path, *args: str, **extra: str):
    return run_cli(*args, env=env_with(site, **extra))


def test_every_hook_is_registered(site):
    example = next(p for p in json.loads(mhub(site, "plugins", "--json").stdout) if p["name"] == "example")
    assert (example["distribution"], example["version"], example["status"]) == ("mhub-example-plugin", "0.2.0", "ok")
    assert example["hooks"] == list(plugins.HOOKS) and example["commands"] == ["example-prefixes"]
    assert mhub(site, "list", "--pretrained", "tiny*").stdout.split() == ["tinynet.demo"]
    prefixes = mhub(site, "example-prefixes", "tinynet").stdout.splitlines()
    assert prefixes[0] == "backbone.stem.conv  Conv2d 8x3x3x3  <- first_conv"
    assert prefixes[-1] == "classifier.fc  Linear 10x16  <- classifier"


# Pulls through the Python API, then loads the weights with another stem and head: the registered first_conv
# must name the conv the upstream checkpoint calls conv1 (summed over its RGB channels for one input channel).
PULL_AND_LOAD = """
import json, sys, torch, mhub, mhub.hub
pulled = mhub.hub.fetch("tinynet.demo").to_dict()
model = mhub.create("tinynet", pretrained=True, in_chans=1, num_classes=3)
upstream = torch.load(sys.argv[1], weights_only=True)
pulled["stem_adapted"] = torch.equal(model.backbone.stem.conv.weight, upstream["conv1.weight"].sum(1, keepdim=True))
pulled["output"] = list(model(torch.zeros(2, 1, 32, 32)).shape)
print(json.dumps(pulled))
"""


def test_weights_come_through_the_tiny_scheme_and_match_the_shipped_reference(site):
    data = WEIGHTS.read_bytes()
    with LoopbackServer() as server:
        server.add("/files/tinynet-demo.pth", data, faults=[Fault.drop(after=10_000)])
        result = subprocess.run([sys.executable, "-W", "ignore", "-c", PULL_AND_LOAD, str(WEIGHTS)],
                                capture_output=True, text=True,
                                env={**os.environ, **env_with(site, TINYHUB_URL=server.url, MHUB_BACKOFF="0.01")})
        ranges = [request.range for request in server.requests if request.path == "/files/tinynet-demo.pth"]
    assert result.returncode == 0, result.stderr[-3000:]
    pulled = json.loads(result.stdout)
    assert ranges == [None, (10_000, None)]  # the fetcher resumed at the offset the hub asked for
    assert pulled["downloaded_from"] == "tiny://tinynet-demo.pth" and pulled["converted"] == "tinyref.tinynet@v1"
    assert pulled["sha256"] == hashlib.sha256(data).hexdigest()
    assert pulled["stem_adapted"] is True and pulled["output"] == [2, 3]

    validated = mhub(site, "validate", "tinynet.demo", "--weights", pulled["path"]).stdout
    assert f"reference: {site / 'mhub_example' / 'references' / 'tinynet.demo.safetensors'}" in validated
    assert re.search(r"^cpu\s+max abs error .* PASS$", validated, re.M) and "validation passed" in validated


def sh_blocks(readme: Path) -> list[str]:
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## How the shipped files were made"):]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.M | re.S)


def test_readme_author_steps_reproduce_the_shipped_files(site, tmp_path):
    import torch
    from safetensors.torch import load_file

    work = tmp_path / "work"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    for made in ("mhub_example/tinynet.toml", "mhub_example/references/tinynet.demo.safetensors",
                 "weights/tinynet-demo.pth"):
        (work / made).unlink()
    script = work / "steps.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(sh_blocks(work / "README.md")))
    env = {**os.environ, **env_with(site), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "validation passed" in result.stdout                                  # converted == upstream
    assert re.search(r"^\d+ passed", result.stdout, re.M), result.stdout[-2000:]  # the template's tests
    for line in ("ok    torch-free import: mhub_example.plugin",                # mhub plugins --check
                 "ok    model tinynet: mhub_example.model:tinynet",
                 "ok    converter tinyref.tinynet: mhub_example.convert:from_tinyref",
                 "ok    source tiny://: mhub_example.source:fetch",
                 "ok    reference tinyref:: mhub_example.upstream:build",
                 f"ok    weights tinynet.demo: reference {site / 'mhub_example' / 'references'}"):
        assert line in result.stdout, result.stdout[-3000:]
    assert result.stdout.rstrip().endswith("all checks passed")

    made = torch.load(work / "weights" / "tinynet-demo.pth", weights_only=True)
    shipped = torch.load(WEIGHTS, weights_only=True)
    assert made.keys() == shipped.keys() and all(torch.equal(made[k], shipped[k]) for k in made)
    entries = [tomllib.loads(path.read_text())["weights"] for path in
               (work / "mhub_example" / "tinynet.toml", EXAMPLE / "mhub_example" / "tinynet.toml")]
    if (work / "weights" / "tinynet-demo.pth").read_bytes() != WEIGHTS.read_bytes():
        for entry in entries:  # another torch version pickles the same tensors into other bytes
            entry[0].pop("sha256"), entry[0].pop("size")
    assert entries[0] == entries[1]
    ours, theirs = (load_file(str(p))["logits"] for p in
                    (work / "mhub_example" / "references" / "tinynet.demo.safetensors", SHIPPED_REFERENCE))
    assert_outputs_close(ours, theirs)
