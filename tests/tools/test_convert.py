"""`mhub convert`: safe reading, key maps, the structural matcher and its refusals, output metadata."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from collections import OrderedDict

import pytest
import toy_models
import torch
from conftest import fill_up, run_cli
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import mhub
from mhub import ConversionError
from mhub.hub.convert import checkpoint_format, read_checkpoint, unwrap_state_dict as unwrap
from mhub_tools.convert import convert_state
from tools_cli import invoke


@pytest.fixture
def toy():
    toy_models.install()
    yield mhub.get_registry()
    toy_models.uninstall()


class CreatesFile:
    """Unpickling this calls ``open(path, "w")``: it creates a file, which is what a payload would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class RunsShell:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def write_plain_pickle(path, payload):
    with open(path, "wb") as handle:
        # Protocol 2 is what torch's own legacy format uses, so the refusal is about the payload itself.
        pickle.dump({"conv1.weight": torch.zeros(1), "evil": payload}, handle, protocol=2)


def write_torch_zip(path, payload):
    torch.save({"conv1.weight": torch.zeros(1), "evil": payload}, path)


# Deliberately UNSAFE loaders, the control of the test below: run in a child process, on files this test
# just crafted, they show the payload really executes when unpickled without weights_only. mhub never
# loads a pickle this way (the hub's reader passes weights_only=True).
LOADERS = {
    write_plain_pickle: "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))",
    write_torch_zip: "import torch, sys; torch.load(sys.argv[1], weights_only=False)",
}


@pytest.mark.parametrize("writer,payload", [(write_plain_pickle, CreatesFile), (write_torch_zip, CreatesFile),
                                            (write_torch_zip, RunsShell)])
def test_malicious_pickle_is_refused_and_creates_nothing(tmp_path, writer, payload):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "evil.pth"
    writer(checkpoint, payload(marker))
    # The payload is real: an unrestricted load creates the file.
    subprocess.run([sys.executable, "-c", LOADERS[writer], str(checkpoint)], capture_output=True, check=False)
    assert marker.exists(), "the crafted pickle should be malicious under an unrestricted load"
    marker.unlink()

    env = {**toy_models.subprocess_env(tmp_path / "site"), "MHUB_LOAD_PLUGINS": "tools,toy-tools"}
    out = tmp_path / "out.safetensors"
    result = run_cli("convert", str(checkpoint), "--model", "toynet", "-o", str(out), env=env, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refused: not a plain tensor checkpoint: it would call " in lines[0]
    # the blocked global is named; torch's advice to load with weights_only=False is not repeated
    assert ("os.system (posix.system)" if payload is RunsShell else "io.open") in lines[0], lines[0]
    assert "weights_only=False" not in lines[0]
    assert not marker.exists() and not out.exists()
    assert not list(tmp_path.glob("out.safetensors*"))


def test_explicit_map_and_structural_matcher_give_identical_tensors(tmp_path, toy):
    upstream = toy_models.trained_upstream_state()
    torch.save(upstream, tmp_path / "up.pth")
    explicit = invoke("convert", str(tmp_path / "up.pth"), "--model", "toynet", "--from", "torchvision",
                      "-o", str(tmp_path / "explicit.safetensors"))
    assert "key map torchvision.toy@1: fits" in explicit.output
    auto = invoke("convert", str(tmp_path / "up.pth"), "--model", "toynet", "--from", "auto",
                  "-o", str(tmp_path / "auto.safetensors"))
    assert "conv3.weight -> backbone.block.conv_b.weight  [8, 8, 3, 3]" in auto.output
    a, b = load_file(tmp_path / "explicit.safetensors"), load_file(tmp_path / "auto.safetensors")
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    # And both are the upstream tensors under the names the hand-written map gives.
    mapped = toy_models.convert_torchvision_toy(upstream)
    assert all(torch.equal(a[k], mapped[k]) for k in mapped) and set(a) == set(mapped)


def test_output_metadata_names_model_source_converter_and_version(tmp_path, toy):
    torch.save({"state_dict": toy_models.trained_upstream_state(), "epoch": 90}, tmp_path / "ckpt.pth")
    invoke("convert", str(tmp_path / "ckpt.pth"), "--model", "toynet", "-o", str(tmp_path / "o.safetensors"))
    with safe_open(str(tmp_path / "o.safetensors"), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["model"] == "toynet" and meta["converter"] == "torchvision.toy@1"
    assert meta["source_sha256"] == hashlib.sha256((tmp_path / "ckpt.pth").read_bytes()).hexdigest()
    assert meta["mhub_version"] == mhub.__version__


def test_the_converted_model_computes_what_the_upstream_model_computes(toy):
    upstream_state = toy_models.trained_upstream_state()
    match = convert_state(toy.arch("toynet"), upstream_state, source="auto")
    ours = toy_models.build_toynet(num_classes=10).eval()
    ours.load_state_dict(match.state, strict=True)
    upstream = toy_models.upstream_toy(10).eval()
    upstream.load_state_dict(upstream_state)
    x = torch.linspace(-2, 2, 2 * 3 * 16 * 16).reshape(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ours(x), upstream(x), atol=1e-6)


def test_swapped_same_shaped_tensors_in_the_checkpoint_order_are_paired_by_that_order(toy):
    # The matcher trusts checkpoint order: reversing conv2/conv3 in the file reverses the pairing.
    state = toy_models.trained_upstream_state()
    keys = list(state)
    reordered = OrderedDict((k, state[k]) for k in keys if not k.startswith(("conv2", "bn2")))
    position = list(reordered).index("bn3.num_batches_tracked") + 1  # conv2/bn2 now come after conv3/bn3
    items = list(reordered.items())
    items[position:position] = [(k, state[k]) for k in keys if k.startswith(("conv2", "bn2"))]
    match = convert_state(toy.arch("toynet"), OrderedDict(items), source="auto")
    assert torch.equal(match.state["backbone.block.conv_a.weight"], state["conv3.weight"])


def test_ambiguous_order_is_refused(tmp_path, toy):
    model = toy_models.build_toychain(num_classes=5)
    # Any upstream checkpoint of this net: same shapes, its own names, in either order.
    state = OrderedDict((k.replace("backbone.", "body_").replace("classifier.2", "fc"), v)
                        for k, v in model.state_dict().items())
    with pytest.raises(ConversionError, match=r"ambiguous: 'backbone\.second\.(weight|bias)' and 'backbone\.first\."):
        convert_state(toy.arch("toychain"), state, source="auto")
    torch.save(state, tmp_path / "chain.pth")
    result = invoke("convert", str(tmp_path / "chain.pth"), "--model", "toychain", "-o",
                    str(tmp_path / "o.safetensors"), check=False)
    assert result.exit_code == 1 and "cannot decide which is which" in result.output
    assert not (tmp_path / "o.safetensors").exists()


def test_parallel_branches_run_in_another_order_keep_registration_order(toy):
    # toynet runs its shortcut before the main path, the upstream model after it; the data flow leaves the
    # two unordered, so registration order (shortcut last on both sides) decides, and decides right.
    from mhub_tools.convert import build_meta, trace_forward

    trace = trace_forward(build_meta(toy.arch("toynet"), num_classes=10), 16, 3)
    assert trace.order.index("backbone.block.shortcut.0.weight") < trace.order.index("backbone.block.conv_a.weight")
    assert trace.depends("backbone.block.conv_b.weight", "backbone.block.conv_a.weight")
    assert not trace.depends("backbone.block.conv_b.weight", "backbone.block.shortcut.0.weight")
    state = toy_models.trained_upstream_state()
    match = convert_state(toy.arch("toynet"), state, source="auto")
    assert torch.equal(match.state["backbone.block.shortcut.0.weight"], state["down.0.weight"])
    assert torch.equal(match.state["backbone.block.conv_b.weight"], state["conv3.weight"])


def test_checkpoint_that_does_not_correspond_is_refused_with_counts(toy):
    state = toy_models.trained_upstream_state()
    del state["conv3.weight"]
    with pytest.raises(ConversionError, match=r"weight\[8, 8, 3, 3\]: checkpoint has 2, model has 3"):
        convert_state(toy.arch("toynet"), state)


def test_a_map_that_does_not_fit_falls_back_to_the_matcher(toy):
    state = toy_models.trained_upstream_state()
    renamed = OrderedDict((k.replace("conv", "cv"), v) for k, v in state.items())  # the map raises KeyError
    lines = []
    match = convert_state(toy.arch("toynet"), renamed, log=lines.append)
    assert match.converter == "structural"
    assert any("torchvision.toy@1: raised KeyError" in line for line in lines)
    ours_layout = convert_state(toy.arch("toynet"), match.state)
    assert ours_layout.converter == "identity"


def test_containers_and_dataparallel_prefix_are_unwrapped():
    inner = OrderedDict([("module.a.weight", torch.ones(2)), ("module.b.bias", torch.zeros(1))])
    assert list(unwrap({"model": {"state_dict": inner}, "optimizer": {"lr": 0.1}})) == ["a.weight", "b.bias"]
    assert list(unwrap({"a": torch.ones(1), "epoch": 3})) == ["a"]
    with pytest.raises(ConversionError, match="no tensors"):
        unwrap({"epoch": 3})


def test_the_format_comes_from_the_bytes_not_the_suffix(tmp_path):
    save_file({"x.weight": torch.ones(2), "y.bias": torch.zeros(3)}, str(tmp_path / "w.safetensors"))
    assert list(read_checkpoint(tmp_path / "w.safetensors")) == ["x.weight", "y.bias"]
    (tmp_path / "w.safetensors").rename(tmp_path / "w.bin")  # safetensors bytes under a pickle's suffix
    assert checkpoint_format(tmp_path / "w.bin") == "safetensors"
    assert list(read_checkpoint(tmp_path / "w.bin")) == ["x.weight", "y.bias"]
    torch.save({"z": torch.ones(1)}, tmp_path / "p.safetensors")  # and the other way round
    assert checkpoint_format(tmp_path / "p.safetensors") == "torch-pickle"
    assert list(read_checkpoint(tmp_path / "p.safetensors")) == ["z"]
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(ConversionError, match="w.npz: neither a safetensors file nor a torch checkpoint"):
        read_checkpoint(tmp_path / "w.npz")
    (tmp_path / "broken.pth").write_bytes(b"not a pickle at all")
    with pytest.raises(ConversionError, match="broken.pth"):
        read_checkpoint(tmp_path / "broken.pth")


def test_disk_full_while_writing_is_one_clear_line_and_leaves_no_file(tmp_path, toy, tiny_disk):
    """safetensors reports ENOSPC as its own SafetensorError, which used to end `mhub convert` raw."""
    torch.save(toy_models.trained_upstream_state(), tmp_path / "up.pth")
    fill_up(tiny_disk)
    out = tiny_disk / "out.safetensors"
    result = invoke("convert", str(tmp_path / "up.pth"), "--model", "toynet", "--from", "torchvision", "-o",
                    str(out), check=False)
    assert result.exit_code == 1
    error = result.output.strip().splitlines()[-1]  # after the progress lines, one line says what happened
    assert error.startswith(f"Error: no space left on device writing {out}.partial (") and \
        error.endswith("free some space or write the output elsewhere (No space left on device)"), error
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


# -- the real architecture: torchvision resnet50 --------------------------------------------------------------
def resnet_available(name="resnet50"):
    registry = mhub.get_registry()
    return name in registry.archs and "torchvision.resnet" in registry.converters


@pytest.mark.slow
def test_torchvision_resnet50_explicit_map_equals_structural_matcher(tmp_path):
    if not resnet_available():
        pytest.skip("needs the ResNet plugin (mhub_resnet: resnet50 and converter 'torchvision.resnet')")
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    torch.save(state, tmp_path / "resnet50.pth")
    for source in ("torchvision", "auto"):
        invoke("convert", str(tmp_path / "resnet50.pth"), "--model", "resnet50", "--from", source,
               "-o", str(tmp_path / f"{source}.safetensors"))
    explicit = load_file(tmp_path / "torchvision.safetensors")
    structural = load_file(tmp_path / "auto.safetensors")
    assert list(explicit) == list(structural) and len(explicit) == len(state)
    different = [k for k in explicit if not torch.equal(explicit[k], structural[k])]
    assert not different, different[:5]
    with safe_open(str(tmp_path / "auto.safetensors"), framework="pt") as handle:
        assert handle.metadata()["converter"] == "structural"


def test_a_map_that_keeps_an_auxiliary_classifier_fits_the_model_built_without_it():
    """torchvision's Inception v3 key map keeps the trained auxiliary classifier (pretrained loading can use it);
    converting for the plain model leaves it out, as loading does, instead of falling back to the matcher."""
    import torchvision

    with torch.device("meta"):
        state = torchvision.models.inception_v3(init_weights=False, aux_logits=True).state_dict()
    match = convert_state(mhub.get_registry().arch("inception_v3"), state, source="torchvision")
    assert match.converter.startswith("torchvision.inception@")
    assert not any(key.startswith("aux.") for key in match.state) and "classifier.fc.weight" in match.state
