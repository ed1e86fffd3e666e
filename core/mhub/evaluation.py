"""Measure a weight set's accuracy claim: top-1 and top-5 on a labelled image set, on one process or many.

Data layouts (:func:`find_samples`):

- ImageNet's validation layout: ``DATA/n01440764/*.JPEG``..., one folder per class named by its WordNet ID;
  class ``i`` is line ``i + 1`` of ``mhub/data/imagenet-1k-wnids.txt`` (the sorted ImageNet-1k synsets, the
  order of ``imagenet-1k-classes.txt`` and of every ImageNet-1k head);
- a folder whose sub-folders are class indices: ``DATA/0/...``, ``DATA/1/...``;
- a CSV file of ``path,label`` rows (a header row is allowed; relative paths start at the CSV's folder; a
  label is a class index or a WordNet ID).

Images are read and preprocessed exactly as :mod:`mhub.imaging` does for the weight set (the recipe its
manifest states), in ``torch.utils.data.DataLoader`` workers, so the figure is comparable with the published
one. An image that cannot be read is skipped with a warning and counted in ``skipped``.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) every rank evaluates one contiguous block of the
dataset, ``[rank * n // world, (rank + 1) * n // world)``. Blocks are disjoint and cover the dataset with no
padding (``DistributedSampler`` repeats samples to even out the ranks, which would count some images twice),
so the all-reduced counts (gloo on CPU, NCCL on CUDA) equal a single process's. Rank 0 gathers the
predictions and writes them in dataset order.
"""

from __future__ import annotations

import csv
import math
import os
import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from . import imaging
from ._errors import ConversionError, MhubError, NoWeightsError, UnknownModelError

TOPK = 5
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif"})
LAYOUTS = ("ImageNet's validation layout (DATA/n01440764/...), class-index folders (DATA/0/...) "
           "or a CSV of path,label")
_WNID = re.compile(r"n\d{8}")


@lru_cache(maxsize=1)
def wordnet_ids() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k WordNet IDs; index ``i`` is line ``i + 1`` of ``mhub/data/imagenet-1k-wnids.txt``."""
    text = resources.files("mhub").joinpath("data/imagenet-1k-wnids.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


@lru_cache(maxsize=1)
def _wnid_index() -> dict[str, int]:
    return {wnid: index for index, wnid in enumerate(wordnet_ids())}


@dataclass(frozen=True)
class Sample:
    """One labelled image: its path and its class index."""

    path: str
    label: int


# -- data ----------------------------------------------------------------------------------------------------
def find_samples(data: str | os.PathLike, num_classes: int | None = None) -> list[Sample]:
    """The labelled images of ``data``, in a fixed order (see the module doc for the layouts).

    Args:
        data: a class folder tree or a CSV file.
        num_classes: the model's class count; a label outside ``[0, num_classes)`` is an error.

    Returns:
        The samples: folders sorted by class, files by path; CSV rows in file order.

    Raises:
        MhubError: ``data`` is missing or empty, a folder or label means no class, or a label is outside
            the model's classes. The message names the path (and the CSV line).
    """
    data = Path(data)
    if not data.exists():
        raise MhubError(f"data '{data}' does not exist; expected {LAYOUTS}")
    samples = _csv_samples(data, num_classes) if data.is_file() else _folder_samples(data, num_classes)
    if not samples:
        raise MhubError(f"no images in '{data}' (looked for {', '.join(sorted(IMAGE_SUFFIXES))} files)")
    return samples


def _class_index(text: str, where: str, num_classes: int | None) -> int:
    """A folder name or CSV label as a class index, checked against the model's classes."""
    text = text.strip()
    if _WNID.fullmatch(text):
        if text not in _wnid_index():
            raise MhubError(f"{where}: '{text}' is not one of ImageNet-1k's 1000 WordNet IDs")
        index = _wnid_index()[text]
        if num_classes is not None and num_classes != len(wordnet_ids()):
            raise MhubError(f"{where}: WordNet-ID labels need an ImageNet-1k head (1000 classes); the model has "
                            f"{num_classes}")
    elif text.isascii() and text.isdigit():
        index = int(text)
    else:
        raise MhubError(f"{where}: '{text}' is neither a class index nor a WordNet ID; expected {LAYOUTS}")
    if num_classes is not None and index >= num_classes:
        raise MhubError(f"{where}: class {index} is outside the model's {num_classes} classes (0-{num_classes - 1})")
    return index


def _folder_samples(root: Path, num_classes: int | None) -> list[Sample]:
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not folders:
        raise MhubError(f"'{root}' has no class folders; expected {LAYOUTS}")
    classes = sorted((_class_index(p.name, f"class folder '{p}'", num_classes), p.name) for p in folders)
    samples = []
    for label, name in classes:
        for directory, subdirs, files in os.walk(root / name, followlinks=True):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            samples += [Sample(os.path.join(directory, f), label) for f in sorted(files)
                        if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return samples


def _csv_samples(table: Path, num_classes: int | None) -> list[Sample]:
    if table.suffix.lower() != ".csv":
        raise MhubError(f"data '{table}' is a file but not a .csv; expected {LAYOUTS}")
    try:
        with open(table, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise MhubError(f"cannot read '{table}': {error}") from error
    samples = []
    for line, row in enumerate(rows, 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise MhubError(f"{table}:{line}: expected path,label, got {','.join(row)!r}")
        path, label = row[0].strip(), row[1].strip()
        if not samples and (path.lower(), label.lower()) == ("path", "label"):
            continue  # header
        full = Path(path) if Path(path).is_absolute() else table.parent / path
        samples.append(Sample(str(full), _class_index(label, f"{table}:{line}", num_classes)))
    return samples


def subset(samples: Sequence[Sample], limit: int | None) -> list[Sample]:
    """At most ``limit`` samples, evenly spaced over ``samples`` (so every class is represented when
    ``limit`` is at least the class count of a class-sorted layout); all of them when ``limit`` is None."""
    if limit is None or limit >= len(samples):
        return list(samples)
    if limit < 1:
        raise MhubError(f"--limit must be at least 1, got {limit}")
    return [samples[i * len(samples) // limit] for i in range(limit)]


class ImageDataset(torch.utils.data.Dataset):
    """``(image tensor | None, label, index, error | None)`` per sample, preprocessed by :mod:`mhub.imaging`.

    ``preprocess`` is resolved here, once (:func:`mhub.imaging.resolve`; pass a resolved table to keep a
    test-time size): a bad table is one :class:`~mhub.MhubError` now rather than every image skipped later.
    """

    def __init__(self, samples: Sequence[Sample], preprocess: Mapping[str, Any] | None = None):
        self.samples = list(samples)
        self.preprocess = imaging.resolve(preprocess)  # a resolved table resolves to itself

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        sample = self.samples[index]
        try:
            image = imaging.to_tensor(imaging.open_image(sample.path), self.preprocess)
        except MhubError as error:  # names the file
            return None, sample.label, index, str(error)
        except Exception as error:  # noqa: BLE001 -- one broken file must not end a 50,000-image run
            return None, sample.label, index, f"cannot read image '{sample.path}': {type(error).__name__}: {error}"
        return image, sample.label, index, None


def collate(batch):
    """Stack the readable images of a batch; unreadable ones travel as ``(index, error)`` pairs.

    Returns:
        ``(images [k, 3, H, W] or None, labels [k], indices [k], failures)``.
    """
    good = [item for item in batch if item[3] is None]
    images = torch.stack([item[0] for item in good]) if good else None
    labels = torch.tensor([item[1] for item in good], dtype=torch.long)
    indices = torch.tensor([item[2] for item in good], dtype=torch.long)
    return images, labels, indices, [(item[2], item[3]) for item in batch if item[3] is not None]


def make_loader(dataset, *, batch_size: int = 64, workers: int | None = None, pin_memory: bool = False):
    """The ``DataLoader`` :func:`evaluate_model` iterates: in order, :func:`collate` batches, ``workers``
    processes (default ``min(4, CPUs)``; 0 reads in the calling process)."""
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                       collate_fn=collate, pin_memory=pin_memory)


# -- distribution --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    """This process's place among the ranks (``size == 1`` when not distributed)."""

    rank: int = 0
    size: int = 1
    owned: bool = False  # we initialised the process group, so we tear it down

    def shard(self, n: int) -> range:
        """The contiguous, disjoint block of ``range(n)`` this rank evaluates."""
        return range(self.rank * n // self.size, (self.rank + 1) * n // self.size)


def resolve_device(device: str | None) -> str:
    """``device``, or CUDA when available else CPU; under torchrun a bare ``cuda`` means this node's GPU
    ``LOCAL_RANK``."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    try:
        kind = torch.device(device).type
    except RuntimeError as error:
        raise MhubError(f"unknown device '{device}': {error}") from error
    if kind == "cuda" and not torch.cuda.is_available():
        raise MhubError(f"device '{device}' asked for, but no CUDA device is available here")
    return device


def join_world(device: str) -> World:
    """Join the ``torchrun`` process group (env:// rendezvous; NCCL for CUDA, gloo otherwise), or stay alone.

    A process group the caller already initialised is used as it is.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    if not dist.is_available():
        raise MhubError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group("nccl" if torch.device(device).type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), owned=True)


# -- scoring -------------------------------------------------------------------------------------------------
@dataclass
class Tally:
    """What one rank counted (or, after :meth:`reduce`, all ranks)."""

    correct1: int = 0
    correct5: int = 0
    n: int = 0
    skipped: int = 0
    seconds: float = 0.0
    predictions: dict[int, list[int]] = field(default_factory=dict)  # dataset index -> top-k, when kept

    def reduce(self, world: World, device: str, gather_predictions: bool) -> None:
        """Sum the counts and take the slowest rank's time over all ranks; predictions go to rank 0."""
        if world.size == 1:
            return
        import torch.distributed as dist

        counts = torch.tensor([self.correct1, self.correct5, self.n, self.skipped], dtype=torch.int64,
                              device=device)
        dist.all_reduce(counts)
        self.correct1, self.correct5, self.n, self.skipped = (int(c) for c in counts.tolist())
        seconds = torch.tensor([self.seconds], dtype=torch.float64, device=device)
        dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
        self.seconds = float(seconds.item())
        if gather_predictions:
            parts = [None] * world.size if world.rank == 0 else None
            dist.gather_object(self.predictions, parts, dst=0)
            if world.rank == 0:
                self.predictions = {index: top for part in parts for index, top in part.items()}


def evaluate_model(model, loader, *, device: str = "cpu", keep_predictions: bool = False,
                   progress: bool = False) -> Tally:
    """Run ``model`` over a :func:`make_loader` loader and count top-1/top-k hits on this process.

    Args:
        model: a classifier in eval mode, already on ``device``.
        loader: batches of :func:`collate`.
        device: where the batches go.
        keep_predictions: keep each image's top-k class indices (best first) in ``Tally.predictions``.
        progress: show a tqdm bar on stderr.

    Returns:
        The :class:`Tally` of this process (``seconds`` covers the whole loop, data loading included).
    """
    tally = Tally()
    correct1 = torch.zeros((), dtype=torch.int64, device=device)  # summed on the device: no sync per batch
    correct5 = torch.zeros((), dtype=torch.int64, device=device)
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []
    bar = _progress_bar(len(loader)) if progress else None
    start = time.perf_counter()
    with torch.inference_mode():
        for images, labels, indices, failures in loader:
            for _, error in failures:
                warnings.warn(f"skipped: {error}", UserWarning, stacklevel=2)
            tally.skipped += len(failures)
            if images is not None:
                logits = model(images.to(device, non_blocking=True))
                top = logits.topk(min(TOPK, logits.shape[-1]), dim=-1).indices
                hits = top == labels.to(device, non_blocking=True)[:, None]
                correct1 += hits[:, 0].sum()
                correct5 += hits.any(dim=-1).sum()
                tally.n += len(labels)
                if keep_predictions:
                    kept.append((indices, top))
            if bar is not None:
                bar.update(1)
    tally.correct1, tally.correct5 = int(correct1), int(correct5)
    tally.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    for indices, top in kept:
        tally.predictions.update(zip(indices.tolist(), top.tolist()))
    return tally


def _progress_bar(total: int):
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc="eval", unit="batch", file=sys.stderr, leave=False, dynamic_ncols=True)


# -- the whole job -------------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """The figures of one evaluation (identical on every rank, except ``predictions`` which rank 0 holds)."""

    top1: float
    top5: float
    n: int
    images_per_second: float
    skipped: int
    seconds: float
    model: str
    weights: str
    weights_sha256: str | None
    data: str
    preprocess: dict[str, Any]
    device: str
    world_size: int
    batch_size: int
    topk: int = TOPK
    published: dict[str, float] = field(default_factory=dict)  # the manifest's metrics, for comparison
    rank: int = 0  # this process's rank: only rank 0 reports

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["rank"]
        return out


@dataclass
class Loaded:
    """A model ready to evaluate and what describes its weights."""

    model: Any
    preprocess: dict[str, Any]
    weights: str  # the weight set's name, or the file's path
    sha256: str | None = None  # of the file, when one was given
    published: dict[str, float] = field(default_factory=dict)
    num_classes: int | None = None  # when known without running the model


def load_model(name: str, weights: str | os.PathLike | None = None, *, progress: bool = False) -> Loaded:
    """The model ``name`` with its registered weights, or with the safetensors file ``weights`` (mhub layout).

    Returns:
        The model in eval mode and its weights' description. For a file, the preprocessing is that of the
        named weight set, else of the architecture's default one, else ImageNet's.

    Raises:
        MhubError: unknown name, no weights, a file that is missing, not safetensors or does not fit.
        ConversionError: the file is a torch checkpoint (``mhub convert`` it first), neither format (told by
            its first bytes, never its name), malformed, or its tensors do not fit the model.
    """
    from ._registry import get_registry

    registry = get_registry()
    if weights is None:
        from ._factory import create
        from .hub.client import pull

        spec = registry.weights_for(name)
        spec.require_classifier("be evaluated")  # before anything is pulled
        pull(spec, progress=progress)  # (the bar, if any, here rather than inside create)
        return Loaded(create(spec.name, pretrained=True).eval(), dict(spec.preprocess), spec.name,
                      published=dict(spec.metrics), num_classes=spec.num_classes)

    from .hub.convert import checkpoint_format
    from .hub.integrity import sha256_file
    from .hub.loading import load_file_into

    try:
        arch, known = registry.resolve(name)
    except (UnknownModelError, NoWeightsError):  # a tag not registered yet: the contributor's own
        arch, known = registry.arch(name), None
    if known is not None:
        known.require_classifier("be evaluated")
    known = known or registry.default_weights(arch.name)
    path = Path(weights)
    if not path.is_file():
        raise MhubError(f"weights file '{path}' does not exist")
    if checkpoint_format(path) != "safetensors":  # by its first bytes, whatever the file is called
        raise ConversionError(f"weights '{path}' is a torch checkpoint, not safetensors in mhub's layout; run "
                              "'mhub convert' first")
    model = load_file_into(arch, path, **(known.model_args if known else {}))  # ConversionError when unreadable
    digest, _ = sha256_file(path)
    head = model.state_dict().get(f"{arch.classifier}.weight") if arch.classifier else None
    return Loaded(model.eval(), dict(known.preprocess) if known else {}, str(path), digest,
                  num_classes=int(head.shape[0]) if head is not None and head.dim() == 2 else None)


def output_classes(model, preprocess: Mapping[str, Any], device: str) -> int:
    """The model's class count: its logits' width on one blank image (any head layout works; used where the
    manifest and the classifier prefix do not say, since a first forward pass at a new shape is slow on CPU)."""
    crop = imaging.resolve(preprocess)["crop"]
    with torch.inference_mode():
        logits = model(torch.zeros(1, 3, crop, crop, device=device))
    if logits.dim() != 2 or logits.shape[1] < 1:
        raise MhubError(f"the model returns shape {list(logits.shape)}, not [batch, classes] logits: it has no "
                        "usable classifier to evaluate")
    return int(logits.shape[1])


def evaluate(name: str, data: str | os.PathLike, *, weights: str | os.PathLike | None = None,
             preprocess: Mapping[str, Any] | None = None, batch_size: int = 64, workers: int | None = None,
             device: str | None = None, limit: int | None = None, predictions: str | os.PathLike | None = None,
             test_size: bool = False, progress: bool = False) -> EvalResult:
    """Top-1/top-5 of a weight set on ``data`` with its own preprocessing; distributed under ``torchrun``.

    Args:
        name: ``arch[.tag]``; with ``weights`` it names the architecture (and the weight set whose
            preprocessing applies, when registered).
        data: a labelled folder or CSV (see :func:`find_samples`).
        weights: a safetensors checkpoint in mhub's layout to evaluate instead of the registered weights.
        preprocess: overrides of the weight set's preprocessing (``resize=``, ``interpolation=``...).
        batch_size: images per forward pass (per rank).
        workers: DataLoader worker processes per rank (default ``min(4, CPUs)``).
        device: ``cpu``, ``cuda``, ``cuda:N`` (default: CUDA when available).
        limit: evaluate only this many images, evenly spaced over the dataset.
        predictions: write a CSV there (rank 0): ``path,label,top5`` with the top-5 class indices
            space-separated, best first, one row per evaluated image in dataset order.
        test_size: evaluate at the larger test-time size upstream reports (``test_size``/``test_crop_pct``,
            as timm's ``use_test_size``), where the weight set gives one.
        progress: show a progress bar (rank 0 only).

    Returns:
        An :class:`EvalResult`; every rank gets the all-reduced figures.

    Raises:
        MhubError: bad data (see :func:`find_samples`), an invalid preprocessing table (the weight set's with
            ``preprocess`` on top; see :func:`mhub.imaging.resolve`), no readable image at all, or a model that
            cannot be loaded.
    """
    device = resolve_device(device)
    if not Path(data).exists():  # before the (slower) model load; the layout is checked once classes are known
        raise MhubError(f"data '{data}' does not exist; expected {LAYOUTS}")
    world = join_world(device)
    try:
        progress = progress and world.rank == 0
        loaded = load_model(name, weights, progress=progress)
        # once, before any image is read: a bad value is one error, not every image skipped
        table = imaging.resolve(imaging.override(loaded.preprocess, preprocess), test=test_size)
        model = loaded.model.to(device)
        classes = loaded.num_classes or output_classes(model, table, device)
        samples = subset(find_samples(data, classes), limit)

        shard = torch.utils.data.Subset(ImageDataset(samples, table), world.shard(len(samples)))
        loader = make_loader(shard, batch_size=batch_size, workers=workers,
                             pin_memory=torch.device(device).type == "cuda")
        tally = evaluate_model(model, loader, device=device, keep_predictions=predictions is not None,
                               progress=progress)
        tally.reduce(world, device, gather_predictions=predictions is not None)
    finally:
        if world.owned:
            import torch.distributed as dist

            dist.destroy_process_group()
    if tally.n == 0:
        raise MhubError(f"none of the {len(samples)} images in '{data}' could be read")
    if predictions is not None and world.rank == 0:
        write_predictions(predictions, samples, tally.predictions)
    return EvalResult(
        top1=100.0 * tally.correct1 / tally.n, top5=100.0 * tally.correct5 / tally.n, n=tally.n,
        images_per_second=tally.n / tally.seconds if tally.seconds > 0 else math.inf, skipped=tally.skipped,
        seconds=tally.seconds, model=loaded.weights if weights is None else name, weights=loaded.weights,
        weights_sha256=loaded.sha256, data=str(data), preprocess=table, device=device,
        world_size=world.size, batch_size=batch_size, topk=min(TOPK, classes), published=loaded.published,
        rank=world.rank)


def write_predictions(path: str | os.PathLike, samples: Sequence[Sample], top: Mapping[int, Iterable[int]]) -> None:
    """One CSV row per predicted image, in dataset order: ``path,label,top5`` (indices space-separated)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "top5"])
        for index in sorted(top):
            writer.writerow([samples[index].path, samples[index].label, " ".join(map(str, top[index]))])
