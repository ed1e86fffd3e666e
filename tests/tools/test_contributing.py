"""CONTRIBUTING.md's contributor steps, extracted and run literally, through to `mhub pull` from a mirror."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, randomise_batchnorm

from mhub._manifest import load_manifest


SECTION = "## Contributing weights, step by step"


def contributor_steps() -> list[str]:
    """The ```sh blocks of the contributor section, in order."""
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end != -1 else None]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.M | re.S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_section_has_the_five_commands_in_order():
    script = "\n".join(contributor_steps())
    positions = [script.index(f"mhub {command} ") for command in ("convert", "hash", "validate", "eval",
                                                                   "manifest")]
    assert positions == sorted(positions)
    assert "mhub pull" in script and "MHUB_REGISTRY" in script


@pytest.mark.slow
def test_contributor_steps_run_literally_through_to_pull(tmp_path):
    import torchvision

    # The contributor's checkpoint: a torchvision-layout resnet18 state dict with trained-looking BN stats.
    torch.manual_seed(0)
    model = randomise_batchnorm(torchvision.models.resnet18())
    torch.save(model.state_dict(), tmp_path / "resnet18-mylab.pth")
    # Two tiny images in ImageNet's validation layout stand in for the 50,000.
    from PIL import Image

    for wnid, colour in (("n01440764", (40, 90, 160)), ("n02123045", (200, 150, 90))):
        (tmp_path / "imagenet" / "val" / wnid).mkdir(parents=True)
        Image.new("RGB", (48, 40), colour).save(tmp_path / "imagenet" / "val" / wnid / "ILSVRC2012_val.JPEG")

    script = tmp_path / "steps.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(contributor_steps()))
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PORT": str(port), "MHUB_HOME": str(tmp_path / "home")}
    env.pop("MHUB_REGISTRY", None)
    env.pop("MHUB_ENDPOINT", None)
    # Own session, so whatever the script started (the HTTP server) can be stopped if a step fails.
    process = subprocess.Popen(["bash", str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    assert process.returncode == 0, output[-4000:]

    converted = (tmp_path / "resnet18-mylab.safetensors").read_bytes()
    digest = hashlib.sha256(converted).hexdigest()
    assert f"{digest}  {len(converted)}  resnet18-mylab.safetensors" in output          # mhub hash
    assert re.search(r"^cpu\s+max abs error \S+ .*PASS$", output, re.M)                   # mhub validate
    assert "cuda: skipped" in output or "cuda tf32=off" in output
    measured = json.loads((tmp_path / "eval.json").read_text())                            # mhub eval
    assert measured["n"] == 2 and measured["weights_sha256"] == digest
    (entry,) = load_manifest(tmp_path / "my-registry" / "resnet.toml")                     # mhub manifest
    assert dict(entry.metrics) == {"top1": round(measured["top1"], 3), "top5": round(measured["top5"], 3)}
    assert (tmp_path / "my-registry" / "references" / "resnet18.mylab_in1k.safetensors").is_file()
    pulled = [Path(line) for line in output.splitlines() if line.startswith(str(tmp_path / "home"))]
    assert pulled and hashlib.sha256(pulled[0].read_bytes()).hexdigest() == digest         # mhub pull
    assert f"GET /blobs/sha256/{digest} HTTP/1.1\" 200" in (tmp_path / "http.log").read_text()
    assert output.rstrip().endswith("validation passed")                                   # the pulled file
