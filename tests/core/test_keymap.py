"""mhub.keymap: table- and function-driven converters, with errors that name what they cannot place."""

import pytest
import torch

from mhub import ConversionError
from mhub.keymap import map_keys, rename_keys

RULES = [
    (r"layer(\d)\.weight", r"blocks.\1.weight"),
    (r"scale", "ls.gamma", lambda t: t.reshape(-1)),
    (r"stage(\d)\.bias", lambda m: f"blocks.{int(m[1]) - 1}.bias"),
]


def test_renames_reshapes_and_computes_names_in_order():
    state = {"layer0.weight": torch.ones(2), "scale": torch.ones(3, 1, 1), "stage1.bias": torch.zeros(2)}
    out = rename_keys(state, RULES, layout="toy")
    assert list(out) == ["blocks.0.weight", "ls.gamma", "blocks.0.bias"]
    assert out["ls.gamma"].shape == (3,) and out["blocks.0.weight"] is state["layer0.weight"]


def test_unplaced_keys_are_listed():
    with pytest.raises(ConversionError, match=r"2 key\(s\) of the toy checkpoint have no place.*extra, layer0.bias"):
        rename_keys({"extra": 1, "layer0.bias": 2, "layer1.weight": 3}, RULES, layout="toy")
    assert rename_keys({"extra": 1, "layer1.weight": 3}, RULES, layout="toy", drop=[r"extra"]) == {"blocks.1.weight": 3}


def test_two_keys_on_one_name_are_an_error():
    rules = [(r"(a|b)", "x")]
    with pytest.raises(ConversionError, match="several keys map to one name: a and b -> x"):
        rename_keys({"a": 1, "b": 2}, rules, layout="toy")


def test_a_function_renames_with_the_same_checks():
    def rename(key):
        return {"a": "x", "b": "x"}.get(key)

    assert map_keys({"a": 1, "skip": 2}, rename, layout="toy", drop=[r"skip"]) == {"x": 1}
    with pytest.raises(ConversionError, match=r"1 key\(s\) of the toy checkpoint have no place in mhub's layout: c$"):
        map_keys({"a": 1, "c": 2}, rename, layout="toy")
    with pytest.raises(ConversionError, match="several keys map to one name: a and b -> x"):
        map_keys({"a": 1, "b": 2}, rename, layout="toy")
