"""Inference throughput of one architecture: eager, fused, fused + channels-last (+ compiled), and its peers.

Every variant gets the same input batch; after a warm-up, the variants are timed in turn, round after round,
in forward then reverse order (interleaved, so a machine that slows down or speeds up during the run affects
them alike). A round times enough consecutive calls of one variant to last at least ``min_round_s``. A
variant's throughput and latency are medians over rounds of the time per call; its speed-up is the median
over rounds of the baseline's time over its own in the same round (paired, so load that changes between
rounds cancels). Peers are torchvision's or timm's model of the same architecture
with random weights (nothing is downloaded); :data:`TIMM_NAMES` maps our names to timm's where they differ.
On CPU, subnormal floats are flushed to zero while timing, for every variant alike.
"""

from __future__ import annotations

import copy
import importlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ._errors import MhubError
from .inference import _first_line, compile_model, fuse_in_place

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PEERS = ("torchvision", "timm")
COMPILED = "mhub fused + channels-last + compile"

# Our name (torchvision's, where torchvision has the model) -> timm's name for the same architecture, where
# timm spells it differently; elsewhere the names agree.
TIMM_NAMES = {
    "mobilenet_v2": "mobilenetv2_100", "mobilenet_v3_large": "mobilenetv3_large_100",
    "mobilenet_v3_small": "mobilenetv3_small_100", "mnasnet0_5": "mnasnet_050", "mnasnet0_75": "mnasnet_075",
    "mnasnet1_0": "mnasnet_100", "efficientnet_v2_s": "efficientnetv2_s", "efficientnet_v2_m": "efficientnetv2_m",
    "efficientnet_v2_l": "efficientnetv2_l", "vit_b_16": "vit_base_patch16_224", "vit_b_32": "vit_base_patch32_224",
    "vit_l_16": "vit_large_patch16_224", "vit_l_32": "vit_large_patch32_224", "vit_h_14": "vit_huge_patch14_224",
}


class BenchError(MhubError):
    """A benchmark that cannot run as asked (no such device, dtype or peer model)."""


@dataclass
class Timing:
    """One variant's figures: ``seconds`` holds the time per call of each round."""

    label: str
    batch_size: int
    seconds: list[float] = field(default_factory=list)

    @property
    def latency_ms(self) -> float:
        return 1000 * statistics.median(self.seconds)

    @property
    def images_per_second(self) -> float:
        return self.batch_size / statistics.median(self.seconds)

    def to_dict(self) -> dict:
        return {"label": self.label, "images_per_second": self.images_per_second, "latency_ms": self.latency_ms,
                "latency_ms_min": 1000 * min(self.seconds), "rounds_ms": [1000 * s for s in self.seconds]}


@dataclass
class BenchReport:
    """What :func:`benchmark` measured; ``baseline`` labels the row the speed-ups are relative to."""

    model: str
    batch_size: int
    image_size: int
    device: str
    dtype: str
    threads: int
    rounds: int
    folded: int
    fused_max_abs_diff: float
    timings: list[Timing]
    baseline: str
    notes: list[str] = field(default_factory=list)

    def speedup(self, label: str) -> float:
        """Median over rounds of the baseline's time over ``label``'s, both taken in the same round."""
        pairs = zip(self.timing(self.baseline).seconds, self.timing(label).seconds)
        return statistics.median(base / mine for base, mine in pairs)

    def timing(self, label: str) -> Timing:
        return next(t for t in self.timings if t.label == label)

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "timings"}
        data["timings"] = [{**t.to_dict(), "speedup": self.speedup(t.label)} for t in self.timings]
        return data

    def table(self) -> str:
        """The figures as an aligned text table."""
        lines = [f"{self.model}: batch {self.batch_size}, {self.image_size}x{self.image_size}, {self.device}, "
                 f"{self.dtype}, {self.threads} threads, median of {self.rounds} interleaved rounds; "
                 f"{self.folded} BatchNorms folded (max |fused - eager| {self.fused_max_abs_diff:.2e})",
                 f"{'variant':36s} {'img/s':>8s} {'latency ms':>11s} {'best ms':>9s}   speed-up vs {self.baseline}"]
        for timing in self.timings:
            lines.append(f"{timing.label:36s} {timing.images_per_second:8.1f} {timing.latency_ms:11.2f} "
                         f"{1000 * min(timing.seconds):9.2f}   {self.speedup(timing.label):.2f}x")
        return "\n".join(lines + self.notes)


def peer_name(name: str, library: str) -> str:
    """Our architecture name as ``library`` spells it."""
    return TIMM_NAMES.get(name, name) if library == "timm" else name


def has_peer(name: str, library: str) -> bool:
    """Whether ``library`` (torchvision or timm) has our architecture ``name``.

    Raises:
        BenchError: an unknown library, or one not installed.
    """
    module = _import_peer(library)
    theirs = peer_name(name, library)
    return theirs in module.models.list_models() if library == "torchvision" else module.is_model(theirs)


def require_peer(name: str, library: str) -> None:
    """Raise :class:`BenchError` unless ``library`` has our architecture ``name``."""
    if not has_peer(name, library):
        theirs = peer_name(name, library)
        raise BenchError(f"{library} has no model '{theirs}'" + (f" (for {name})" if theirs != name else ""))


def build_peer(name: str, library: str, num_classes: int = 1000) -> nn.Module:
    """torchvision's or timm's model for our ``name``, randomly initialised, in eval mode.

    Raises:
        BenchError: an unknown library, one not installed, or one without that architecture.
    """
    require_peer(name, library)
    module, theirs = _import_peer(library), peer_name(name, library)
    if library == "torchvision":
        return module.models.get_model(theirs, weights=None, num_classes=num_classes).eval()
    return module.create_model(theirs, pretrained=False, num_classes=num_classes).eval()


def auto_peers(name: str) -> list[str]:
    """``["torchvision"]`` if it has ``name``, else ``["timm"]`` if it has it, else ``[]``."""
    for library in PEERS:
        try:
            if has_peer(name, library):
                return [library]
        except BenchError:  # not installed
            continue
    return []


def _import_peer(library: str):
    if library not in PEERS:
        raise BenchError(f"unknown peer '{library}'; expected one of {', '.join(PEERS)}")
    try:
        return importlib.import_module(library)
    except ImportError as error:
        raise BenchError(f"comparing with {library} needs {library} installed ({error})") from error


def check_device(device: str) -> torch.device:
    """``torch.device(device)``, after checking that it exists here.

    Raises:
        BenchError: an unknown device, or CUDA without a CUDA device.
    """
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BenchError(f"unknown device '{device}'; use cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("no CUDA device here (torch.cuda.is_available() is False)")
    return torch.device(device)


def benchmark(name: str, *, batch_size: int = 8, image_size: int = 224, device: str = "cpu",
              dtype: str = "float32", compare: list[str] | None = None, compile: bool = False,
              rounds: int = 10, warmup: int = 2, min_round_s: float = 0.05,
              log: Callable[[str], None] = lambda _: None) -> BenchReport:
    """Time ``name`` eager, fused, fused + channels-last (and compiled) against its peers, interleaved.

    Args:
        name: a registered architecture (``arch.tag`` names it too); random weights, nothing is downloaded.
        batch_size: images per call.
        image_size: input height and width.
        device: ``"cpu"`` or ``"cuda"``.
        dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``; models and input are cast after fusion.
        compare: peers (``"torchvision"``, ``"timm"``); ``None`` picks torchvision if it has the model, else timm.
            Each peer is timed eager (NCHW) and channels-last.
        compile: also time the fused channels-last model under ``torch.compile`` (compiled during warm-up).
        rounds: timed rounds per variant.
        warmup: untimed calls per variant first.
        min_round_s: a round repeats calls until it lasts this long (short GPU calls need several).
        log: receives progress lines.

    Returns:
        A :class:`BenchReport`; speed-ups are relative to the first peer's eager row, else to mhub eager.

    Raises:
        BenchError: an unusable device, dtype or peer; or a variant that fails to run (the message says which).
    """
    from ._factory import create
    from ._registry import get_registry

    name = get_registry().arch(name).name  # an unknown name fails before anything is built
    if warmup < 1 or rounds < 1:
        raise BenchError("rounds and warmup must be at least 1")
    if dtype not in DTYPES:
        raise BenchError(f"unknown dtype '{dtype}'; expected one of {', '.join(DTYPES)}")
    target, cast = check_device(device), DTYPES[dtype]
    peers = auto_peers(name) if compare is None else list(dict.fromkeys(compare))
    for library in peers:  # before anything is built
        require_peer(name, library)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch_size, 3, image_size, image_size, generator=generator).to(target, cast)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    log(f"building {name} and its variants")
    eager = create(name).eval()
    fused = copy.deepcopy(eager)
    folded = len(fuse_in_place(fused))
    fused_cl = copy.deepcopy(fused).to(memory_format=torch.channels_last)
    models = {"mhub eager": eager, "mhub fused": fused, "mhub fused + channels-last": fused_cl}
    if compile:
        models[COMPILED] = copy.deepcopy(fused_cl)  # compiled below, once cast and moved
    for library in peers:
        peer = build_peer(name, library)
        models[f"{library} eager"] = peer
        models[f"{library} channels-last"] = copy.deepcopy(peer).to(memory_format=torch.channels_last)
    models = {label: model.to(target, cast) for label, model in models.items()}
    if compile:
        models[COMPILED] = compile_model(models[COMPILED])

    variants = [_Variant(label, model, x_cl if "channels-last" in label else x) for label, model in models.items()]
    outputs, timings = _measure(variants, target, batch_size, rounds=rounds, warmup=warmup,
                                min_round_s=min_round_s, log=log)
    diff = (outputs["mhub fused"].float() - outputs["mhub eager"].float()).abs().max().item()
    baseline = f"{peers[0]} eager" if peers else "mhub eager"
    notes = [] if compare is not None or peers else [f"(neither torchvision nor timm has {name}: no peer timed)"]
    return BenchReport(name, batch_size, image_size, str(target), dtype, torch.get_num_threads(), rounds, folded,
                       diff, timings, baseline, notes)


@dataclass
class _Variant:
    label: str
    model: nn.Module
    x: torch.Tensor
    calls: int = 1

    def run(self, calls: int, device: torch.device) -> torch.Tensor:
        """``calls`` forward passes (waiting for the GPU); the last output."""
        try:
            for _ in range(calls):
                out = self.model(self.x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        except MhubError:
            raise
        except Exception as error:  # noqa: BLE001 -- say which variant failed, in one line
            raise BenchError(f"{self.label} failed: {_first_line(error)}") from error
        return out


def _measure(variants: list[_Variant], device: torch.device, batch_size: int, *, rounds: int, warmup: int,
             min_round_s: float, log: Callable[[str], None]) -> tuple[dict[str, torch.Tensor], list[Timing]]:
    """Warm each variant up, then time them in turn, round after round; returns warm-up outputs and timings."""
    # Random weights can drive activations into the subnormal range, which CPUs process many times slower
    # (trained weights rarely do): flush subnormals to zero for every variant alike while timing.
    flushing = device.type == "cpu" and torch.set_flush_denormal(True)
    outputs, timings = {}, {variant.label: Timing(variant.label, batch_size) for variant in variants}
    try:
        with torch.inference_mode():
            for variant in variants:
                log(f"warming up {variant.label}")
                for _ in range(warmup):  # the last call's time sets how many calls a round makes
                    start = time.perf_counter()
                    outputs[variant.label] = variant.run(1, device)
                variant.calls = max(1, math.ceil(min_round_s / max(time.perf_counter() - start, 1e-6)))
            for round_index in range(rounds):
                log(f"round {round_index + 1}/{rounds}")
                for variant in variants if round_index % 2 == 0 else variants[::-1]:  # cancels linear drift
                    start = time.perf_counter()
                    variant.run(variant.calls, device)
                    timings[variant.label].seconds.append((time.perf_counter() - start) / variant.calls)
    finally:
        if flushing:
            torch.set_flush_denormal(False)
    return outputs, list(timings.values())
