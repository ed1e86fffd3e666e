"""CONTRIBUTING.md, "Adding an inverted-residual family or block type": every Python block runs as written (in a fresh interpreter, so that registering a
block there cannot leak into other tests) and builds what the text says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "CONTRIBUTING.md"
SECTION = re.search(r"^## Adding an inverted-residual family or block type\n(.*?)(?=^## )",
                    DOC.read_text(encoding="utf-8"), re.S | re.M).group(1)
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, re.S)


def test_the_document_has_both_examples():
    assert len(BLOCKS) == 2
    assert "NetConfig(" in BLOCKS[0] and "register_block(" not in BLOCKS[0]  # a family: only a table
    assert BLOCKS[1].count("\ndef ") == 1 and "register_block(" in BLOCKS[1]  # a block: one function


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_code_block_runs(index):
    result = subprocess.run([sys.executable, "-c", BLOCKS[index]], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    if index == 0:
        assert result.stdout.strip() == "18 blocks"  # 1 + 2 + 4 + 5 + 4 + 2 repeats


def test_registered_block_names_are_validated():
    from mhub_mobilenet.configs import NetConfig

    with pytest.raises(ValueError, match="blocks: conv, dwsep, fused, mbconv"):
        NetConfig((("sandglass", 3, 0.5, 144, 1, 1, 0, None),), stem=32, act="relu6")
