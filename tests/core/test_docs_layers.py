"""docs/layers.md: the worked example runs as written; every public layer, builder and family helper is documented."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest

from conftest import REPO

import mhub.builders
import mhub.families
import mhub.layers

DOC = REPO / "docs" / "layers.md"
SECTION = "## Worked example: a new family"


def example_blocks() -> list[str]:
    """The ```python blocks of the worked example, in order."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return re.findall(r"^```python\n(.*?)^```$", text[start:end if end != -1 else None], re.M | re.S)


def public_builders() -> list[str]:
    return sorted(name for name, obj in vars(mhub.builders).items() if not name.startswith("_")
                  and (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == "mhub.builders")


def test_worked_example_runs_as_written(tmp_path):
    blocks = example_blocks()
    assert len(blocks) >= 4 and "register_plugin" in blocks[-1]
    script = tmp_path / "worked_example.py"
    script.write_text("\n".join(blocks) + '\nprint("worked example ok")\n')
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout == "worked example ok\n", result.stderr[-3000:]
    assert "mhub_resnet" not in "".join(blocks) and "mhub_mobilenet" not in "".join(blocks)


@pytest.mark.parametrize("name", [*mhub.layers.__all__, *public_builders(), *mhub.families.__all__])
def test_public_name_is_documented(name):
    assert re.search(rf"`{name}[`(]", DOC.read_text(encoding="utf-8")), f"{name} is missing from docs/layers.md"
