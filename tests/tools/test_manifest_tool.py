"""`mhub manifest`: the [[weights]] entry and its reference outputs, usable through MHUB_REGISTRY."""

from __future__ import annotations

import hashlib

import pytest
import toy_models
import torch
from safetensors.torch import load_file

import mhub
from mhub import ConversionError, ManifestError, _registry
from mhub._manifest import load_manifest
from mhub_tools.manifest import write_entry
from mhub_tools.reference import InputSpec, load_reference, reference_input
from tools_cli import invoke


@pytest.fixture
def toy(tmp_path):
    toy_models.install()
    upstream = toy_models.trained_upstream_state(num_classes=10)
    torch.save(upstream, tmp_path / "up.pth")
    invoke("convert", str(tmp_path / "up.pth"), "--model", "toynet", "-o", str(tmp_path / "toy.safetensors"))
    yield tmp_path / "toy.safetensors", upstream
    toy_models.uninstall()


def manifest(weights, out, tag="mylab", *extra):
    return invoke("manifest", f"toynet.{tag}", "--weights", str(weights), "--source",
                  f"https://example.invalid/weights/toynet-{tag}.safetensors", "--license", "MIT",
                  "--metric", "top1=12.5", "--metric", "top5=40", "--preprocess", "crop=48",
                  "--preprocess", "resize=56", "-o", str(out), *extra)


def test_entry_validates_and_describes_the_file(tmp_path, toy):
    weights, _upstream = toy
    result = manifest(weights, tmp_path / "reg")
    assert "[[weights]]" in result.output
    (spec,) = load_manifest(tmp_path / "reg" / "toy.toml")
    data = weights.read_bytes()
    assert spec.sha256 == hashlib.sha256(data).hexdigest() and spec.size == len(data)
    assert spec.name == "toynet.mylab" and spec.format == "safetensors" and spec.license == "MIT"
    assert spec.num_classes == 10 and dict(spec.metrics) == {"top1": 12.5, "top5": 40}
    assert spec.preprocess["crop"] == 48 and spec.preprocess["resize"] == 56
    assert spec.preprocess["mean"] == [0.485, 0.456, 0.406]
    assert spec.sources == ("https://example.invalid/weights/toynet-mylab.safetensors",)
    assert "from a file with sha256 " + hashlib.sha256((tmp_path / "up.pth").read_bytes()).hexdigest() \
        in spec.description
    assert spec.reference_path == tmp_path / "reg" / "references" / "toynet.mylab.safetensors"


def test_reference_outputs_are_what_the_upstream_implementation_computes(tmp_path, toy):
    weights, upstream_state = toy
    manifest(weights, tmp_path / "reg")
    ref = load_reference(tmp_path / "reg" / "references" / "toynet.mylab.safetensors")
    assert ref.input == InputSpec(48, 3, 2) and ref.logits.shape == (2, 10)
    upstream = toy_models.upstream_toy(10).eval()
    upstream.load_state_dict(upstream_state)
    with torch.no_grad():
        expected = upstream(reference_input(ref.input))
    assert torch.allclose(ref.logits, expected, atol=1e-5)
    assert ref.metadata["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_the_directory_works_as_mhub_registry_and_validate_uses_its_reference(tmp_path, toy, monkeypatch):
    weights, _ = toy
    manifest(weights, tmp_path / "reg")
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path / "reg"))
    mhub._registry.reset_registry()
    spec = mhub.get_registry().weights_for("toynet.mylab")
    assert spec.reference_path.is_file()
    result = invoke("validate", "toynet.mylab", "--weights", str(weights))
    assert "toynet.mylab.safetensors" in result.output and "validation passed" in result.output
    bad = dict(load_file(weights))
    bad["classifier.fc.bias"] = bad["classifier.fc.bias"] + 0.5
    from safetensors.torch import save_file

    save_file(bad, str(tmp_path / "bad.safetensors"))
    assert invoke("validate", "toynet.mylab", "--weights", str(tmp_path / "bad.safetensors"),
                  check=False).exit_code == 1


def test_appends_to_an_existing_family_file_and_refuses_duplicates(tmp_path, toy):
    weights, _ = toy
    out = tmp_path / "reg"
    manifest(weights, out, "first")
    text = "# hand-written comment that must survive\n" + (out / "toy.toml").read_text()
    (out / "toy.toml").write_text(text)
    manifest(weights, out, "second", "--default")
    specs = load_manifest(out / "toy.toml")
    assert [s.tag for s in specs] == ["first", "second"] and specs[1].default
    assert (out / "toy.toml").read_text().startswith(text.rstrip("\n"))
    before = (out / "toy.toml").read_text()
    duplicate = invoke("manifest", "toynet.second", "--weights", str(weights), "--source",
                       "https://example.invalid/x.safetensors", "--license", "MIT", "-o", str(out), check=False)
    assert duplicate.exit_code == 1 and "already has an entry for toynet.second" in duplicate.output
    assert (out / "toy.toml").read_text() == before


def test_bad_requests_are_clear_errors(tmp_path, toy):
    weights, _ = toy
    no_tag = invoke("manifest", "toynet", "--weights", str(weights), "--source", "https://example.invalid/a",
                    "--license", "MIT", "-o", str(tmp_path / "reg"), check=False)
    assert no_tag.exit_code == 1 and "give the weight set as NAME.TAG" in no_tag.output
    bad_source = invoke("manifest", "toynet.x", "--weights", str(weights), "--source", "../escape",
                        "--license", "MIT", "-o", str(tmp_path / "reg"), check=False)
    assert bad_source.exit_code == 1 and "field 'sources'" in bad_source.output
    assert not (tmp_path / "reg" / "toy.toml").exists()
    bad_metric = invoke("manifest", "toynet.x", "--weights", str(weights), "--source", "https://example.invalid/a",
                        "--license", "MIT", "--metric", "top1", "-o", str(tmp_path / "reg"), check=False)
    assert bad_metric.exit_code == 1 and "expected KEY=VALUE" in bad_metric.output


def test_preprocess_writes_the_resize_that_predict_will_use_and_refuses_contradictions(tmp_path, toy):
    weights, _ = toy
    common = {"sources": ["https://example.invalid/a"], "license": "MIT", "out_dir": tmp_path / "reg"}
    write_entry("toynet.timm", weights, preprocess={"crop": 64, "crop_pct": 0.9, "crop_mode": "squash"}, **common)
    write_entry("toynet.plain", weights, preprocess={"crop": 96}, **common)
    timm_set, plain = load_manifest(tmp_path / "reg" / "toy.toml")
    assert timm_set.preprocess["resize"] == 71 and plain.preprocess["resize"] == 109  # floor(crop / crop_pct)
    with pytest.raises(mhub.MhubError, match="resize 64 and crop_pct 0.9, which means resize 71"):
        write_entry("toynet.bad", weights, preprocess={"crop": 64, "crop_pct": 0.9, "resize": 64}, **common)
    assert [s.tag for s in load_manifest(tmp_path / "reg" / "toy.toml")] == ["timm", "plain"]


def test_weights_converted_for_another_model_or_a_bad_tag_are_refused(tmp_path, toy):
    weights, _ = toy
    with pytest.raises(ConversionError, match="was converted for 'toynet', not 'toychain'"):
        write_entry("toychain.x", weights, sources=["https://example.invalid/a"], license="MIT",
                    out_dir=tmp_path / "reg")
    with pytest.raises(ManifestError, match="field 'tag'"):
        write_entry("toynet.Bad", weights, sources=["https://example.invalid/a"], license="MIT",
                    out_dir=tmp_path / "reg")
    assert not (tmp_path / "reg").exists()


def test_registry_check_finds_missing_stale_and_orphaned_references(tmp_path, toy):
    from mhub_tools.manifest import registry_problems

    weights, _ = toy
    registry = tmp_path / "reg"
    manifest(weights, registry)
    assert registry_problems(registry) == []
    (reference,) = (registry / "references").iterdir()
    stale = registry / "references" / "spare.safetensors"
    reference.rename(stale)  # the entry's file is gone, and the renamed copy belongs to nobody
    problems = registry_problems(registry)
    assert any("toynet.mylab: reference file" in p and "does not exist" in p for p in problems), problems
    assert any("references/spare.safetensors: no entry names" in p for p in problems), problems
    stale.rename(reference)
    from safetensors.torch import save_file

    save_file({"logits": torch.zeros(2, 10)}, str(reference), metadata={"input": "another-input"})
    assert any("made for input 'another-input'" in p for p in registry_problems(registry))
    (registry / "broken.toml").write_text("[[weights]]\nmodel = 1\n")
    assert any("broken.toml: entry 0" in p for p in registry_problems(registry))


def test_metrics_from_records_what_mhub_eval_measured_on_this_very_file(tmp_path, toy):
    import json

    from PIL import Image

    weights, _ = toy
    generator = torch.Generator().manual_seed(0)
    for index in range(4):  # class-index folders 0..3, one random 40x40 image each
        (tmp_path / "data" / str(index)).mkdir(parents=True)
        pixels = torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8, generator=generator).numpy()
        Image.fromarray(pixels).save(tmp_path / "data" / str(index) / "x.png")
    measured = invoke("eval", "toynet", str(tmp_path / "data"), "--weights", str(weights), "--preprocess",
                      "resize=36", "--preprocess", "crop=32", "--workers", "0", "--json").output
    (tmp_path / "eval.json").write_text(measured[measured.index("{"):])
    figures = json.loads((tmp_path / "eval.json").read_text())
    assert figures["n"] == 4 and figures["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()

    invoke("manifest", "toynet.measured", "--weights", str(weights), "--source", "https://example.invalid/a",
           "--license", "MIT", "--metrics-from", str(tmp_path / "eval.json"), "-o", str(tmp_path / "reg"))
    invoke("manifest", "toynet.claimed", "--weights", str(weights), "--source", "https://example.invalid/a",
           "--license", "MIT", "--metrics-from", str(tmp_path / "eval.json"), "--metric", "top5=99.5",
           "-o", str(tmp_path / "reg"))
    measured_spec, claimed_spec = load_manifest(tmp_path / "reg" / "toy.toml")
    assert dict(measured_spec.metrics) == {"top1": round(figures["top1"], 3), "top5": round(figures["top5"], 3)}
    assert dict(claimed_spec.metrics) == {"top1": round(figures["top1"], 3), "top5": 99.5}

    (tmp_path / "other.json").write_text(json.dumps({**figures, "weights_sha256": "0" * 64}))
    other = invoke("manifest", "toynet.other", "--weights", str(weights), "--source", "https://example.invalid/a",
                   "--license", "MIT", "--metrics-from", str(tmp_path / "other.json"), "-o", str(tmp_path / "reg"),
                   check=False)
    assert other.exit_code == 1 and f"measured weights with sha256 {'0' * 64}, not this file" in other.output
    (tmp_path / "other.json").write_text('{"accuracy": 1}')
    other = invoke("manifest", "toynet.other", "--weights", str(weights), "--source", "https://example.invalid/a",
                   "--license", "MIT", "--metrics-from", str(tmp_path / "other.json"), "-o", str(tmp_path / "reg"),
                   check=False)
    assert other.exit_code == 1 and "is not the output of 'mhub eval --json'" in other.output


def test_model_args_shape_the_reference_and_reach_validation(tmp_path, toy, monkeypatch):
    """--model-arg is recorded in the entry, builds the model the reference comes from, and a registered
    tag's model_args are what `mhub validate NAME.TAG` builds with."""
    weights, _ = toy
    manifest(weights, tmp_path / "plain", "plain")
    manifest(weights, tmp_path / "reg", "scaled", "--model-arg", "logit_scale=2.5")
    (spec,) = load_manifest(tmp_path / "reg" / "toy.toml")
    assert spec.model_args == {"logit_scale": 2.5}
    plain = load_reference(tmp_path / "plain" / "references" / "toynet.plain.safetensors").logits
    scaled = load_reference(tmp_path / "reg" / "references" / "toynet.scaled.safetensors").logits
    torch.testing.assert_close(scaled, 2.5 * plain)
    monkeypatch.setenv("MHUB_REGISTRY", str(tmp_path / "reg"))
    _registry.reset_registry()
    assert "validation passed" in invoke("validate", "toynet.scaled", "--weights", str(weights)).output
    failed = invoke("validate", "toynet.scaled", "--weights", str(weights), "--model-arg", "logit_scale=1",
                    check=False)
    assert failed.exit_code == 1 and "FAIL" in failed.output
