"""Manifest validation: every malformed entry is an error naming file, entry and field."""

import json
import os
import tomllib

import pytest

from mhub import ManifestError
from mhub._manifest import default_filename, dump_manifest, load_manifest, parse_manifest

DIGEST = "ab" * 32
GOOD = {
    "model": "tinynet", "tag": "demo", "sources": ["https://example.invalid/tiny-abcd1234.pth"],
    "sha256": DIGEST, "size": 12, "format": "torch-pickle", "license": "MIT",
    "metrics": {"top1": 71.5}, "preprocess": {"resize": 256, "crop": 224, "mean": [0.5, 0.5, 0.5]},
}


def parse(*entries):
    return parse_manifest({"weights": list(entries)}, origin="fam.toml")


def with_(**changes):
    entry = {**GOOD, **changes}
    return {k: v for k, v in entry.items() if v is not None}


def test_good_entry_round_trips_through_toml(tmp_path):
    (spec,) = parse(GOOD)
    assert spec.name == "tinynet.demo" and spec.hash_strength == "sha256"
    path = tmp_path / "m.toml"
    path.write_text(dump_manifest([spec]))
    (again,) = load_manifest(path)
    assert again.to_dict() | {"origin": ""} == spec.to_dict() | {"origin": ""}


@pytest.mark.parametrize("entry, field, words", [
    (with_(license=None), "license", "missing"),
    (with_(sources=None), "sources", "missing"),
    (with_(sha256="abc"), "sha256", "64 lower-case hex"),
    (with_(sha256=DIGEST.upper()), "sha256", "64 lower-case hex"),
    (with_(sha256=None), "sha256", "missing"),
    (with_(format="onnx"), "format", "unknown format 'onnx'"),
    (with_(filename="../../etc/passwd"), "filename", "escape"),
    (with_(filename="/etc/passwd"), "filename", "absolute"),
    (with_(filename="sub/dir.bin"), "filename", "plain file name"),
    (with_(reference="../outside.safetensors"), "reference", "escape"),
    (with_(sources=["https://host/a/../../b.pth"]), "sources", "'..'"),
    (with_(sources=["https://host/a/%2e%2e/b.pth"]), "sources", "'..'"),
    (with_(sources=["/abs/file.pth"]), "sources", "not a URL"),
    (with_(sources=["hf://only-org"]), "sources", "hf://org/repo/path"),
    (with_(size=-1), "size", "non-negative"),
    (with_(size="12"), "size", "expected int"),
    (with_(colour="red"), "colour", "unknown field"),
    (with_(metrics={"top1": "high"}), "metrics.top1", "number"),
    (with_(preprocess={"crop": 224, "flip": True}), "preprocess.flip", "unknown"),
    (with_(sha256_prefix="ffff0000"), "sha256_prefix", "does not match"),
    (with_(tag="Bad-Tag"), "tag", "lower-case"),
    (with_(tag="t" * 260), "tag", "at most 100"),
    (with_(num_classes=-1), "num_classes", "must be positive"),
    (with_(preprocess={"crop_mode": "stretch"}), "preprocess.crop_mode", "'stretch'; expected one of center"),
    (with_(preprocess={"crop_pct": 1.5}), "preprocess.crop_pct", "out of range"),
    (with_(preprocess={"test_size": 0}), "preprocess.test_size", "out of range"),
    (with_(model_args={"img_size": {"h": 1}}), "model_args.img_size", "boolean, number, string or array"),
    (with_(model_args={"num_classes": 10}), "model_args.num_classes", "set by mhub.create"),
    (with_(model_args=[1]), "model_args", "expected dict"),
])
def test_invalid_entries_name_file_entry_and_field(entry, field, words):
    with pytest.raises(ManifestError) as info:
        parse(GOOD, entry) if entry.get("tag") != GOOD["tag"] else parse(entry)
    message = str(info.value)
    assert message.startswith("fam.toml: entry ")
    assert f"field '{field}'" in message and words in message, message
    assert "\n" not in message


def test_new_fields_round_trip():
    entry = with_(num_classes=0, model_args={"img_size": 384, "transform_input": True},
                  preprocess={"crop": 384, "crop_pct": 1, "crop_mode": "squash", "test_size": 448,
                              "test_crop_pct": 1.0})
    (spec,) = parse(entry)
    assert spec.num_classes == 0 and spec.model_args == {"img_size": 384, "transform_input": True}
    assert spec.preprocess == {"crop": 384, "crop_pct": 1.0, "crop_mode": "squash", "test_size": 448,
                               "test_crop_pct": 1.0}
    (again,) = parse_manifest(tomllib.loads(dump_manifest([spec])), origin="again.toml")
    assert again.model_args == spec.model_args and again.preprocess == spec.preprocess


def test_duplicate_tags_are_an_error_naming_both_entries():
    with pytest.raises(ManifestError, match=r"entry 1 \(tinynet.demo\): duplicate tag 'demo', already defined by entry 0"):
        parse(GOOD, dict(GOOD))


def test_prefix_only_entry_has_weaker_hash_strength():
    (spec,) = parse(with_(sha256=None, sha256_prefix="abababab"))
    assert spec.hash_strength == "prefix-8" and spec.expected_digest == "abababab"


def test_invalid_toml_and_top_level_are_reported(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[[weights]\nmodel = ")
    with pytest.raises(ManifestError, match=r"broken.toml: invalid TOML"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="unknown top-level"):
        parse_manifest(tomllib.loads("[model]\nname='x'"), origin="x.toml")


def test_cache_file_name_comes_from_source_and_never_escapes():
    (spec,) = parse(GOOD)
    assert default_filename(spec) == "tiny-abcd1234.pth"
    (hf,) = parse(with_(sources=["hf://org/repo/sub/model.safetensors@abc123"], format="safetensors"))
    assert default_filename(hf) == "model.safetensors"


@pytest.mark.parametrize("source,fmt,name", [
    ("tiny://resnet_tiny", "safetensors", "tinynet.demo.safetensors"),  # a plugin scheme: no path segment
    ("https://example.invalid/weights/abc123", "safetensors", "abc123.safetensors"),  # no suffix at all
    ("https://example.invalid/model.bin", "safetensors", "model.safetensors"),  # a pickle suffix, safetensors bytes
    ("https://example.invalid/model.safetensors", "torch-pickle", "model.pth"),
    ("https://example.invalid/resnet-v1.5", "torch-pickle", "resnet-v1.5.pth"),
    ("https://example.invalid/model.ckpt", "torch-pickle", "model.ckpt"),
])
def test_cache_file_name_follows_the_format_not_the_url(source, fmt, name):
    (spec,) = parse(with_(sources=[source], format=fmt))
    assert default_filename(spec) == name


def test_parsed_copy_is_reused_and_follows_edits(tmp_path, isolated_home):
    path = tmp_path / "fam.toml"
    path.write_text(dump_manifest([GOOD]))
    assert load_manifest(path)[0].license == "MIT"
    (copy,) = (isolated_home / "index").glob("*.json")
    assert "tinynet" in copy.read_text()
    path.write_text(dump_manifest([{**GOOD, "license": "Apache-2.0 "}]))  # new size and mtime
    assert load_manifest(path)[0].license == "Apache-2.0 "
    copy.write_text("{not json")  # a damaged copy is ignored and rewritten
    assert load_manifest(path)[0].license == "Apache-2.0 "
    assert json.loads(copy.read_text())["data"]["weights"][0]["license"] == "Apache-2.0 "


def test_planted_or_foreign_copies_are_not_trusted(tmp_path, isolated_home):
    """A copy under a shared MHUB_HOME/index must not be able to rewrite a manifest's sources."""
    path = tmp_path / "fam.toml"
    path.write_text(dump_manifest([GOOD]))
    load_manifest(path)
    (copy,) = (isolated_home / "index").glob("*.json")
    record = json.loads(copy.read_text())
    record["data"]["weights"][0]["sources"] = ["https://evil.invalid/x.pth"]
    copy.write_text(json.dumps(record))  # same path, same content hash, forged data, but writable by others:
    os.chmod(copy, 0o666)
    assert load_manifest(path)[0].sources == tuple(GOOD["sources"])
    record["sha256"] = "00" * 32  # a copy recording another content hash is stale
    copy.write_text(json.dumps(record))
    os.chmod(copy, 0o644)
    assert load_manifest(path)[0].sources == tuple(GOOD["sources"])
    if os.getuid() == 0:  # another user's file (CI runs as root, so it can hand the copy to 'nobody')
        record = json.loads(copy.read_text())
        record["data"]["weights"][0]["sources"] = ["https://evil.invalid/x.pth"]
        copy.write_text(json.dumps(record))
        os.chown(copy, 65534, 65534)
        assert load_manifest(path)[0].sources == tuple(GOOD["sources"])


def test_invalid_toml_is_never_cached_as_valid(tmp_path, isolated_home):
    path = tmp_path / "fam.toml"
    path.write_text(dump_manifest([{**GOOD, "format": "onnx"}]))
    for _ in range(2):  # the second read comes from the copy and is validated the same way
        with pytest.raises(ManifestError, match="unknown format 'onnx'"):
            load_manifest(path)
