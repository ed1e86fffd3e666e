"""Pretrained loading: build on the meta device, assign tensors straight from the memory-mapped file.

No random initialisation runs and no second copy of the weights is made: parameters become views of
the safetensors file's private (copy-on-write) mapping, so pages are read when first used and training
in place never touches the cache. Only what adaptation changes gets new memory: a re-initialised head
(``num_classes``), an adapted first convolution (``in_chans``), tensors cast to the model's dtype.

Like torchvision and timm, the model is returned in training mode (``nn.Module``'s default); call
``model.eval()`` for inference.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

from .._errors import ConversionError
from ..keymap import listing
from .._specs import ArchSpec, WeightSpec

MAX_LISTED = 20  # keys named in an error message before "... and N more"


def load_pretrained(arch: ArchSpec, weights: WeightSpec, num_classes: int | None = None, in_chans: int = 3,
                    **kwargs: Any):
    """Build ``arch`` and load ``weights`` into it, pulling (and converting) them first if needed.

    Args:
        arch: the architecture.
        weights: the weight set (its file must be in our layout after the converter).
        num_classes: classifier outputs; None keeps the weights' own. A different value re-initialises
            the head (``WeightSpec.classifier`` or ``ArchSpec.classifier``) with a warning.
            Auxiliary classifiers (``ArchSpec.aux_classifiers``) the model has and the weights lack are
            initialised fresh, with one warning; those the weights have and the model lacks are left out.
        in_chans: input channels. A different count than the weights' adapts the first convolution
            (``first_conv``): summed over input channels for 1, otherwise repeated and scaled by
            ``old/in_chans`` so activations keep their scale.
        **kwargs: passed to the builder, over the weight set's ``model_args``.

    Returns:
        The model, in training mode.

    Raises:
        ConversionError: missing, unexpected or mis-shaped keys (listed), or an adaptation the
            architecture does not declare the layers for.
    """
    from .client import pull

    path = pull(weights)
    return load_file_into(arch, path, weights=weights, num_classes=num_classes, in_chans=in_chans, **kwargs)


def load_file_into(arch: ArchSpec, path, *, weights: WeightSpec | None = None, num_classes: int | None = None,
                   in_chans: int = 3, **kwargs: Any):
    """Build ``arch`` on the meta device and assign the tensors of the safetensors file ``path``.

    Raises:
        ConversionError: the file is not readable safetensors (even one matching its manifest's hash), or
            its tensors do not fit the model.
    """
    import torch

    from .._factory import build
    from .convert import read_safetensors

    if weights is not None:
        kwargs = {**weights.model_args, **kwargs}
    file_classes = weights.num_classes if weights is not None else None
    head = (weights.classifier if weights is not None else None) or arch.classifier
    first_conv = (weights.first_conv if weights is not None else None) or arch.first_conv
    label = weights.name if weights is not None else arch.name

    state = dict(read_safetensors(path, f"{label}: {path}"))  # views of one private mmap
    if file_classes is None:
        file_classes = _head_outputs(state, head)
    if num_classes is None:
        num_classes = file_classes if file_classes is not None else 1000

    with torch.device("meta"), _skip_meta_init():
        model = build(arch, num_classes=num_classes, in_chans=in_chans, **kwargs)
    expected = model.state_dict(keep_vars=True)

    new_head = file_classes is not None and num_classes != file_classes
    head_keys: set[str] = set()
    if new_head:
        if not head:
            raise ConversionError(f"{label}: num_classes={num_classes} differs from the weights' {file_classes}, "
                                  f"but '{arch.name}' declares no classifier prefix to re-initialise")
        head_keys = {k for k in expected if _under(k, head)}
        state = {k: v for k, v in state.items() if not _under(k, head)}
    if head_keys:  # (num_classes=0 may leave no head at all: nothing new to warn about)
        warnings.warn(f"{label}: num_classes={num_classes} differs from the weights' {file_classes}; the "
                      f"classifier '{head}' is newly initialised and needs training", UserWarning, stacklevel=4)
    fresh_aux = _absent_aux_classifiers(arch, state, expected)
    aux_keys = {k for k in expected if any(_under(k, prefix) for prefix in fresh_aux)}
    if fresh_aux:
        many = len(fresh_aux) > 1
        warnings.warn(f"{label}: the weights hold no auxiliary classifier{'s' * many} "
                      f"{', '.join(map(repr, fresh_aux))}; {'they are' if many else 'it is'} newly initialised and "
                      f"need{'' if many else 's'} training", UserWarning, stacklevel=4)

    conv_key = f"{first_conv}.weight" if first_conv else None
    if conv_key in state and conv_key in expected and state[conv_key].shape[1] != expected[conv_key].shape[1]:
        state[conv_key] = adapt_input_conv(state[conv_key], expected[conv_key].shape[1])
    elif in_chans != 3 and not first_conv:
        raise ConversionError(f"{label}: in_chans={in_chans} needs the first convolution adapted, but "
                              f"'{arch.name}' declares no first_conv prefix")

    adapt_to_model(model, state)
    for key in expected.keys() - state.keys():
        if key.endswith(".num_batches_tracked"):  # absent from pre-2018 checkpoints; BatchNorm's own default
            state[key] = torch.zeros((), dtype=torch.long)
    _check_keys(label, state, expected, head_keys | aux_keys)
    for key, tensor in state.items():
        want = expected[key]
        if tensor.dtype != want.dtype and tensor.is_floating_point() and want.is_floating_point():
            state[key] = tensor.to(want.dtype)
    model.load_state_dict(state, strict=not (head_keys or aux_keys), assign=True)
    for prefix in ([head] if head_keys else []) + fresh_aux:
        _initialise(model, prefix)
    _materialise_leftovers(model, arch, num_classes=num_classes, in_chans=in_chans, **kwargs)
    return model


def adapt_input_conv(weight, in_chans: int):
    """Adapt a first-conv weight ``(out, c, kh, kw)`` to ``in_chans`` inputs.

    One channel: the sum over the ``c`` channels, so a grey image gives the response the original
    filters give to that image replicated over ``c`` channels. More: the channels repeated cyclically and
    scaled by ``c / in_chans``, so the expected activation magnitude is unchanged.
    """
    old = weight.shape[1]
    dtype = weight.dtype
    weight = weight.float()  # sum and scale in float32 even for a half-precision file, then store as it was
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True).to(dtype)
    repeats = math.ceil(in_chans / old)
    return (weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (old / in_chans)).to(dtype)


def adapt_to_model(model, state) -> None:
    """Let each module that defines ``adapt_state_dict(state, prefix)`` rewrite its own entries in place.

    This is how a model built for another input size takes a checkpoint trained at the weights' size: e.g.
    :class:`mhub.layers.PositionEmbedding` resamples a position embedding to the grid it was built with.
    """
    for name, module in model.named_modules():
        adapt = getattr(module, "adapt_state_dict", None)
        if callable(adapt):
            adapt(state, f"{name}." if name else "")


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def _absent_aux_classifiers(arch: ArchSpec, state: dict, expected) -> list[str]:
    """The model's auxiliary classifiers the weights lack entirely (to initialise fresh).

    Auxiliary classifiers in the weights that the model was built without are dropped from ``state``: they
    only serve training (torchvision's ``aux_logits=False`` does the same).
    """
    absent = []
    for prefix in arch.aux_classifiers:
        in_model = any(_under(k, prefix) for k in expected)
        in_file = [k for k in state if _under(k, prefix)]
        if in_model and not in_file:
            absent.append(prefix)
        elif in_file and not in_model:
            for key in in_file:
                del state[key]
    return absent


def _head_outputs(state, head: str | None) -> int | None:
    weight = state.get(f"{head}.weight") if head else None
    return int(weight.shape[0]) if weight is not None and weight.dim() >= 1 else None


def _check_keys(label: str, state, expected, skipped: set[str]) -> None:
    missing = set(expected) - set(state) - skipped
    unexpected = set(state) - set(expected)
    mis_shaped = [f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
                  for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {listing(sorted(missing), MAX_LISTED)}")
    if unexpected:
        problems.append(f"unexpected keys: {listing(sorted(unexpected), MAX_LISTED)}")
    if mis_shaped:
        problems.append(f"shape mismatches: {listing(sorted(mis_shaped), MAX_LISTED)}")
    if problems:
        raise ConversionError(f"{label}: the weights do not fit the model: " + "; ".join(problems))


def _initialise(model, prefix: str) -> None:
    """Give the head real memory and the layers' own default initialisation."""
    head = model.get_submodule(prefix)
    head.to_empty(device="cpu")
    for module in head.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def _materialise_leftovers(model, arch: ArchSpec, **build_kwargs: Any) -> None:
    """Give real values to tensors still on the meta device (non-persistent buffers the file lacks).

    Their values come from ``__init__`` code that cannot be re-run piecemeal, so the model is built once
    more with only its parameters sent to the meta device as they are registered: buffers get their
    real values, parameters are never allocated for real nor initialised. Architectures without such
    buffers (most) skip this.
    """
    leftovers = [name for name, tensor in list(model.named_parameters()) + list(model.named_buffers())
                 if tensor.is_meta]
    if not leftovers:
        return
    from .._factory import build

    with _parameters_on_meta(), _skip_meta_init():
        reference = build(arch, **build_kwargs)
    buffers = dict(reference.named_buffers())
    for name in leftovers:
        owner_name, _, attr = name.rpartition(".")
        if name not in buffers or buffers[name].is_meta:
            raise ConversionError(f"{arch.name}: cannot materialise '{name}': it is not in the weights file "
                                  "and is not a buffer the builder computes")
        model.get_submodule(owner_name)._buffers[attr] = buffers[name]


# In-place initialisers: on a meta tensor they only cost time (meta ``normal_`` runs a Python reference
# implementation whose first use imports torch._dynamo, ~1 s), since a meta tensor holds no values.
_RANDOM_FILLS = ("normal_", "uniform_", "bernoulli_", "exponential_", "geometric_", "log_normal_", "cauchy_",
                 "random_", "fill_", "zero_")


def _skip_meta_init():
    """A torch-function mode under which initialisers applied to meta tensors return them untouched.

    Covers every ``torch.nn.init`` function and the in-place random fills a builder may call directly;
    tensors on real devices are initialised as usual. Modes are per thread.
    """
    import torch
    from torch.overrides import TorchFunctionMode

    skipped = {getattr(torch.Tensor, name) for name in _RANDOM_FILLS}
    skipped |= {getattr(torch.nn.init, name) for name in dir(torch.nn.init)
                if name.endswith("_") and not name.startswith("_") and callable(getattr(torch.nn.init, name))}

    class SkipMetaInit(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            target = args[0] if args else kwargs.get("tensor")
            if func in skipped and isinstance(target, torch.Tensor) and target.is_meta:
                return target
            return func(*args, **kwargs)

    return SkipMetaInit()


@contextlib.contextmanager
def _parameters_on_meta():
    """While active, every ``nn.Module`` parameter moves to the meta device as it is registered.

    Patches ``nn.Module.register_parameter`` process-wide for the duration of one build (as
    accelerate's ``init_empty_weights`` does); do not build models on other threads meanwhile.
    """
    from torch import nn

    original = nn.Module.register_parameter

    def register_parameter(self, name, param):
        original(self, name, param)
        if param is not None and not param.is_meta:
            self._parameters[name] = type(param)(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register_parameter
    try:
        yield
    finally:
        nn.Module.register_parameter = original
