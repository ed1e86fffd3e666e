"""What the registry index holds: architecture specs and weight specs (parsed from manifests)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._lazy import import_string


@dataclass(frozen=True)
class ArchSpec:
    """An architecture a plugin registers.

    Attributes:
        name: registry name, torchvision's where torchvision has the model (``resnext101_32x8d``).
        builder: ``"module:function"`` (or a callable) taking ``num_classes``, ``in_chans`` and ``**defaults``.
        family: family name (``resnet``), used by ``mhub list --family``.
        defaults: keyword arguments the builder receives unless the caller overrides them.
        paper: citation or URL of the paper the architecture comes from.
        first_conv: state-dict prefix of the first convolution (for ``in_chans`` adaptation).
        classifier: state-dict prefix of the final linear layer (for ``num_classes`` adaptation).
        aux_classifiers: state-dict prefixes of auxiliary classifiers (training-only heads a builder adds on
            request, e.g. GoogLeNet's ``aux1``/``aux2``); weights may lack them, and pretrained loading then
            initialises them fresh.
        num_params: parameter count at 1000 classes and 3 input channels, where the plugin states it.
        description: one line shown by ``mhub info``.
        aliases: other names that resolve to this architecture (e.g. timm's names), each mapped to the tag its
            bare form selects, or ``None`` for the architecture's default weights.
        plugin: name of the plugin that registered it.
    """

    name: str
    builder: Any
    family: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    paper: str | None = None
    first_conv: str | None = None
    classifier: str | None = None
    aux_classifiers: tuple[str, ...] = ()
    num_params: int | None = None
    description: str | None = None
    aliases: Mapping[str, str | None] = field(default_factory=dict)
    plugin: str = ""

    def load_builder(self):
        """Import and return the builder callable (this is where torch gets imported)."""
        return import_string(self.builder)

    def builder_name(self) -> str:
        if isinstance(self.builder, str):
            return self.builder
        return f"{self.builder.__module__}:{self.builder.__qualname__}"


@dataclass(frozen=True)
class WeightSpec:
    """One ``[[weights]]`` entry of a manifest; docs/manifest.md describes each field."""

    model: str
    tag: str
    sources: tuple[str, ...]
    license: str
    format: str
    sha256: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None
    filename: str | None = None
    converter: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    preprocess: Mapping[str, Any] = field(default_factory=dict)
    num_classes: int = 1000
    first_conv: str | None = None
    classifier: str | None = None
    reference: str | None = None
    model_args: Mapping[str, Any] = field(default_factory=dict)
    default: bool = False
    description: str | None = None
    origin: str = ""  # manifest file the entry came from
    plugin: str = ""

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def expected_digest(self) -> str:
        """The full sha256 when known, else the upstream prefix."""
        return self.sha256 or self.sha256_prefix or ""

    @property
    def hash_strength(self) -> str:
        """``"sha256"`` for a full digest, ``"prefix-N"`` for an upstream prefix of N hex digits."""
        return "sha256" if self.sha256 else f"prefix-{len(self.sha256_prefix or '')}"

    def require_classifier(self, task: str) -> None:
        """Raise unless these weights have a usable classifier (``num_classes > 0``).

        Args:
            task: what needs class scores, for the message (``"classify images"``).

        Raises:
            NoWeightsError: headless weights (``num_classes = 0``).
        """
        if self.num_classes == 0:
            from ._errors import NoWeightsError

            raise NoWeightsError(f"{self.name} has no usable classifier (headless weights, num_classes = 0), so it "
                                 f"cannot {task}; use it as a feature extractor: mhub.create('{self.name}', "
                                 "pretrained=True) gives pooled features")

    @property
    def reference_path(self) -> Path | None:
        """Absolute path of the reference-output file, resolved next to the manifest."""
        if self.reference is None:
            return None
        return Path(self.origin).parent / self.reference

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v not in (None, {}, ()) and k != "plugin"}
        out["sources"] = list(self.sources)
        out["metrics"] = dict(self.metrics)
        out["preprocess"] = dict(self.preprocess)
        out["model_args"] = dict(self.model_args)
        return out
