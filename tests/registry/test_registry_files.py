"""Every manifest in registry/ validates and is usable, and every reference-output file it names exists.

The check is :func:`mhub_tools.manifest.registry_problems`, which tests/tools/test_manifest_tool.py shows
catching a missing, stale or orphaned reference file; here it must find nothing in registry/.
"""

from __future__ import annotations

import pytest
from conftest import REPO

import mhub
from mhub._manifest import load_manifest
from mhub_tools.manifest import registry_problems

REGISTRY = REPO / "registry"
MANIFESTS = sorted(REGISTRY.glob("*.toml"))


def test_the_registry_holds_manifests():
    # Guards the parametrisation below: an empty or moved registry/ would silently test nothing.
    assert MANIFESTS, f"no manifests found in {REGISTRY}"


def test_registry_has_no_problems():
    assert registry_problems(REGISTRY) == []


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_entry_is_usable_in_the_index(path):
    # Entries whose architecture or converter no plugin registers are dropped from the index with a warning.
    index = mhub.get_registry()
    specs = load_manifest(path)
    assert specs, f"{path.name} has no [[weights]] entries"
    missing = [spec.name for spec in specs if spec.name not in index.weights]
    assert not missing, f"{path.name}: entries left out of the registry index: {missing[:10]}"
