"""Option parsing shared by the core commands and the toolchain's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import MhubError


def parse_pairs(pairs: Sequence[str], what: str) -> dict[str, Any]:
    """``["top1=76.1", "mean=0.5,0.5,0.5"]`` -> ``{"top1": 76.1, "mean": [0.5, 0.5, 0.5]}``.

    Ints stay ints, ``true``/``false`` become booleans, anything else stays text.

    Raises:
        MhubError: a pair without ``=`` or without a key; ``what`` names the option in the message.
    """

    def number(text: str) -> Any:
        text = text.strip()
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MhubError(f"{what} '{pair}': expected KEY=VALUE")
        values = [number(v) for v in value.split(",")]
        out[key.strip()] = values if len(values) > 1 else values[0]
    return out
