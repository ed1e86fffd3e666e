"""Check a checkpoint against reference outputs on every device, with documented tolerances.

The model (built from the registry, loaded with the weights) runs the canonical reference input of
:mod:`mhub_tools.reference`; its logits are compared with the reference logits:

- ``max abs error``: the largest absolute difference of any logit, allowed up to ``rel * max(1, max|ref|)``;
- ``cosine``: the smallest cosine similarity of one output row with its reference row;
- ``top-5 agreement``: mean overlap of the top-5 classes. A row counts as *decidable* when its reference
  5th and 6th logits differ by more than twice the allowed error; decidable rows must agree fully (a tie
  inside the tolerance may legitimately swap).

Tolerances (:data:`TOLERANCES`):

==========================  ===========  ==========  ==============================================
run                         max abs rel  min cosine  why
==========================  ===========  ==========  ==============================================
cpu, fp32                   1e-4         0.99999     fp32 summation order differs between kernels
cuda, fp32 (TF32 off)       1e-4         0.99999     same arithmetic, different kernels
cuda, TF32 on               1e-2         0.999       TF32 keeps 10 mantissa bits in convolutions/matmuls
==========================  ===========  ==========  ==============================================

The input has the weight set's own size (:func:`~mhub_tools.reference.input_size`), and the error is relative
to the output scale because fp32 noise grows with it: deep models at 224 px show 2e-5 to 8e-5 absolute between
two correct implementations (exactly 0 in float64), which a fixed absolute limit would either reject at large
logits or, loosened, let real errors through at small ones.

The reference is a reference-output file, or a reference implementation run here on CPU in fp32:
``LIBRARY:NAME`` builds that library's model (random init is never used) and loads
either ``--reference-weights`` (the original upstream checkpoint: the strongest check, as it does not
depend on our conversion) or, when none is given, the weights under test mapped back to the upstream layout.
``torchvision`` and ``timm`` are built in; a plugin adds its own upstream implementation as a library with
the ``register_reference_models`` hook (``register("tinyref", "mhub_example.upstream:build")``), and the key
map ``"<library>.<family>"`` it registers with ``register_converters`` is the way back. The way back is
learned by feeding the registered key map a marker state dict whose every element is unique and inverting it
exactly (renames, and reshapes that keep the elements in order); a map that changes values is refused, and
the structural matcher stands in where no map is registered. A converter that swapped two tensors is
therefore still caught: the upstream model receives them in its own correct places while ours runs them
swapped.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mhub import ConversionError, MhubError, imaging

from .reference import (INPUT_NAME, InputSpec, Reference, input_size, load_reference, reference_input,
                        tensor_sha256)


@dataclass(frozen=True)
class Tolerance:
    """Limits for one kind of run: max abs error relative to ``max(1, max|ref|)`` and minimum cosine."""

    name: str
    max_abs_rel: float
    min_cosine: float


TOLERANCES = {
    "fp32": Tolerance("fp32", 1e-4, 0.99999),
    "tf32": Tolerance("tf32", 1e-2, 0.999),
}


@dataclass
class Comparison:
    """The figures of one run against the reference."""

    run: str
    tolerance: Tolerance
    max_abs: float
    allowed_abs: float
    cosine: float
    top5: float
    decidable: int
    rows: int
    top5_ok: bool

    @property
    def passed(self) -> bool:
        return (self.max_abs <= self.allowed_abs and self.cosine >= self.tolerance.min_cosine
                and self.top5_ok and math.isfinite(self.max_abs))

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{self.run:<16} max abs error {self.max_abs:.3e} (allowed {self.allowed_abs:.3e})  "
                f"cosine {self.cosine:.7f} (min {self.tolerance.min_cosine})  "
                f"top-5 agreement {self.top5:.2f} ({self.decidable}/{self.rows} rows decidable)  {verdict}")

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "tolerance": self.tolerance.name, "max_abs": self.max_abs,
                "allowed_abs": self.allowed_abs, "cosine": self.cosine, "min_cosine": self.tolerance.min_cosine,
                "top5_agreement": self.top5, "top5_decidable_rows": self.decidable, "rows": self.rows,
                "passed": self.passed}


@dataclass
class Report:
    """Everything ``mhub validate`` found."""

    comparisons: list[Comparison] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reference: str = ""
    images: list[tuple[str, list[tuple[int, str, float]]]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.comparisons) and all(c.passed for c in self.comparisons)


def compare(output, reference, tolerance: Tolerance, run: str) -> Comparison:
    """Compare logits with reference logits (both ``[rows, classes]``) under ``tolerance``."""
    import torch

    output = output.detach().to("cpu", torch.float64)
    reference = reference.detach().to("cpu", torch.float64)
    if output.shape != reference.shape:
        raise ConversionError(f"output shape {list(output.shape)} differs from the reference's "
                              f"{list(reference.shape)}")
    diff = (output - reference).abs()
    max_abs = float(diff.max()) if torch.isfinite(diff).all() else math.inf
    allowed = tolerance.max_abs_rel * max(1.0, float(reference.abs().max()))
    cosine = float(torch.nn.functional.cosine_similarity(output, reference, dim=1).min())
    if not math.isfinite(cosine):
        cosine = -1.0
    k = min(5, reference.shape[1] - 1) if reference.shape[1] > 1 else 1
    ref_sorted = reference.sort(dim=1, descending=True).values
    ref_top = reference.topk(k, dim=1).indices
    out_top = output.topk(k, dim=1).indices
    overlaps, decidable, ok = [], 0, True
    for row in range(reference.shape[0]):
        overlap = len(set(ref_top[row].tolist()) & set(out_top[row].tolist())) / k
        overlaps.append(overlap)
        margin = float(ref_sorted[row, k - 1] - ref_sorted[row, k]) if reference.shape[1] > k else math.inf
        if margin > 2 * allowed:
            decidable += 1
            ok = ok and overlap == 1.0
    return Comparison(run, tolerance, max_abs, allowed, cosine, sum(overlaps) / len(overlaps), decidable,
                      reference.shape[0], ok)


# -- models --------------------------------------------------------------------------------------------------
def load_model(arch, state: Mapping[str, Any]):
    """Build ``arch`` sized for ``state`` (our layout) and load it strictly; fp32, eval mode, on CPU.

    Raises:
        ConversionError: keys or shapes do not match (the message lists them; run ``mhub convert`` first).
    """
    from mhub._factory import build
    from mhub.hub.loading import _absent_aux_classifiers

    from .convert import build_meta, infer_head

    num_classes, in_chans = infer_head(arch, state)
    model = build_meta(arch, num_classes=num_classes, in_chans=in_chans)
    expected = model.state_dict()
    state = dict(state)
    _absent_aux_classifiers(arch, state, expected)  # leaves out auxiliary classifiers, as pretrained loading does
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise ConversionError(
            f"weights do not fit {arch.name}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"wrong shape {wrong[:5]} (is the file in mhub's layout? run 'mhub convert' first)")
    model.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
        # Non-persistent buffers are not in a state dict: build for real so they get their values.
        model = build(arch, num_classes=num_classes, in_chans=in_chans)
        model.load_state_dict(state, strict=True)
    return model.float().eval()


def reference_libraries() -> list[str]:
    """Names usable as ``LIBRARY`` in ``--reference LIBRARY:NAME``: the built-in ones and the plugins'."""
    from mhub import get_registry
    from mhub._registry import BUILTIN_REFERENCE_LIBRARIES

    return [*BUILTIN_REFERENCE_LIBRARIES, *sorted(get_registry().reference_models)]


def is_library_reference(reference: str) -> bool:
    """Whether ``reference`` is ``LIBRARY:NAME`` for a known library (and not an existing file)."""
    library, sep, name = reference.partition(":")
    return bool(sep and name) and library in reference_libraries() and not Path(reference).exists()


def build_library_model(library: str, name: str, num_classes: int, in_chans: int,
                        model_args: Mapping[str, Any] | None = None, log: Callable[[str], None] = lambda _: None):
    """A torchvision, timm or plugin-registered upstream model, on the meta device (its weights come from
    elsewhere).

    ``model_args`` are a weight set's architecture arguments (``img_size``, ``transform_input``); upstream
    builders that use the same names receive them, and one that refuses them as an unexpected keyword
    argument is built without (logged). Any other error of the builder propagates.
    """
    if model_args:
        try:
            return _library_model(library, name, num_classes, in_chans, model_args)
        except TypeError as error:
            refused = re.search(r"unexpected keyword argument '(\w+)'", str(error))
            if refused is None or refused.group(1) not in model_args:
                raise
            log(f"reference {library}:{name}: built without {dict(model_args)} ({error})")
    return _library_model(library, name, num_classes, in_chans, {})


def _library_model(library: str, name: str, num_classes: int, in_chans: int, model_args: Mapping[str, Any]):
    import warnings

    import torch

    from mhub import get_registry
    from mhub._lazy import import_string

    # Upstream constructors warn about their weight initialisation, which never runs here (meta device, then
    # the weights under test): noise in a validation report.
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if library == "torchvision":
            import torchvision

            if in_chans != 3:
                raise ConversionError("torchvision reference models take 3 input channels only")
            try:
                model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **model_args)
            except ValueError as error:
                raise ConversionError(f"torchvision has no model '{name}'") from error
        elif library == "timm":
            import timm

            if not timm.is_model(name):
                raise ConversionError(f"timm has no model '{name}'")
            model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans,
                                      **model_args)
        elif library in get_registry().reference_models:
            builder = import_string(get_registry().reference_models[library][0])
            model = builder(name, num_classes=num_classes, in_chans=in_chans, **model_args)
            if not isinstance(model, torch.nn.Module):
                raise ConversionError(f"reference {library}:{name}: the builder returned a {type(model).__name__}, "
                                      "not a torch.nn.Module")
        else:
            raise ConversionError(f"unknown reference implementation '{library}'; use one of "
                                  f"{', '.join(f'{lib}:NAME' for lib in reference_libraries())}")
    return model.eval()


def upstream_state(arch, library: str, upstream_keys: Mapping[str, Any], ours: Mapping[str, Any], *,
                   size: int = 224, log: Callable[[str], None] = lambda _: None) -> "OrderedDict[str, Any]":
    """Map our state dict back to an upstream layout, exactly inverting the registered key map.

    Args:
        arch: our architecture (its family names the converter ``"<library>.<family>"``).
        library: ``"torchvision"``, ``"timm"`` or a library a plugin registered.
        upstream_keys: the upstream model's state dict (meta tensors are fine: only keys and shapes are read).
        ours: the weights under test, in our layout.
        size: input size of the forward pass that orders our tensors (structural matcher only).

    Raises:
        ConversionError: the map is not a pure renaming. Upstream tensors the map drops are left out of the
            result (and logged).
    """
    import torch

    from mhub import get_registry
    from mhub.hub.loading import _under

    from .convert import apply_converter, build_meta, infer_head, structural_match, trace_forward

    name = f"{library}.{arch.family}"
    converter = get_registry().converters.get(name)
    if converter is None:
        # No map: the upstream model's tensors, in registration order, play the checkpoint.
        log(f"no key map '{name}' is registered; mapping back with the structural matcher")
        num_classes, in_chans = infer_head(arch, ours)
        model = build_meta(arch, num_classes=num_classes, in_chans=in_chans)
        target = {k: (tuple(v.shape), v.is_floating_point()) for k, v in model.state_dict().items()}
        pairs = structural_match(upstream_keys, target, trace_forward(model, size, in_chans))
        mapped = {u: ours[o] for u, o in pairs}
        return OrderedDict((k, mapped[k]) for k in upstream_keys)

    # Every element of the marker state dict is a distinct integer, so each output tensor names exactly
    # the input it came from; float64 holds integers exactly up to 2**53.
    markers: OrderedDict[str, Any] = OrderedDict()
    starts: dict[int, str] = {}
    offset = 1
    for key, tensor in upstream_keys.items():
        dtype = torch.float64 if tensor.is_floating_point() else torch.int64
        markers[key] = torch.arange(offset, offset + tensor.numel(), dtype=dtype).reshape(tensor.shape)
        starts[offset] = key
        offset += max(tensor.numel(), 1)
    try:
        converted = apply_converter(converter, markers)
    except MhubError:
        raise
    except Exception as error:  # noqa: BLE001
        raise ConversionError(f"key map {name} failed on {library}'s own layout: {type(error).__name__}: "
                              f"{error}") from error
    back: OrderedDict[str, Any] = OrderedDict()
    for our_key, tensor in converted.items():
        if our_key not in ours and any(_under(our_key, prefix) for prefix in arch.aux_classifiers):
            continue  # a training-only head the weights under test were loaded without: dropped, as loading does
        if our_key not in ours:
            raise ConversionError(f"key map {name} produces '{our_key}', which the weights do not have")
        if tensor.numel() == 0:
            continue
        first = int(tensor.reshape(-1)[0])
        upstream_key = starts.get(first)
        # a reshape keeps every element in order (a 1x1 convolution read as a linear layer): inverted exactly
        if upstream_key is None or not torch.equal(tensor.reshape(-1).to(markers[upstream_key].dtype),
                                                   markers[upstream_key].reshape(-1)) \
                or ours[our_key].numel() != tensor.numel():
            raise ConversionError(f"key map {name} changes values, not only names ('{our_key}'); give the "
                                  "upstream checkpoint with --reference-weights")
        back[upstream_key] = ours[our_key].reshape(markers[upstream_key].shape)
    dropped = [k for k, v in upstream_keys.items() if k not in back and v.numel() > 0]
    if dropped:  # e.g. auxiliary training heads, which our models leave out
        log(f"key map {name} drops {len(dropped)} upstream tensor(s) ({', '.join(dropped[:3])}"
            f"{', ...' if len(dropped) > 3 else ''}): they are zeros in the reference model, so a forward "
            "pass that used them would differ and fail the comparison")
    return OrderedDict((k, back[k]) for k in upstream_keys if k in back)


def library_reference(spec: str, arch, ours: Mapping[str, Any], input_spec: InputSpec, num_classes: int, *,
                      reference_weights: str | Path | None = None, model_args: Mapping[str, Any] | None = None,
                      log: Callable[[str], None] = lambda _: None) -> Reference:
    """Logits of an upstream model (``LIBRARY:NAME``) on the reference input (CPU, fp32). See the module docstring."""
    import torch

    from mhub.hub.convert import read_checkpoint

    library, _, name = spec.partition(":")
    if not name:
        raise ConversionError(f"reference '{spec}': expected LIBRARY:NAME (e.g. torchvision:resnet50)")
    model = build_library_model(library, name, num_classes, input_spec.in_chans, model_args, log=log)
    expected = model.state_dict()
    if reference_weights is not None:
        state = read_checkpoint(reference_weights)
        log(f"reference {spec}: loading upstream checkpoint {reference_weights}")
    else:
        state = upstream_state(arch, library, expected, ours, size=input_spec.size, log=log)
        log(f"reference {spec}: loading the weights under test, mapped back to {library}'s layout")
        state.update((k, torch.zeros(v.shape, dtype=v.dtype)) for k, v in expected.items() if k not in state)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ConversionError(f"reference {spec}: weights do not fit: missing {missing[:5]}, unexpected "
                              f"{unexpected[:5]}")
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        raise ConversionError(f"reference {spec}: {str(error).splitlines()[0]}") from error
    model = model.float().eval()
    with torch.no_grad():
        logits = model(reference_input(input_spec))
    return Reference(logits.float(), input_spec, {"producer": f"{spec} (cpu, fp32)"})


# -- running -------------------------------------------------------------------------------------------------
def run_on(model, device: str, x, *, tf32: bool | None = None):
    """Logits of ``model`` for ``x`` on ``device``; ``tf32`` sets CUDA's TF32 switches for the call only."""
    import torch

    # torch >= 2.9 has per-backend precision settings, and its legacy allow_tf32 flags raise once the two APIs
    # are mixed; older torch has only the legacy flags.
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        switches = [(torch.backends.cuda.matmul, "fp32_precision", "tf32", "ieee"),
                    (torch.backends.cudnn.conv, "fp32_precision", "tf32", "ieee")]
    else:
        switches = [(torch.backends.cuda.matmul, "allow_tf32", True, False),
                    (torch.backends.cudnn, "allow_tf32", True, False)]
    saved = [getattr(owner, attr) for owner, attr, _, _ in switches]
    try:
        if tf32 is not None:
            for owner, attr, on, off in switches:
                setattr(owner, attr, on if tf32 else off)
        with torch.no_grad():
            output = model.to(device)(x.to(device))
        return output.float().cpu()
    finally:
        for (owner, attr, _, _), value in zip(switches, saved):
            setattr(owner, attr, value)
        model.to("cpu")


def validate(name: str, weights: str | Path, *, devices: Sequence[str] = ("cpu",), reference: str | None = None,
             reference_weights: str | Path | None = None, images: Sequence[str | Path] = (),
             size: int | None = None, preprocess: Mapping[str, Any] | None = None,
             model_args: Mapping[str, Any] | None = None, fuse: bool = False,
             log: Callable[[str], None] = lambda _: None) -> Report:
    """Run the weights on each device and compare with the reference.

    Args:
        name: ``arch``, ``arch.tag`` or an alias (timm's name); the registered weight set it names (as
            ``mhub.create`` reads it: see ``Registry.named_weights``) supplies preprocessing, the reference
            file and the architecture arguments its weights need (``model_args``, given to a reference
            implementation too).
        weights: checkpoint in mhub's layout (output of ``mhub convert``).
        devices: ``"cpu"`` and/or ``"cuda"`` (CUDA runs twice: TF32 off, then on; skipped without a GPU).
        reference: a reference-output file or ``LIBRARY:NAME`` (``torchvision``, ``timm`` or a library a
            plugin registered); defaults to the registered weight set's reference file.
        reference_weights: upstream checkpoint for a ``LIBRARY:NAME`` reference.
        images: image files whose top-5 labels are reported.
        size: input size when no reference file fixes it (default: ``preprocess.crop`` or 224).
        preprocess: overrides of the preprocessing (for ``images`` and the input size), which otherwise
            comes from the named weight set, else the architecture's default weight set, else ImageNet's.
        model_args: architecture arguments over the named weight set's ``model_args``.
        fuse: run the model with its BatchNorms folded (:func:`mhub.fuse`), under the same tolerances.
        log: receives progress lines.

    Returns:
        A :class:`Report`; check :attr:`Report.passed`.
    """
    import torch

    from mhub import get_registry
    from mhub.hub.convert import read_checkpoint

    from .convert import infer_head

    registry = get_registry()
    spec = registry.named_weights(name)  # arch.tag or an alias (the rule of mhub.create); None for a bare arch
    # The weight set's architecture arguments under the caller's, merged once: they build our model (img_size
    # shapes it) and go to a LIBRARY:NAME reference model.
    model_args = {**(spec.model_args if spec is not None else {}), **(model_args or {})}
    arch = registry.arch_for(registry.arch(name).name, **model_args)
    known = spec or registry.default_weights(arch.name)
    if images and spec is not None:
        spec.require_classifier("classify --image files")
    preprocess = imaging.override(known.preprocess if known else {}, preprocess)
    state = read_checkpoint(weights)
    model = load_model(arch, state)
    if fuse:  # a copy: ``state`` still feeds a torchvision/timm reference below
        from mhub.inference import fuse as fuse_model

        model = fuse_model(model)
        log("fused: BatchNorms folded, activations and additions merged into the convolutions (mhub.fuse)")
    num_classes, in_chans = infer_head(arch, state)

    report = Report()
    if reference is None and spec is not None and spec.reference_path is not None:
        reference = str(spec.reference_path)
    if reference is None:
        raise ConversionError(f"no reference for '{name}': give --reference FILE or LIBRARY:NAME (one of "
                              f"{', '.join(reference_libraries())})")
    if is_library_reference(reference):
        input_spec = InputSpec(size or input_size(preprocess), in_chans)
        ref = library_reference(reference, arch, state, input_spec, num_classes,
                                reference_weights=reference_weights,
                                model_args=model_args, log=log)
    else:
        ref = load_reference(reference)
        if ref.input.in_chans != in_chans:
            raise ConversionError(f"reference {reference} is for {ref.input.in_chans} input channels, the "
                                  f"weights take {in_chans}")
    producer = ref.metadata.get("producer", "?")
    where = producer if producer.startswith(reference) else f"{reference} (made by {producer})"
    report.reference = (f"{where}; input {INPUT_NAME} {ref.input.batch}x{ref.input.in_chans}x{ref.input.size}x"
                        f"{ref.input.size}, sha256 {tensor_sha256(reference_input(ref.input))[:12]}")
    x = reference_input(ref.input)
    for device in dict.fromkeys(devices):
        if device == "cpu":
            report.comparisons.append(compare(run_on(model, "cpu", x), ref.logits, TOLERANCES["fp32"], "cpu"))
        elif device == "cuda":
            if not torch.cuda.is_available():
                report.skipped.append("cuda: skipped: no CUDA device here (torch.cuda.is_available() is False)")
                continue
            for tf32, tolerance in ((False, TOLERANCES["fp32"]), (True, TOLERANCES["tf32"])):
                out = run_on(model, "cuda", x, tf32=tf32)
                report.comparisons.append(compare(out, ref.logits, tolerance, f"cuda tf32={'on' if tf32 else 'off'}"))
        else:
            raise ConversionError(f"unknown device '{device}'; use cpu or cuda")
    for image in images:
        report.images.append((str(image), classify(model, image, preprocess)))
    return report


def classify(model, image: str | Path, preprocess: Mapping[str, Any], k: int = 5) -> list[tuple[int, str, float]]:
    """Top-``k`` ``(class index, label, probability)`` of one image, preprocessed per the weight's ``preprocess``.

    Goes through :mod:`mhub.imaging`, as ``mhub predict`` does, so both commands see an image the same way.
    """
    import torch

    with torch.no_grad():
        logits = model(imaging.load_image(image, preprocess))
    return imaging.topk(logits, k)[0]
