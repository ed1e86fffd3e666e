"""The plugin host: real entry points, fault isolation, duplicates, MHUB_LOAD_PLUGINS."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, run_cli

import mhub
from mhub import PluginError, hookimpl, plugins

EXAMPLE = REPO / "examples" / "mhub-example-plugin"


def fake_distribution(root: Path, name: str, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
    """Write an installed-looking distribution (dist-info with entry points) plus its modules under root."""
    dist_info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[mhub]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


def cli_with(root: Path, *args: str, **env: str):
    import os

    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))
    return run_cli(*args, env={"PYTHONPATH": path, **env}, check=False)


GOOD_PLUGIN = """
    from mhub import hookimpl

    @hookimpl
    def register_models(register):
        register("goodnet", "torch.nn:Identity", family="good")
"""


@pytest.fixture(scope="module")
def example_installed(tmp_path_factory) -> Path:
    """pip-install the example plugin (a real distribution) into a private target directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(EXAMPLE)],
        check=True, capture_output=True,
    )
    return target


def test_installed_example_plugin_is_listed_and_built(example_installed):
    listed = cli_with(example_installed, "list", "tiny*")
    assert listed.stdout.split() == ["tinynet"], listed.stderr
    weights = cli_with(example_installed, "list", "--pretrained", "--json")
    assert "tinynet.demo" in json.loads(weights.stdout)
    info = json.loads(cli_with(example_installed, "info", "tinynet", "--json").stdout)
    assert info["plugin"] == "example" and info["weights"][0]["num_classes"] == 10
    plugins_out = json.loads(cli_with(example_installed, "plugins", "--json").stdout)
    example = next(p for p in plugins_out if p["name"] == "example")
    assert example["distribution"] == "mhub-example-plugin" and example["status"] == "ok"
    assert example["hooks"] == ["register_models", "register_weights"]
    built = subprocess.run(
        [sys.executable, "-c", "import mhub, torch; m = mhub.create('tinynet', num_classes=5, in_chans=1);"
         "print(m(torch.zeros(2, 1, 16, 16)).shape[-1], sum(p.numel() for p in mhub.create('tinynet', num_classes=1000).parameters()))"],
        env={**__import__("os").environ, "PYTHONPATH": str(example_installed)}, capture_output=True, text=True,
    )
    assert built.stdout.split() == ["5", str(info["num_params"])], built.stderr


def test_plugin_that_fails_to_import_is_skipped_with_one_line(tmp_path):
    root = fake_distribution(tmp_path, "broken-plugin", {"broken_mod": "import does_not_exist\n",
                                                          "good_mod": GOOD_PLUGIN},
                             {"broken": "broken_mod", "good": "good_mod"})
    result = cli_with(root, "list", "goodnet", "resnet*")
    assert result.returncode == 0
    assert "goodnet" in result.stdout.split()
    warnings = [l for l in result.stderr.splitlines() if "broken" in l]
    assert len(warnings) == 1 and "plugin 'broken' (broken-plugin) skipped: failed to import broken_mod" in warnings[0]
    assert "ModuleNotFoundError" in warnings[0]
    status = json.loads(cli_with(root, "plugins", "--json").stdout)
    assert next(p for p in status if p["name"] == "broken")["status"].startswith("failed to import")


def test_hook_that_raises_is_isolated(tmp_path):
    raising = """
        from mhub import hookimpl

        @hookimpl
        def register_models(register):
            register("halfnet", "torch.nn:Identity", family="half")
            raise RuntimeError("database on fire")
    """
    root = fake_distribution(tmp_path, "raising-plugin", {"raising_mod": raising, "good_mod": GOOD_PLUGIN},
                             {"raising": "raising_mod", "good": "good_mod"})
    result = cli_with(root, "list")
    assert "goodnet" in result.stdout.split()
    assert "plugin 'raising': register_models raised RuntimeError: database on fire" in result.stderr


def test_invalid_manifest_and_invalid_model_are_skipped(tmp_path):
    bad = """
        from pathlib import Path
        from mhub import hookimpl

        @hookimpl
        def register_models(register):
            register("Bad Name", "torch.nn:Identity", family="x")
            register("nobuilder", 42, family="x")

        @hookimpl
        def register_weights(register):
            register(Path(__file__).with_name("bad.toml"))
    """
    (tmp_path / "bad.toml").write_text('[[weights]]\nmodel = "goodnet"\ntag = "x"\nsources = []\n'
                                       'sha256 = "00"\nformat = "safetensors"\nlicense = "MIT"\n')
    root = fake_distribution(tmp_path, "bad-plugin", {"bad_mod": bad, "good_mod": GOOD_PLUGIN},
                             {"bad": "bad_mod", "good": "good_mod"})
    result = cli_with(root, "list")
    assert "goodnet" in result.stdout.split()
    assert "plugin 'bad': skipped invalid registration: invalid architecture name 'Bad Name'" in result.stderr
    assert "builder 42 is not a callable" in result.stderr
    assert "bad.toml: entry 0 (goodnet.x): field 'sources': at least one source is required" in result.stderr


def test_duplicate_names_are_an_error_naming_both_plugins(tmp_path):
    dup = GOOD_PLUGIN.replace('"good"', '"dup"')
    root = fake_distribution(tmp_path, "dup-plugin", {"dup_mod": dup, "good_mod": GOOD_PLUGIN,
                                                      "other_mod": GOOD_PLUGIN.replace("goodnet", "othernet")},
                             {"dup": "dup_mod", "good": "good_mod", "other": "other_mod"})
    result = cli_with(root, "list")
    assert "othernet" in result.stdout.split() and "goodnet" not in result.stdout.split()
    assert "architecture 'goodnet' is registered by both plugin 'dup' and plugin 'good'" in result.stderr \
        or "architecture 'goodnet' is registered by both plugin 'good' and plugin 'dup'" in result.stderr
    info = cli_with(root, "info", "goodnet")
    assert info.returncode == 1 and "registered by both" in info.stderr


def test_duplicate_in_process_raises_plugin_error_on_use():
    class A:
        @staticmethod
        @hookimpl
        def register_models(register):
            register("twin", "torch.nn:Identity", family="t")

    class B(A):
        pass

    plugins.register_plugin(A, "twin-a")
    plugins.register_plugin(B, "twin-b")
    try:
        with pytest.warns(plugins.PluginWarning, match="registered by both plugin 'twin-a' and plugin 'twin-b'"):
            registry = mhub.get_registry()
        with pytest.raises(PluginError, match="twin-a.*twin-b"):
            registry.resolve("twin")
    finally:
        plugins.unregister_plugin("twin-a")
        plugins.unregister_plugin("twin-b")


def test_mhub_load_plugins_restricts_and_empty_loads_none(tmp_path):
    root = fake_distribution(tmp_path, "good-plugin", {"good_mod": GOOD_PLUGIN}, {"good": "good_mod"})
    only = cli_with(root, "list", MHUB_LOAD_PLUGINS="good-plugin")
    assert only.stdout.split() == ["goodnet"]
    none = cli_with(root, "plugins", "--json", MHUB_LOAD_PLUGINS="")
    assert json.loads(none.stdout) == []


def test_converters_and_sources_are_registered_and_validated():
    class Extras:
        @staticmethod
        @hookimpl
        def register_converters(register):
            register("toy.identity", "builtins:dict", version=2)
            register("toy.bad", "builtins:dict", version=0)

        @staticmethod
        @hookimpl
        def register_sources(register):
            register("s3", "builtins:object")

    plugins.register_plugin(Extras, "extras")
    try:
        with pytest.warns(plugins.PluginWarning, match="converter 'toy.bad': version must be a positive integer"):
            registry = mhub.get_registry()
        converter = registry.converter("toy.identity")
        assert (converter.version, converter.plugin) == (2, "extras")
        assert "toy.bad" not in registry.converters
        assert registry.sources["s3"] == ("builtins:object", "extras")
    finally:
        plugins.unregister_plugin("extras")


def test_commands_hook_adds_a_cli_command(tmp_path):
    commands = """
        import click
        from mhub import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            @click.argument("name")
            def greet(name):
                \"\"\"Say hello.\"\"\"
                click.echo(f"hello {name}")
    """
    root = fake_distribution(tmp_path, "greet-plugin", {"greet_mod": commands}, {"greet": "greet_mod"})
    assert cli_with(root, "greet", "world").stdout == "hello world\n"
    assert "Say hello." in cli_with(root, "--help").stdout
