"""The built wheel carries the core, every first-party plugin, the toolchain and the registry manifests."""

import configparser
import json
import re
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(out), str(REPO)], check=True, capture_output=True)
    (path,) = out.glob("mhub-*.whl")
    return path


def wheel_plugins(wheel) -> dict[str, str]:
    """The ``[mhub]`` entry points the wheel declares: name -> module."""
    archive = zipfile.ZipFile(wheel)
    (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # entry-point names are case-sensitive
    parser.read_string(archive.read(entry_points).decode())
    return dict(parser["mhub"]) if parser.has_section("mhub") else {}


def test_wheel_contains_all_packages_and_manifests(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("mhub", "mhub/cli", "mhub/hub", "mhub/layers", "mhub_registry"):
        assert f"{package}/__init__.py" in names, package
    assert "mhub/data/imagenet-1k-classes.txt" in names and "mhub/data/imagenet-1k-wnids.txt" in names
    manifests = {n for n in names if n.startswith("mhub_registry/") and n.endswith(".toml")}
    assert manifests == {f"mhub_registry/{p.name}" for p in (REPO / "registry").glob("*.toml")}


def test_wheel_contains_the_package_of_every_plugin_it_declares(wheel):
    """Every ``[mhub]`` entry point the wheel declares (``X.plugin``) has its module (``X/plugin.py``) and
    package (``X/__init__.py``) in the wheel: a plugin package left out of the build fails here."""
    names = set(zipfile.ZipFile(wheel).namelist())
    declared = wheel_plugins(wheel)
    assert {"resnet", "tools"} <= declared.keys(), declared  # the section was read
    missing = []
    for name, value in declared.items():
        parts = value.partition(":")[0].strip().split(".")
        module = "/".join(parts)
        if f"{module}.py" not in names and f"{module}/__init__.py" not in names:
            missing.append(f"{name}: {module}.py")
        missing += [f"{name}: {path}" for path in (f"{'/'.join(parts[:i])}/__init__.py" for i in range(1, len(parts)))
                    if path not in names]
    assert not missing, missing


def test_installed_wheel_lists_the_same_as_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = ("import json, mhub; print(json.dumps([mhub.__file__, mhub.list_models(), "
             "mhub.list_models(pretrained=True)]))")
    from_wheel = json.loads(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                                           check=True).stdout)
    from_checkout = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                              check=True).stdout)
    assert from_wheel[0].startswith(str(target))
    assert from_checkout[0].startswith(str(REPO / "core"))
    assert from_wheel[1:] == from_checkout[1:]
    assert len(from_wheel[2]) > 0


# (mhub/data/ is package data; the repository's data/ holds the upstream facts)
REPOSITORY_ONLY = re.compile(r"(?<![\w/.-])(?:tests|scripts|shared|benchmarks)/|(?<![\w/.-])data/(?:upstream|README)"
                             r"|DESIGN\.md")


def test_shipped_files_and_docs_point_at_nothing_only_a_checkout_has(wheel):
    """Docstrings, comments and manifests in the wheel, and docs/, name no repository-only file (tests/,
    scripts/, the shared data, DESIGN.md...): a pip user cannot open them. (README's layout table and
    CONTRIBUTING.md are for a checkout, and may.)"""
    archive = zipfile.ZipFile(wheel)
    texts = {name: archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
             if not name.split("/")[0].endswith(".dist-info")}
    texts.update({str(path.relative_to(REPO)): path.read_text() for path in sorted((REPO / "docs").glob("*.md"))})
    found = [f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group()}"
             for name, text in texts.items() for match in REPOSITORY_ONLY.finditer(text)]
    assert not found, found
