"""``mhub bench``: the variants it times, its JSON, its peers' names, its errors."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner

import mhub
import mhub._factory
from mhub import bench
from mhub.cli import cli


def test_bench_json_times_every_variant_and_the_peer():
    torchvision = pytest.importorskip("torchvision")
    result = CliRunner().invoke(cli, ["bench", "mobilenet_v3_small", "--batch-size", "2", "--image-size", "32",
                                      "--rounds", "2", "--warmup", "1", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    labels = [t["label"] for t in report["timings"]]
    assert labels == ["mhub eager", "mhub fused", "mhub fused + channels-last", "torchvision eager",
                      "torchvision channels-last"]
    peer = torchvision.models.mobilenet_v3_small()
    assert report["folded"] == sum(isinstance(m, torch.nn.BatchNorm2d) for m in peer.modules()) == 34
    assert report["baseline"] == "torchvision eager" and report["fused_max_abs_diff"] < 1e-4
    assert (report["batch_size"], report["image_size"], report["device"], report["dtype"]) == (2, 32, "cpu", "float32")
    for timing in report["timings"]:
        assert len(timing["rounds_ms"]) == 2 and timing["images_per_second"] > 0
        assert timing["images_per_second"] == pytest.approx(2000 / timing["latency_ms"])
    assert report["timings"][3]["speedup"] == 1.0


def test_bench_table_without_peer_and_with_compile(monkeypatch):
    compiled = []
    monkeypatch.setattr(bench, "compile_model", lambda model: compiled.append(model) or model)
    report = bench.benchmark("mobilenetv3_small_050", batch_size=1, image_size=32, compare=[], compile=True,
                             rounds=1, warmup=1, dtype="bfloat16")
    assert [t.label for t in report.timings] == ["mhub eager", "mhub fused", "mhub fused + channels-last",
                                                 bench.COMPILED]
    assert len(compiled) == 1 and report.baseline == "mhub eager" and report.speedup("mhub eager") == 1.0
    lines = report.table().splitlines()
    assert lines[0].startswith("mobilenetv3_small_050: batch 1, 32x32, cpu, bfloat16") and len(lines) == 6
    assert lines[2].split()[:2] == ["mhub", "eager"] and lines[2].endswith("1.00x")


def test_timm_names_are_timm_models_and_registered_torchvision_names_are_torchvision_models():
    timm = pytest.importorskip("timm")
    torchvision = pytest.importorskip("torchvision")
    assert all(timm.is_model(theirs) for theirs in bench.TIMM_NAMES.values())
    assert all(name in torchvision.models.list_models() for name in bench.TIMM_NAMES)
    for name in ("resnet50", "efficientnet_b0", "mobilenet_v3_large"):  # the benchmark's models
        assert bench.has_peer(name, "timm") and bench.has_peer(name, "torchvision")
    assert bench.auto_peers("mobilenetv3_large_100") == ["timm"] and bench.auto_peers("resnet50") == ["torchvision"]


@pytest.mark.parametrize("kwargs, words", [
    (dict(name="mobilenetv3_small_050", compare=["torchvision"]), "torchvision has no model 'mobilenetv3_small_050'"),
    (dict(name="resnet18", compare=["onnx"]), "unknown peer 'onnx'; expected one of torchvision, timm"),
    (dict(name="resnet18", dtype="float64"), "unknown dtype 'float64'; expected one of float32, bfloat16, float16"),
    (dict(name="resnet18", device="tpu"), "unknown device 'tpu'; use cpu or cuda"),
])
def test_unusable_requests_fail_before_anything_is_built(kwargs, words, monkeypatch):
    monkeypatch.setattr(mhub._factory, "create", lambda *a, **k: pytest.fail("built a model"))
    with pytest.raises(bench.BenchError, match=f"^{re.escape(words)}$"):
        bench.benchmark(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_bench_on_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(mhub.MhubError, match=r"^no CUDA device here \(torch.cuda.is_available\(\) is False\)$"):
        bench.benchmark("resnet18", device="cuda")
