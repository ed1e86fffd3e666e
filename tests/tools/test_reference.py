"""The canonical reference input and reference-output files."""

import hashlib
import struct

import pytest
import torch
from safetensors.torch import save_file

from mhub import ConversionError
from mhub_tools.reference import (InputSpec, input_size, load_reference, reference_input, save_reference,
                                  tensor_sha256)


def formula(b, c, y, x):
    """The documented formula, evaluated with Python floats (no torch), rounded to float32."""

    def tri(n, p):
        return (4 * abs(n % p - p / 2) - p) / p

    value = 1.2 * tri(x + 2 * y + 7 * c + 11 * b, 32) + 0.8 * tri(3 * x - y + 5 * c + 3 * b, 24) \
        + 0.5 * tri(x * y + 13 * c + 17 * b, 64)
    return struct.unpack("<f", struct.pack("<f", value))[0]


def test_input_equals_the_documented_formula_evaluated_independently():
    spec = InputSpec(size=20, in_chans=3, batch=2)
    x = reference_input(spec)
    assert x.dtype == torch.float32 and x.shape == (2, 3, 20, 20)
    expected = torch.tensor([[[[formula(b, c, i, j) for j in range(20)] for i in range(20)] for c in range(3)]
                             for b in range(2)], dtype=torch.float64)
    # Python's 1.2 * (k / 32) rounds differently from mhub's single division only in the last bits.
    assert torch.allclose(x.double(), expected, rtol=0, atol=1e-6)


def test_input_is_bit_identical_to_the_published_digest():
    # Any change to the formula invalidates every reference file in registry/: this digest must not move.
    x = reference_input(InputSpec(224, 3, 2))
    assert tensor_sha256(x) == "11ad71adab6248b99988b11160dd7d8077601fd43362f23e9b611a5a761e2ea0"
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == tensor_sha256(x)
    assert torch.equal(x, reference_input(InputSpec(224, 3, 2)))


def test_input_looks_like_a_normalised_image_batch():
    x = reference_input(InputSpec(96, 3, 2))
    assert float(x.min()) >= -2.5 and float(x.max()) <= 2.5
    assert abs(float(x.mean())) < 0.05 and 0.6 < float(x.std()) < 1.2
    assert not torch.equal(x[0], x[1]) and not torch.equal(x[0, 0], x[0, 1])
    assert reference_input(InputSpec(96, 1, 1)).shape == (1, 1, 96, 96)


def test_input_size_comes_from_the_crop():
    assert input_size({"crop": 288, "resize": 320}) == 288
    assert input_size({}) == 224 and input_size(None) == 224


def test_reference_file_round_trip(tmp_path):
    spec = InputSpec(32, 3, 2)
    logits = torch.arange(20, dtype=torch.float32).reshape(2, 10)
    path = save_reference(tmp_path / "refs" / "r.safetensors", logits, spec, model="toynet.x", producer="test")
    ref = load_reference(path)
    assert torch.equal(ref.logits, logits) and ref.input == spec
    assert ref.metadata["model"] == "toynet.x" and ref.metadata["input_sha256"] == tensor_sha256(reference_input(spec))
    assert path.stat().st_size < 4096


def test_reference_file_for_another_input_is_refused(tmp_path):
    spec = InputSpec(32, 3, 2)
    path = save_reference(tmp_path / "r.safetensors", torch.zeros(2, 10), spec)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
    metadata["input_sha256"] = "0" * 64  # as if made with an older formula
    save_file({"logits": torch.zeros(2, 10)}, str(tmp_path / "old.safetensors"), metadata=metadata)
    with pytest.raises(ConversionError, match="input_sha256 does not match"):
        load_reference(tmp_path / "old.safetensors")
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "weights.safetensors"))
    with pytest.raises(ConversionError, match="not a reference file"):
        load_reference(tmp_path / "weights.safetensors")
    with pytest.raises(ConversionError, match=r"must be \[batch=2"):
        save_reference(tmp_path / "bad.safetensors", torch.zeros(3, 10), spec)
