"""Every manifest in registry/ validates, and every reference-output file an entry names exists and fits.

The files are found when the tests are collected, so manifests and references added later are covered too.
"""

from __future__ import annotations

import pytest
from conftest import REPO

import mhub
from mhub._manifest import load_manifest

REGISTRY = REPO / "registry"
MANIFESTS = sorted(REGISTRY.glob("*.toml"))
REFERENCES = sorted((REGISTRY / "references").glob("*")) if (REGISTRY / "references").is_dir() else []


def entries_with_references():
    out = []
    for path in MANIFESTS:
        try:
            specs = load_manifest(path)
        except mhub.ManifestError:
            continue  # reported by test_manifest_validates
        out += [pytest.param(spec, id=spec.name) for spec in specs if spec.reference]
    return out


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_manifest_validates(path):
    specs = load_manifest(path)
    assert specs, f"{path.name} has no [[weights]] entries"


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_entry_is_usable_in_the_index(path):
    # Entries whose architecture or converter no plugin registers are dropped from the index with a warning.
    index = mhub.get_registry()
    missing = [spec.name for spec in load_manifest(path) if spec.name not in index.weights]
    assert not missing, f"{path.name}: entries left out of the registry index: {missing[:10]}"


@pytest.mark.parametrize("spec", entries_with_references())
def test_reference_file_exists_and_matches_the_reference_input(spec):
    from mhub_tools.reference import load_reference

    path = spec.reference_path
    assert path.is_file(), f"{spec.origin}: {spec.name} names reference '{spec.reference}', which does not exist"
    assert path.resolve().is_relative_to(REGISTRY.resolve())
    ref = load_reference(path)  # checks the input description and its sha256 against today's formula
    assert ref.logits.shape[1] == spec.num_classes
    assert ref.input.size == spec.preprocess.get("crop", 224)


def test_no_reference_file_is_orphaned():
    named = {spec.reference_path.resolve() for path in MANIFESTS for spec in load_manifest(path) if spec.reference}
    orphans = [p.name for p in REFERENCES if p.resolve() not in named]
    assert not orphans, f"reference files no entry names: {orphans}"


def test_the_registry_holds_manifests():
    # Guards the parametrisation above: an empty or moved registry/ would silently test nothing.
    assert MANIFESTS, f"no manifests found in {REGISTRY}"
