"""The plugin host: real entry points, fault isolation, duplicates, MHUB_LOAD_PLUGINS, warnings, --check.

Faulty plugins are installed as throwaway distributions (a ``*.dist-info`` with ``entry_points.txt`` on
``PYTHONPATH``) and exercised through ``python -m mhub`` in a subprocess, so each test sees a fresh host.
"""

from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from conftest import run_cli

import mhub
from mhub import PluginError, hookimpl, plugins


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


def child_env(root: Path, **env: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path, **env}


def cli_with(root: Path, *args: str, **env: str):
    return run_cli(*args, env=child_env(root, **env), check=False)


def plugin_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mhub: warning:")]


def statuses(root: Path, **env: str) -> dict[str, dict]:
    result = cli_with(root, "plugins", "--json", **env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


GOOD_PLUGIN = """
    from mhub import hookimpl

    @hookimpl
    def register_models(register):
        register("goodnet", "torch.nn:Identity", family="good")
"""


def faulty_plugin_is_skipped_alone(tmp_path: Path, source: str, expected: str) -> tuple[str, dict]:
    """Install ``source`` as plugin 'bad' next to a good one; check that `mhub list` works, listing the good
    plugin and the first-party ones, with exactly one warning line, which names 'bad' and says ``expected``.

    Returns:
        The warning line and ``mhub plugins --json``'s record of 'bad'.
    """
    root = fake_distribution(tmp_path, "bad-plugin", {"bad_mod": source, "good_mod": GOOD_PLUGIN},
                             {"bad": "bad_mod", "good": "good_mod"})
    result = cli_with(root, "list", "goodnet", "resnet18", "mobilenet_v2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["goodnet", "mobilenet_v2", "resnet18"]
    lines = plugin_warnings(result.stderr)
    assert len(lines) == 1 and "plugin 'bad'" in lines[0] and expected in lines[0], result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # no traceback, no second line
    return lines[0], statuses(root)["bad"]


# -- host faults: one warning line, the rest keeps working ---------------------------------------------
def test_hook_with_a_signature_pluggy_rejects_skips_the_plugin(tmp_path):
    source = """
        from mhub import hookimpl

        @hookimpl
        def register_weights(register):
            pass

        @hookimpl
        def register_models(registry):
            registry("badnet", "torch.nn:Identity", family="bad")
    """
    line, bad = faulty_plugin_is_skipped_alone(
        tmp_path, source, "hook register_models(registry) does not match the spec register_models(register)")
    assert "(bad-plugin) skipped:" in line
    assert bad["loaded"] is False and bad["hooks"] == [] and bad["status"].startswith("skipped: hook register_models")

    # The Python API: nothing half-loaded (no hook of the plugin registered, first-party models there), and
    # the warning points at the plugin's hook, not at mhub's source.
    probe = """
        import json, warnings
        import mhub
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = mhub.list_models()
        print(json.dumps({"names": names, "hooked": [c.name for c in mhub.plugins.pm.get_hookcallers(
            mhub.plugins.pm.get_plugin("good"))], "bad": mhub.plugins.pm.get_plugin("bad") is not None,
            "warnings": [[w.filename, w.lineno, w.category.__name__, str(w.message)] for w in caught]}))
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], capture_output=True, text=True,
                            env={**os.environ, **child_env(tmp_path)})
    report = json.loads(result.stdout)
    assert {"goodnet", "resnet18", "efficientnet_b0"} <= set(report["names"]) and "badnet" not in report["names"]
    assert report["bad"] is False and report["hooked"] == ["register_models"]
    ((filename, lineno, category, message),) = report["warnings"]
    assert (Path(filename), lineno, category) == (tmp_path / "bad_mod.py", 8, "PluginWarning")
    assert "does not match the spec" in message


def test_function_missing_the_hookimpl_marker_is_a_problem(tmp_path):
    source = """
        from mhub import hookimpl

        def register_models(register):
            register("badnet", "torch.nn:Identity", family="bad")
    """
    _, bad = faulty_plugin_is_skipped_alone(tmp_path, source, "register_models is not marked with @mhub.hookimpl")
    assert bad["hooks"] == [] and bad["status"] != "ok" and "never called" in bad["status"]


def test_misspelt_hook_is_a_problem(tmp_path):
    source = """
        from mhub import hookimpl

        @hookimpl
        def register_model(register):
            register("badnet", "torch.nn:Identity", family="bad")
    """
    _, bad = faulty_plugin_is_skipped_alone(
        tmp_path, source, "unknown hook 'register_model' (did you mean 'register_models'?)")
    assert bad["hooks"] == [] and bad["status"] != "ok"


def test_plugin_calling_sys_exit_at_import_is_skipped(tmp_path):
    source = """
        import sys

        sys.exit(3)  # e.g. argparse at module level
    """
    line, bad = faulty_plugin_is_skipped_alone(tmp_path, source, "failed to import bad_mod: called sys.exit(3)")
    assert bad["status"] == "skipped: failed to import bad_mod: called sys.exit(3)"


def test_plugin_that_fails_to_import_is_skipped(tmp_path):
    _, bad = faulty_plugin_is_skipped_alone(tmp_path, "import does_not_exist\n",
                                            "failed to import bad_mod: ModuleNotFoundError")
    assert bad["status"].startswith("skipped: failed to import bad_mod")


def test_hook_that_raises_leaves_nothing_of_its_plugin_behind(tmp_path):
    source = """
        from mhub import hookimpl

        @hookimpl
        def register_models(register):
            register("halfnet", "torch.nn:Identity", family="half")  # accepted, then the plugin fails

        @hookimpl
        def register_weights(register):
            raise RuntimeError("database on fire")
    """
    line, bad = faulty_plugin_is_skipped_alone(tmp_path, source, "register_weights raised RuntimeError: database on fire")
    assert bad["loaded"] is False
    root = tmp_path
    assert cli_with(root, "list", "halfnet").stdout == ""
    assert "unknown model 'halfnet'" in cli_with(root, "info", "halfnet").stderr


def test_command_hook_that_raises_adds_no_command_and_taken_names_are_refused(tmp_path):
    commands = """
        import click
        from mhub import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("half")
            def half():
                \"\"\"Half a command.\"\"\"

            raise RuntimeError("not today")
    """
    taken = """
        import click
        from mhub import hookimpl

        @hookimpl
        def register_commands(cli):
            cli.add_command(click.Command("list", callback=lambda: click.echo("hijacked")))
            cli.add_command(click.Command("hello", callback=lambda: click.echo("hello")))
    """
    root = fake_distribution(tmp_path, "cmd-plugin", {"raising_mod": commands, "taken_mod": taken},
                             {"raising": "raising_mod", "taken": "taken_mod"})
    result = cli_with(root, "--help")
    commands = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert result.returncode == 0 and "half" not in commands and "hello" in commands
    assert cli_with(root, "hello").stdout == "hello\n"
    listed = cli_with(root, "list", "resnet18")
    assert listed.stdout == "resnet18\n"
    lines = plugin_warnings(listed.stderr)
    assert any("plugin 'raising' (cmd-plugin) skipped: register_commands raised RuntimeError" in l for l in lines)
    assert any("plugin 'taken': command 'list' not added: the name is already taken" in l for l in lines)
    assert len(lines) == 2


def test_plugin_skipped_while_the_registry_is_built_keeps_no_command(tmp_path):
    """Its register_commands worked, then its register_weights raised: the plugin is skipped, commands too."""
    source = """
        import click
        from mhub import hookimpl

        @hookimpl
        def register_commands(cli):
            cli.add_command(click.Command("hello", callback=lambda: click.echo("hello")))

        @hookimpl
        def register_weights(register):
            raise RuntimeError("database on fire")
    """
    root = fake_distribution(tmp_path, "late-plugin", {"late_mod": source, "good_mod": GOOD_PLUGIN},
                             {"late": "late_mod", "good": "good_mod"})
    expected = "plugin 'late' (late-plugin) skipped: register_weights raised RuntimeError: database on fire"
    hello = cli_with(root, "hello")
    assert hello.returncode == 2 and hello.stdout == "", hello.stdout
    assert "No such command 'hello'" in hello.stderr
    assert plugin_warnings(hello.stderr) == [f"mhub: warning: {expected}"], hello.stderr
    help_text = cli_with(root, "--help")
    assert help_text.returncode == 0
    listed = [line.split()[0] for line in help_text.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert "hello" not in listed and "list" in listed and "convert" in listed  # the tools plugin keeps its own
    late = statuses(root)["late"]
    assert late["commands"] == [] and late["loaded"] is False and late["status"].startswith("skipped: ")
    assert cli_with(root, "list", "goodnet").stdout == "goodnet\n"


# -- MHUB_LOAD_PLUGINS ---------------------------------------------------------------------------------
@pytest.fixture
def two_plugins(tmp_path) -> Path:
    """Distribution ``mhub-good`` (entry point ``good``) and ``Other_Plugin`` (entry point ``other``)."""
    fake_distribution(tmp_path, "mhub-good", {"good_mod": GOOD_PLUGIN}, {"good": "good_mod"})
    return fake_distribution(tmp_path, "Other_Plugin", {"other_mod": GOOD_PLUGIN.replace("goodnet", "othernet")},
                             {"other": "other_mod"})


@pytest.mark.parametrize("value, listed", [
    ("mhub_good", ["goodnet"]),                           # PEP 503: _ = -
    ("MHUB.Good, other-plugin", ["goodnet", "othernet"]),  # case and . too; both distributions
    ("other", ["othernet"]),                              # an entry-point name
    ("-good", ["mobilenet_v2", "othernet", "resnet18"]),  # exclusions alone: everything else
    ("mhub,-resnet,mhub-good", ["goodnet", "mobilenet_v2"]),  # first-party plugins are the `mhub` distribution
    ("", []),
])
def test_load_plugins_selects_by_normalised_name(two_plugins, value, listed):
    result = cli_with(two_plugins, "list", "goodnet", "othernet", "resnet18", "mobilenet_v2",
                      MHUB_LOAD_PLUGINS=value)
    assert result.returncode == 0 and result.stdout.split() == listed, result.stderr
    assert plugin_warnings(result.stderr) == []


def test_load_plugins_warns_once_about_names_that_match_nothing(two_plugins):
    result = cli_with(two_plugins, "list", "goodnet", "othernet", MHUB_LOAD_PLUGINS="mhub-good,mhub-tinynets,-nope")
    assert result.returncode == 0 and result.stdout.split() == ["goodnet"]
    (line,) = plugin_warnings(result.stderr)
    assert "MHUB_LOAD_PLUGINS: 'mhub-tinynets', 'nope' match no installed plugin" in line
    assert "mhub-good:good" in line and "mhub:resnet" in line
    disabled = statuses(two_plugins, MHUB_LOAD_PLUGINS="-other")["other"]
    assert disabled["loaded"] is False and disabled["status"] == "disabled by MHUB_LOAD_PLUGINS"


# -- in-process registration ---------------------------------------------------------------------------
def test_rejected_plugin_object_is_not_registered_and_the_warning_names_its_line():
    class Bad:
        @staticmethod
        @hookimpl
        def register_converters(register):
            register("bad.identity", "builtins:dict")

        @staticmethod
        @hookimpl
        def register_models(registry, extra):
            raise AssertionError("never called")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert plugins.register_plugin(Bad, "bad-object") is False
        registry = mhub.get_registry()
    try:
        assert not plugins.pm.has_plugin("bad-object") and "bad.identity" not in registry.converters
        assert "resnet18" in registry.archs
        (warning,) = [w for w in caught if issubclass(w.category, plugins.PluginWarning)]
        assert Path(warning.filename) == Path(__file__)
        assert "unknown arguments registry, extra" in str(warning.message)
    finally:
        plugins.unregister_plugin("bad-object")


def test_warning_about_an_invalid_registration_points_at_the_register_call():
    class Odd:
        @staticmethod
        @hookimpl
        def register_models(register):
            register("Odd Name", "torch.nn:Identity", family="odd")
            register("oddnet", "torch.nn:Identity", family="odd")

    plugins.register_plugin(Odd, "odd")
    try:
        with pytest.warns(plugins.PluginWarning, match="invalid architecture name 'Odd Name'") as caught:
            registry = mhub.get_registry()
        (warning,) = caught
        assert Path(warning.filename) == Path(__file__)
        assert 'register("Odd Name"' in linecache.getline(warning.filename, warning.lineno)
        assert registry.archs["oddnet"].plugin == "odd"  # the valid registration stays
    finally:
        plugins.unregister_plugin("odd")


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
    assert len(plugin_warnings(result.stderr)) == 3


def test_duplicate_names_are_an_error_naming_both_plugins(tmp_path):
    dup = GOOD_PLUGIN.replace('"good"', '"dup"')
    root = fake_distribution(tmp_path, "dup-plugin", {"dup_mod": dup, "good_mod": GOOD_PLUGIN,
                                                      "other_mod": GOOD_PLUGIN.replace("goodnet", "othernet")},
                             {"dup": "dup_mod", "good": "good_mod", "other": "other_mod"})
    result = cli_with(root, "list")
    assert "othernet" in result.stdout.split() and "goodnet" not in result.stdout.split()
    assert "architecture 'goodnet' is registered by both plugin 'dup' and plugin 'good'" in result.stderr
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


def test_converters_sources_and_reference_models_are_registered_and_validated():
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

        @staticmethod
        @hookimpl
        def register_reference_models(register):
            register("toyref", "builtins:dict")
            register("timm", "builtins:dict")

    plugins.register_plugin(Extras, "extras")
    try:
        with pytest.warns(plugins.PluginWarning) as caught:
            registry = mhub.get_registry()
        messages = [str(w.message) for w in caught]
        assert any("converter 'toy.bad': version must be a positive integer" in m for m in messages)
        assert any("reference implementation 'timm' is built in" in m for m in messages)
        converter = registry.converter("toy.identity")
        assert (converter.version, converter.plugin) == (2, "extras")
        assert "toy.bad" not in registry.converters
        assert registry.sources["s3"] == ("builtins:object", "extras")
        assert registry.reference_models == {"toyref": ("builtins:dict", "extras")}
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
    assert statuses(root)["greet"]["commands"] == ["greet"]


# -- mhub plugins --check ------------------------------------------------------------------------------
def test_check_reports_every_problem_of_a_plugin_and_exits_1(tmp_path):
    plugin = """
        from pathlib import Path
        import torch  # the mistake --check exists for (a stand-in here, see below)
        from mhub import hookimpl

        @hookimpl
        def register_models(register):
            register("checknet", "no_such_module:build", family="check")

        @hookimpl
        def register_converters(register):
            register("up.check", "check_mod:missing", version=1)

        @hookimpl
        def register_weights(register):
            register(Path(__file__).with_name("check.toml"))

        def register_sources(register):
            pass
    """
    (tmp_path / "check.toml").write_text(
        '[[weights]]\nmodel = "checknet"\ntag = "x"\nsources = ["https://example.invalid/x.safetensors"]\n'
        f'sha256 = "{"ab" * 32}"\nformat = "safetensors"\nlicense = "MIT"\n'
        'reference = "references/checknet.x.safetensors"\n')
    root = fake_distribution(tmp_path, "check-plugin", {"check_mod": plugin}, {"check": "check_mod"})
    # A stand-in torch package: the guard goes by the module name, and the test pays no real torch import.
    (root / "torch").mkdir()
    (root / "torch" / "__init__.py").write_text("")
    result = cli_with(root, "plugins", "--check", "check_plugin")  # the distribution, normalised
    assert result.returncode == 1, result.stderr
    failed = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("FAIL")]
    assert len(failed) == 5, result.stdout
    assert "importing check_mod imports torch at " in failed[0] and "check_mod.py:3" in failed[0]
    assert "register_sources is not marked with @mhub.hookimpl" in failed[1]
    assert "model checknet: cannot load 'no_such_module:build'" in failed[2]
    assert "converter up.check: cannot load 'check_mod:missing'" in failed[3]
    assert "weights checknet.x: reference file" in failed[4] and "does not exist" in failed[4]
    assert result.stdout.rstrip().endswith("5 problems found")

    unknown = cli_with(root, "plugins", "--check", "nope")
    assert unknown.returncode == 1 and "no plugin called 'nope' is installed" in unknown.stdout


def test_check_passes_for_a_first_party_plugin():
    result = run_cli("plugins", "--check", "tools")  # the example plugin's test checks a family's lines
    assert result.stdout.splitlines() == [
        "plugin tools", "  ok    entry point: mhub_tools.plugin (mhub 0.1.0)",
        "  ok    torch-free import: mhub_tools.plugin", "  ok    hooks: register_commands",
        "  ok    commands: mhub convert, mhub hash, mhub validate, mhub manifest", "all checks passed"]
