"""Pretrained loading with a tiny registered model: conversion on pull, meta build + mmap assign, adaptation."""

from __future__ import annotations

import os
import pickle
import warnings
from collections import OrderedDict

import pytest
import torch
from hub_fixtures import MEMORY, entry, pickle_bytes, safetensors_bytes, tiny_checkpoint, write_registry
from hub_fixtures import server_fixture, source_plugin_fixture, tiny_plugin_fixture  # noqa: F401 (fixtures)
from safetensors import safe_open

import mhub
from mhub import ConversionError
from mhub.hub.convert import read_checkpoint
from mhub.hub.loading import adapt_input_conv

pytestmark = pytest.mark.usefixtures("tiny_plugin")


def serve(server, tmp_path, monkeypatch, **entries):
    """entries: tag -> (bytes, extra manifest fields); all served by ``server`` and registered."""
    tables = []
    for tag, (data, fields) in entries.items():
        url = server.add(f"/{tag}.bin", data)
        tables.append(entry(tag, [url], data, **{"num_classes": 5, **fields}))
    write_registry(tmp_path / "registry", monkeypatch, *tables)


@pytest.fixture
def sources(server, tmp_path, monkeypatch):
    """tinynet.st (safetensors, our layout) and tinynet.tv (pickle, upstream layout, converter)."""
    model_st, state_st = tiny_checkpoint(seed=1)
    model_tv, state_tv = tiny_checkpoint(seed=2, layout="tv")
    serve(server, tmp_path, monkeypatch,
          st=(safetensors_bytes(state_st, tmp_path), {}),
          tv=(pickle_bytes(state_tv, tmp_path), {"format": "torch-pickle", "converter": "tests.tinytv"}))
    return {"st": model_st, "tv": model_tv}


def test_safetensors_weights_reproduce_the_source_model(sources):
    x = torch.randn(2, 3, 24, 24)
    model = mhub.create("tinynet.st", pretrained=True)
    assert model.training  # like torchvision: nn.Module's default mode; the caller picks eval()
    assert torch.equal(model.eval()(x), sources["st"](x))


def test_torchvision_layout_pickle_is_converted_on_pull(sources, isolated_home):
    path = mhub.pull("tinynet.tv")
    assert path.name == "tv.tests.tinytv-v1.safetensors"
    with safe_open(str(path), "pt") as handle:
        assert sorted(handle.keys())[0].startswith("backbone.") and "conv1.weight" not in handle.keys()
        assert handle.metadata()["mhub.converter"] == "tests.tinytv"
    x = torch.randn(2, 3, 24, 24)
    assert torch.equal(mhub.create("tinynet.tv", pretrained=True).eval()(x), sources["tv"](x))


def test_conversion_is_cached_per_converter_version(sources, isolated_home, monkeypatch):
    import hub_fixtures

    calls = []
    original = hub_fixtures.tinytv_to_ours
    monkeypatch.setattr(hub_fixtures, "tinytv_to_ours", lambda state: calls.append(1) or original(state))
    first = mhub.pull("tinynet.tv")
    assert mhub.pull("tinynet.tv") == first and len(calls) == 1
    registry = mhub.get_registry()
    converter = registry.converters["tests.tinytv"]
    monkeypatch.setitem(registry.converters, "tests.tinytv", type(converter)(converter.name, converter.function, 2,
                                                                             converter.plugin))
    second = mhub.pull("tinynet.tv")
    assert second.name == "tv.tests.tinytv-v2.safetensors" and len(calls) == 2


def test_parameters_are_views_of_the_mapped_file_and_nothing_is_randomly_initialised(sources, monkeypatch):
    path = mhub.pull("tinynet.st")
    touched = []

    def spy(original):
        def init(*args, **kwargs):
            touched.append((args[0] if args else kwargs["tensor"]).device.type)
            return original(*args, **kwargs)
        return init

    for name in ("kaiming_uniform_", "uniform_", "normal_", "ones_", "zeros_"):
        monkeypatch.setattr(torch.nn.init, name, spy(getattr(torch.nn.init, name)))
    model = mhub.create("tinynet.st", pretrained=True)
    assert touched and set(touched) == {"meta"}  # layer init ran, but only on the meta device
    blob = os.path.realpath(path)
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith(blob):
                start, end = (int(v, 16) for v in line.split()[0].split("-"))
                ranges.append((start, end))
    assert ranges, "the weights file is not memory-mapped"
    for name, param in model.named_parameters():
        assert any(s <= param.data_ptr() < e for s, e in ranges), f"{name} was copied out of the mapping"


def test_non_persistent_buffers_are_materialised(sources):
    model = mhub.create("tinynet.st", pretrained=True)
    factor = model.backbone.scale.factor
    assert not factor.is_meta and torch.equal(factor.flatten(), torch.linspace(0.5, 1.5, 8))


def test_in_chans_1_grey_image_matches_rgb_model_on_replicated_channels(sources):
    rgb = mhub.create("tinynet.st", pretrained=True).eval()
    grey = mhub.create("tinynet.st", pretrained=True, in_chans=1).eval()
    x = torch.rand(2, 1, 24, 24)
    assert grey.backbone.stem.weight.shape[1] == 1
    torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-5, rtol=1e-5)


def test_in_chans_5_repeats_and_rescales(sources):
    rgb = mhub.create("tinynet.st", pretrained=True)
    five = mhub.create("tinynet.st", pretrained=True, in_chans=5)
    w = rgb.backbone.stem.weight.detach()
    expected = torch.cat([w, w[:, :2]], dim=1) * (3 / 5)
    assert torch.equal(five.backbone.stem.weight.detach(), expected)
    assert torch.equal(adapt_input_conv(w, 3 * 2), torch.cat([w, w], 1) / 2)


def test_num_classes_keeps_the_backbone_and_makes_a_new_head(sources):
    with pytest.warns(UserWarning, match=r"tinynet.st: num_classes=10 differs from the weights' 5; "
                                         r"the classifier 'classifier.fc' is newly initialised"):
        model = mhub.create("tinynet.st", pretrained=True, num_classes=10)
    reference = sources["st"]
    for key, value in reference.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    fc = model.classifier.fc
    assert fc.weight.shape == (10, 8) and not fc.weight.is_meta and torch.isfinite(fc.weight).all()
    assert fc.weight.abs().sum() > 0 and fc.weight.requires_grad
    x = torch.randn(1, 3, 24, 24)
    assert torch.equal(mhub.backbone(model.eval())(x), mhub.backbone(reference)(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mhub.create("tinynet.st", pretrained=True, num_classes=5)  # the weights' own count: no warning


def test_auxiliary_classifiers_the_weights_lack_are_fresh_and_those_the_model_lacks_are_left_out(tmp_path):
    from safetensors.torch import save_file

    from mhub._specs import ArchSpec
    from mhub.hub.loading import load_file_into

    def build(*, num_classes, in_chans, aux_logits=False):
        model = torch.nn.Sequential(OrderedDict(backbone=torch.nn.Conv2d(in_chans, 4, 1),
                                                classifier=torch.nn.Linear(4, num_classes)))
        if aux_logits:
            model.add_module("aux", torch.nn.Linear(4, num_classes))
        return model

    arch = ArchSpec("auxnet", build, "toy", classifier="classifier", aux_classifiers=("aux",))
    plain, with_heads = build(num_classes=3, in_chans=3), build(num_classes=3, in_chans=3, aux_logits=True)
    save_file(plain.state_dict(), tmp_path / "plain.safetensors")
    save_file(with_heads.state_dict(), tmp_path / "heads.safetensors")
    with pytest.warns(UserWarning, match="^auxnet: the weights hold no auxiliary classifier 'aux'; it is newly "
                                         "initialised and needs training$"):
        fresh = load_file_into(arch, tmp_path / "plain.safetensors", aux_logits=True)
    assert torch.equal(fresh.backbone.weight, plain.backbone.weight)
    assert fresh.aux.weight.shape == (3, 4) and not fresh.aux.weight.is_meta and fresh.aux.weight.abs().sum() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_file_into(arch, tmp_path / "heads.safetensors", aux_logits=True)
        assert torch.equal(loaded.aux.weight, with_heads.aux.weight)
        assert not hasattr(load_file_into(arch, tmp_path / "heads.safetensors"), "aux")  # left out, silently


def test_missing_and_unexpected_keys_are_listed(server, tmp_path, monkeypatch):
    _, state = tiny_checkpoint()
    del state["backbone.bn.running_var"]
    state["backbone.extra.weight"] = torch.zeros(3)
    serve(server, tmp_path, monkeypatch, bad=(safetensors_bytes(state, tmp_path), {}))
    with pytest.raises(ConversionError, match=r"tinynet.bad: the weights do not fit the model: "
                                              r"missing keys: backbone.bn.running_var; "
                                              r"unexpected keys: backbone.extra.weight"):
        mhub.create("tinynet.bad", pretrained=True)


def test_shape_mismatch_is_listed(server, tmp_path, monkeypatch):
    _, state = tiny_checkpoint()
    serve(server, tmp_path, monkeypatch, wide=(safetensors_bytes(state, tmp_path), {}))
    with pytest.raises(ConversionError, match=r"shape mismatches: backbone.bn.bias \(file \(8,\), model \(4,\)\)"):
        mhub.create("tinynet.wide", pretrained=True, width=4)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/mhub-evil-should-not-exist",))


def test_pickles_are_never_fully_unpickled(server, tmp_path, monkeypatch):
    marker = "/tmp/mhub-evil-should-not-exist"
    if os.path.exists(marker):
        os.remove(marker)
    _, state = tiny_checkpoint(layout="tv")
    payload = tmp_path / "evil.pth"
    torch.save({"state_dict": state, "trap": _Evil()}, payload, pickle_module=pickle)
    serve(server, tmp_path, monkeypatch,
          evil=(payload.read_bytes(), {"format": "torch-pickle", "converter": "tests.tinytv"}))
    with pytest.raises(ConversionError, match="weights_only=True"):
        mhub.pull("tinynet.evil")
    assert not os.path.exists(marker)


def test_wrapped_checkpoints_and_half_precision_load(server, tmp_path, monkeypatch):
    reference, state = tiny_checkpoint(layout="tv")
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    serve(server, tmp_path, monkeypatch,
          wrapped=(pickle_bytes({"state_dict": half, "epoch": 3}, tmp_path),
                   {"format": "torch-pickle", "converter": "tests.tinytv"}))
    model = mhub.create("tinynet.wrapped", pretrained=True).eval()
    assert model.backbone.stem.weight.dtype == torch.float32
    x = torch.randn(1, 3, 16, 16)
    torch.testing.assert_close(model(x), reference(x), atol=2e-2, rtol=2e-2)


def test_saved_safetensors_are_byte_for_byte_reproducible(tmp_path):
    """Equal tensors and metadata give equal files (safetensors alone orders metadata at random)."""
    import hashlib

    from safetensors.torch import load_file

    from mhub.hub.convert import save_safetensors

    state = {"b.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(3)}
    metadata = {k: f"value-{k}" for k in ("model", "converter", "source_sha256", "mhub_version", "format", "x")}
    digests = set()
    for i in range(6):
        save_safetensors(state, tmp_path / f"{i}.safetensors", metadata=metadata)
        digests.add(hashlib.sha256((tmp_path / f"{i}.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1
    loaded = load_file(tmp_path / "0.safetensors")
    assert torch.equal(loaded["b.weight"], state["b.weight"]) and torch.equal(loaded["a.bias"], state["a.bias"])


# -- the entry's format decides, and a malformed file is an mhub error ----------------------------------------
@pytest.mark.usefixtures("source_plugin")
@pytest.mark.parametrize("where", ["memory://tinyw", "/weights/abc", "/weights/model.bin"])
def test_a_safetensors_entry_is_read_as_safetensors_whatever_its_url(server, tmp_path, monkeypatch, where):
    """Cached as NAME.bin (or with no suffix) and then read with torch.load, these used to be refused."""
    reference, state = tiny_checkpoint(seed=4)
    data = safetensors_bytes(state, tmp_path)
    MEMORY["tinyw"] = data
    url = where if "://" in where else server.add(where, data)
    write_registry(tmp_path / "registry", monkeypatch, entry("w", [url], data, num_classes=5))
    path = mhub.pull("tinynet.w")
    assert path.name == {"memory://tinyw": "tinynet.w.safetensors", "/weights/abc": "abc.safetensors",
                         "/weights/model.bin": "model.safetensors"}[where]
    assert read_checkpoint(path).keys() == state.keys()  # what `mhub validate --weights PATH` reads
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(mhub.create("tinynet.w", pretrained=True).eval()(x), reference(x))


def malformed(data: bytes, kind: str) -> bytes:
    """A safetensors file damaged after the fact (its manifest hash is then taken of these bytes)."""
    length = int.from_bytes(data[:8], "little")
    if kind == "truncated":  # the header promises more tensor bytes than the file has
        return data[:-16]
    return data[:8] + b"x" * length + data[8 + length:]  # an unreadable header


@pytest.mark.parametrize("kind", ["truncated", "header"])
def test_malformed_safetensors_matching_its_hash_is_a_conversion_error(server, tmp_path, monkeypatch, kind):
    """Such a file used to raise a raw SafetensorError from create and a 35-line traceback from predict."""
    _, state = tiny_checkpoint()
    serve(server, tmp_path, monkeypatch, bad=(malformed(safetensors_bytes(state, tmp_path), kind), {}))
    reason = {"truncated": "incomplete metadata, file not fully covered", "header": "invalid JSON in header"}[kind]
    with pytest.raises(ConversionError, match=rf"^tinynet.bad: .*bad.safetensors: not a readable safetensors "
                                              rf"file: Error while deserializing header: {reason}"):
        mhub.create("tinynet.bad", pretrained=True)
    from click.testing import CliRunner
    from PIL import Image

    from mhub.cli import cli

    image = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(image)
    result = CliRunner().invoke(cli, ["predict", "tinynet.bad", str(image)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: tinynet.bad: ") and reason in lines[0]


def test_first_conv_of_a_half_precision_file_is_adapted_in_float32():
    from mhub.hub.loading import adapt_input_conv

    weight = (torch.randn(64, 3, 7, 7) * 30).half()
    summed = adapt_input_conv(weight, 1)
    assert summed.dtype == torch.float16
    assert torch.equal(summed, weight.float().sum(1, keepdim=True).half())
    assert torch.equal(adapt_input_conv(weight, 5), (weight.float().repeat(1, 2, 1, 1)[:, :5] * 0.6).half())
