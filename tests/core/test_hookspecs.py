"""Every hook is documented in docs/plugins.md and exercised by at least one other test."""

import inspect
import re

import pytest

from conftest import REPO

from mhub import hookspecs

HOOKS = sorted(name for name, obj in vars(hookspecs).items()
               if inspect.isfunction(obj) and hasattr(obj, "mhub_spec"))
TEST_SOURCES = {path: path.read_text() for path in (REPO / "tests").rglob("test_*.py")
                if path.name != "test_hookspecs.py"}


def test_hooks_are_found():
    assert HOOKS == ["register_commands", "register_converters", "register_models", "register_reference_models",
                     "register_sources", "register_weights"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    docs = (REPO / "docs" / "plugins.md").read_text()
    assert re.search(rf"^### `{hook}\(", docs, re.M), f"{hook} has no section in docs/plugins.md"
    assert inspect.getdoc(getattr(hookspecs, hook)), f"{hook} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    users = [p.name for p, text in TEST_SOURCES.items() if re.search(rf"def {hook}\(", text)]
    assert users, f"no test implements {hook}"
