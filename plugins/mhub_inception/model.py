"""The Inception family: Inception v3, Inception-v4, Inception-ResNet-v2, Xception and aligned Xception.

Papers: Szegedy et al. 2016 (Inception v3, arXiv:1512.00567), Szegedy et al. 2017 (Inception-v4 and
Inception-ResNet, arXiv:1602.07261), Chollet 2017 (Xception, arXiv:1610.02357), Chen et al. 2018 (aligned
Xception, arXiv:1802.02611).

Implementations matched output for output in the project's test suite: torchvision's
``models/inception.py`` (torchvision 0.29) and timm's ``inception_v3.py``, ``inception_v4.py``,
``inception_resnet_v2.py``, ``xception.py`` (``legacy_xception``) and ``xception_aligned.py`` (timm 1.0).
Their checkpoints load through the key maps in :mod:`mhub_inception.convert`.

Three levels, as in Metalhead 0.8:

- high: :func:`Inceptionv3`, :func:`Inceptionv4`, :func:`InceptionResNetv2`, :func:`Xception` (``pretrained``,
  ``in_chans``, ``num_classes``);
- mid: :func:`inception_v3`, :func:`inception_v4`, :func:`inception_resnet_v2`, :func:`xception`,
  :func:`xception_aligned`, each taking its body as a table (:mod:`mhub_inception.configs`) and the BatchNorm
  constants, activation and head options;
- low: the blocks of :mod:`mhub_inception.blocks`, placed by :class:`mhub.builders.BlockBuilder` from the tables
  (:func:`inception_body`, :func:`xception_flows`).

Layout: ``backbone.stem`` (named conv units and pools: ``conv1a``, ``conv2a``, ... after TF-slim), then
``backbone.stages.<s>.<b>`` (Inception: grids 35x35, 17x17, 8x8) or ``backbone.entry|middle|exit.<b>`` (Xception
flows), Inception-ResNet-v2's ``backbone.head`` (1x1 conv unit) and the pre-activation Xceptions'
``backbone.act``; then ``classifier`` (pool, flatten, optional dropout, ``fc``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

import mhub
from mhub._model import BackboneClassifier
from mhub.builders import BlockBuilder, build_stages
from mhub.families import config_name
from mhub.layers import Renormalize, create_classifier, he_init

from . import configs
from .blocks import (
    VALID,
    InceptionConfigError,
    ConvUnits,
    branch,
    inception_module,
    preact_xception_block,
    table_block,
    xception_block,
)

LayerFactory = Callable[..., nn.Module]


# -- bodies from tables ------------------------------------------------------------------------------------
def inception_body(table: Sequence[Sequence[tuple]], in_chs: int, conv: ConvUnits) -> tuple[nn.Sequential, int]:
    """Stages of Inception blocks from a table of ``(block, out_chs, stride, options)`` rows.

    Returns:
        ``(stages, out_chs)``: an ``nn.Sequential`` of stage ``nn.Sequential`` s, and the last block's width.

    Raises:
        InceptionConfigError: an unknown block, or a row whose block does not produce its ``out_chs``/``stride``.
    """
    builder = BlockBuilder(
        table_block, [len(stage) for stage in table], in_chs,
        width_fn=lambda s, b: table[s][b][1], stride_fn=lambda s, b: table[s][b][2],
        block_kwargs=lambda s, b: dict(block=table[s][b][0], conv=conv, **table[s][b][3]),
    )
    return build_stages(builder), table[-1][-1][1]


FLOWS = ("entry", "middle", "exit")


def xception_flows(table: Sequence[Sequence[tuple]], in_chs: int, block_fn: LayerFactory, *,
                   drop_path_rate: float = 0.0) -> tuple[list[tuple[str, nn.Sequential]], int]:
    """The entry, middle and exit flows from a table of ``(widths, stride, options)`` rows.

    Args:
        table: three stages of rows.
        in_chs: the stem's output width.
        block_fn: called as ``block_fn(in_chs=, out_chs=, stride=, widths=, [drop_path_rate=], **options)``.
        drop_path_rate: stochastic depth reached by the last block (linear in the block index, as timm).

    Returns:
        ``([("entry", …), ("middle", …), ("exit", …)], out_chs)``.
    """
    if len(table) != len(FLOWS):
        raise InceptionConfigError(f"an Xception table has {len(FLOWS)} flows ({', '.join(FLOWS)}), got {len(table)}")
    builder = BlockBuilder(
        block_fn, [len(flow) for flow in table], in_chs,
        width_fn=lambda s, b: table[s][b][0][-1], stride_fn=lambda s, b: table[s][b][1],
        drop_path_rate=drop_path_rate,
        block_kwargs=lambda s, b: dict(widths=table[s][b][0], **table[s][b][2]),
    )
    return list(zip(FLOWS, build_stages(builder))), table[-1][-1][0][-1]


# -- feature points (timm's features_only levels) ---------------------------------------------------------
def _stem_points(*points: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"module": f"backbone.stem.{name}", "num_chs": chs, "reduction": reduction}
            for name, chs, reduction in points]


def _stage_points(table: Sequence[Sequence[tuple]], reduction: int) -> list[dict[str, Any]]:
    """Each Inception stage's output; ``reduction`` is the stem's."""
    points = []
    for stage_idx, rows in enumerate(table):
        reduction *= math.prod(row[2] for row in rows)
        points.append({"module": f"backbone.stages.{stage_idx}", "num_chs": rows[-1][1], "reduction": reduction})
    return points


def _chollet_points(flows: Sequence[Sequence[tuple]]) -> list[dict[str, Any]]:
    """timm's legacy Xception levels: the stem, then at each stride the activation starting the block after the
    last block there (``act1``), and the exit flow's output."""
    blocks = [(flow, index, row) for flow, rows in zip(FLOWS, flows) for index, row in enumerate(rows)]
    points = {2: {"module": "backbone.stem.conv2", "num_chs": 64, "reduction": 2}}
    reduction = 2
    for k, (flow, _, (widths, stride, _)) in enumerate(blocks):
        reduction *= stride
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        module = f"backbone.{following[0]}.{following[1]}.stack.act1" if following else f"backbone.{flow}"
        points[reduction] = {"module": module, "num_chs": widths[-1], "reduction": reduction}
    return list(points.values())


def _aligned_points(flows: Sequence[Sequence[tuple]], preact: bool) -> list[dict[str, Any]]:
    """timm's aligned Xception levels: inside every strided block, the map its strided convolution takes
    (``act3``, or ``conv2``'s output with pre-activation), then the exit flow's output."""
    points, reduction = [], 2
    for flow, rows in zip(FLOWS, flows):
        for index, (widths, stride, _) in enumerate(rows):
            if stride > 1:
                points.append({"module": f"backbone.{flow}.{index}.stack.{'conv2' if preact else 'act3'}",
                               "num_chs": widths[-2], "reduction": reduction})
                reduction *= stride
    return points + [{"module": "backbone.exit", "num_chs": flows[-1][-1][0][-1], "reduction": reduction}]


# -- stems -----------------------------------------------------------------------------------------------
def _first_convs(conv: ConvUnits, in_chans: int) -> list[tuple[str, nn.Module]]:
    return [("conv1a", conv(3, in_chans, 32, stride=2, padding=VALID)), ("conv2a", conv(3, 32, 32, padding=VALID)),
            ("conv2b", conv(3, 32, 64))]


def inception_v3_stem(conv: ConvUnits, in_chans: int = 3) -> tuple[nn.Sequential, int]:
    """Inception v3's stem (also Inception-ResNet-v2's): three 3x3 convs, max-pool, 1x1, 3x3, max-pool: 192 chs."""
    layers = _first_convs(conv, in_chans) + [
        ("pool3a", nn.MaxPool2d(3, 2)), ("conv3b", conv(1, 64, 80)), ("conv4a", conv(3, 80, 192, padding=VALID)),
        ("pool5a", nn.MaxPool2d(3, 2)),
    ]
    return nn.Sequential(OrderedDict(layers)), 192


def inception_v4_stem(conv: ConvUnits, in_chans: int = 3) -> tuple[nn.Sequential, int]:
    """Inception-v4's stem (Figure 3): three 3x3 convs, then three mixed modules: 384 channels."""
    layers = _first_convs(conv, in_chans) + [
        ("mixed3a", inception_module(branch(conv, 64, nn.MaxPool2d(3, 2)), branch(conv, 64, (3, 96, 2, VALID)))),
        ("mixed4a", inception_module(
            branch(conv, 160, (1, 64), (3, 96, 1, VALID)),
            branch(conv, 160, (1, 64), ((1, 7), 64), ((7, 1), 64), (3, 96, 1, VALID)))),
        ("mixed5a", inception_module(branch(conv, 192, (3, 192, 2, VALID)), branch(conv, 192, nn.MaxPool2d(3, 2)))),
    ]
    return nn.Sequential(OrderedDict(layers)), 384


# -- Inception v3's auxiliary classifier -------------------------------------------------------------------
class AuxClassifierModel(BackboneClassifier):
    """A :class:`mhub.BackboneClassifier` with an auxiliary classifier on one stage of the backbone.

    The backbone must be ``stem`` followed by ``stages``. In training mode the forward returns
    ``(logits, aux_logits)`` (the auxiliary loss regularises training, Szegedy et al. 2016 Section 4); in eval
    mode only the logits, like torchvision's ``Inception3``.
    """

    def __init__(self, backbone: nn.Module, classifier: nn.Module, aux: nn.Module, aux_stage: int, **features):
        super().__init__(backbone, classifier, **features)
        self.aux = aux
        self.aux_stage = aux_stage

    def forward(self, x: torch.Tensor):
        if not self.training:
            return self.classifier(self.backbone(x))
        x = self.backbone.stem(x)
        aux = None
        for index, stage in enumerate(self.backbone.stages):
            x = stage(x)
            if index == self.aux_stage:
                aux = self.aux(x)
        return self.classifier(x), aux


def inception_aux(conv: ConvUnits, in_chs: int, num_classes: int) -> nn.Sequential:
    """Inception v3's auxiliary head on the 17x17 grid: 5x5/3 average pool, 1x1 128, 5x5 768, classifier."""
    return nn.Sequential(OrderedDict(
        pool=nn.AvgPool2d(5, 3), conv0=conv(1, in_chs, 128), conv1=conv(5, 128, 768, padding=VALID),
        head=create_classifier(768, num_classes),
    ))


# -- mid level -------------------------------------------------------------------------------------------
def inception_v3(*, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False,
                 transform_input: bool = False, stages: Sequence = configs.INCEPTION_V3, dropout: float | None = 0.5,
                 pool: str = "avg", act_layer: LayerFactory = nn.ReLU, eps: float = 1e-3,
                 momentum: float = 0.1) -> BackboneClassifier:
    """Inception v3 (torchvision's layout and constants).

    Args:
        num_classes: classifier outputs (0: pooled features come out).
        in_chans: input channels.
        aux_logits: add the auxiliary classifier on the 17x17 grid (:class:`AuxClassifierModel`); off by
            default, as it only serves training. torchvision's weights hold a trained one, which
            ``mhub.create("inception_v3", pretrained=True, aux_logits=True)`` loads (weights without one leave it
            freshly initialised, with a warning).
        transform_input: start with :meth:`mhub.layers.Renormalize.transform_input`, so that weights trained on
            inputs in ``[-1, 1]`` take ImageNet-normalised images (torchvision's weights need it; their weight set
            sets it). With ``in_chans=1`` the grey channel is read as R, G and B and the first convolution keeps
            3 input channels, so the weights load unadapted.
        stages: the body table (see :mod:`mhub_inception.configs`).
        dropout: dropout before the final linear layer (torchvision: 0.5; ``None``: no dropout module).
        pool: classifier global pooling.
        act_layer: activation of every conv unit.
        eps: BatchNorm epsilon (TensorFlow's 1e-3).
        momentum: BatchNorm momentum (PyTorch convention; 0.1 as torchvision trains).

    Raises:
        ConfigError: ``transform_input`` with ``in_chans`` other than 3 or 1.
        InceptionConfigError: an inconsistent table.
    """
    transform = Renormalize.transform_input(in_chans) if transform_input else None
    conv = ConvUnits(act_layer, eps, momentum)
    stem, stem_chs = inception_v3_stem(conv, transform.out_chans if transform else in_chans)
    if transform:
        stem = nn.Sequential(OrderedDict([("renormalize", transform), *stem.named_children()]))
    body, out_chs = inception_body(stages, stem_chs, conv)
    backbone = nn.Sequential(OrderedDict(stem=stem, stages=body))
    classifier = create_classifier(out_chs, num_classes, pool=pool, dropout=dropout)
    features = dict(feature_info=_stem_points(("conv2b", 64, 2), ("conv4a", 192, 4)) + _stage_points(stages, 8))
    if aux_logits:
        aux_stage = len(stages) - 2
        model = AuxClassifierModel(backbone, classifier, inception_aux(conv, stages[aux_stage][-1][1], num_classes),
                                   aux_stage, **features)
    else:
        model = BackboneClassifier(backbone, classifier, **features)
    _truncated_normal_init(model)
    return model


def inception_v4(*, num_classes: int = 1000, in_chans: int = 3, stages: Sequence = configs.INCEPTION_V4,
                 dropout: float | None = None, pool: str = "avg", act_layer: LayerFactory = nn.ReLU,
                 eps: float = 1e-3, momentum: float = 0.1) -> BackboneClassifier:
    """Inception-v4 (timm's layout and constants); arguments as :func:`inception_v3`."""
    conv = ConvUnits(act_layer, eps, momentum)
    stem, stem_chs = inception_v4_stem(conv, in_chans)
    body, out_chs = inception_body(stages, stem_chs, conv)
    backbone = nn.Sequential(OrderedDict(stem=stem, stages=body))
    # timm's stride-4 level is the first mixed module, not the last one at that stride
    feature_info = _stem_points(("conv2b", 64, 2), ("mixed3a", 160, 4)) + _stage_points(stages, 8)
    return BackboneClassifier(backbone, create_classifier(out_chs, num_classes, pool=pool, dropout=dropout),
                              feature_info=feature_info)


def inception_resnet_v2(*, num_classes: int = 1000, in_chans: int = 3,
                        stages: Sequence = configs.INCEPTION_RESNET_V2, head_chs: int = 1536,
                        dropout: float | None = None, pool: str = "avg", act_layer: LayerFactory = nn.ReLU,
                        eps: float = 1e-3, momentum: float = 0.1) -> BackboneClassifier:
    """Inception-ResNet-v2 (timm's layout and constants).

    Args:
        head_chs: width of the 1x1 conv unit after the last stage (``backbone.head``).
        Others as :func:`inception_v3`.
    """
    conv = ConvUnits(act_layer, eps, momentum)
    stem, stem_chs = inception_v3_stem(conv, in_chans)
    body, out_chs = inception_body(stages, stem_chs, conv)
    backbone = nn.Sequential(OrderedDict(stem=stem, stages=body, head=conv(1, out_chs, head_chs)))
    feature_info = _stem_points(("conv2b", 64, 2), ("conv4a", 192, 4)) + _stage_points(stages[:-1], 8)
    feature_info.append({"module": "backbone.head", "num_chs": head_chs, "reduction": 32})
    return BackboneClassifier(backbone, create_classifier(head_chs, num_classes, pool=pool, dropout=dropout),
                              feature_info=feature_info)


def xception(*, num_classes: int = 1000, in_chans: int = 3, flows: Sequence = configs.XCEPTION,
             dropout: float | None = None, pool: str = "avg", act_layer: LayerFactory = nn.ReLU, eps: float = 1e-5,
             momentum: float = 0.1) -> BackboneClassifier:
    """Chollet's Xception (timm's ``legacy_xception``: PyTorch's BatchNorm epsilon 1e-5, as that port has).

    Two unpadded 3x3 conv units, then entry, middle and exit flows of :func:`~mhub_inception.blocks.xception_block`
    with max-pool downsampling and no norm after the depthwise convolutions. Arguments as :func:`inception_v3`;
    ``flows`` is the body table.
    """
    conv = ConvUnits(act_layer, eps, momentum)
    stem = nn.Sequential(OrderedDict(conv1=conv(3, in_chans, 32, stride=2, padding=VALID),
                                     conv2=conv(3, 32, 64, padding=VALID)))
    body, out_chs = xception_flows(flows, 64, partial(xception_block, conv=conv, pool_stride=True, dw_norm=False))
    model = BackboneClassifier(nn.Sequential(OrderedDict([("stem", stem), *body])),
                               create_classifier(out_chs, num_classes, pool=pool, dropout=dropout),
                               feature_info=_chollet_points(flows))
    # He-normal convolutions (fan-out) and unit BatchNorms, as Cadene's port and timm initialise; he_init also
    # zeroes the classifier's bias, where they keep PyTorch's default
    he_init(model, linear_std=None)
    return model


def xception_aligned(config: str = "41", *, num_classes: int = 1000, in_chans: int = 3, flows: Sequence | None = None,
                     drop_path_rate: float = 0.0, padding: str | None = None, dropout: float | None = None,
                     pool: str = "avg", act_layer: LayerFactory = nn.ReLU, eps: float = 1e-3,
                     momentum: float = 0.1) -> BackboneClassifier:
    """Aligned Xception (DeepLab's modification; timm's ``xception_aligned.py``).

    Args:
        config: ``"41"``, ``"65"``, ``"71"``, or ``"41p"``/``"65p"`` for the pre-activation variants (blocks of
            :func:`~mhub_inception.blocks.preact_xception_block`, one more activation before the head).
        flows: a body table replacing the config's, for the config's block function (pre-activation blocks
            take no ``first_act``/``inner_act`` options).
        drop_path_rate: stochastic depth reached by the last block.
        padding: depthwise padding, ``None`` (symmetric, as timm's weights) or ``"same"`` (TensorFlow's).
        Others as :func:`inception_v3`.

    Raises:
        InceptionConfigError: an unknown config.
    """
    if config not in configs.XCEPTION_ALIGNED:
        raise InceptionConfigError(f"no aligned Xception config {config!r}; valid: "
                                   f"{', '.join(configs.XCEPTION_ALIGNED)}")
    preact = config.endswith("p")
    conv = ConvUnits(act_layer, eps, momentum)
    stem = nn.Sequential(OrderedDict(conv1=conv(3, in_chans, 32, stride=2),
                                     conv2=conv(3, 32, 64, False, norm_layer=None) if preact else conv(3, 32, 64)))
    block = preact_xception_block if preact else xception_block
    flows = flows or configs.XCEPTION_ALIGNED[config]
    body, out_chs = xception_flows(flows, 64, partial(block, conv=conv, padding=padding),
                                   drop_path_rate=drop_path_rate)
    # The pre-activation blocks end on a convolution: one more activation before the head.
    tail = [("act", act_layer())] if preact else []
    return BackboneClassifier(nn.Sequential(OrderedDict([("stem", stem), *body, *tail])),
                              create_classifier(out_chs, num_classes, pool=pool, dropout=dropout),
                              feature_info=_aligned_points(flows, preact))


# torchvision's smaller standard deviations in Inception v3's auxiliary classifier (its ``stddev`` attributes)
_AUX_STDS = {"aux.conv1.conv": 0.01, "aux.head.fc": 0.001}


def _truncated_normal_init(model: nn.Module) -> None:
    # torchvision's Inception v3 initialisation: truncated normal (cut at +-2) for convs and linears, std 0.1
    # but for the auxiliary classifier's 5x5 convolution (0.01) and linear layer (0.001)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=_AUX_STDS.get(name, 0.1), a=-2, b=2)


# -- high level ------------------------------------------------------------------------------------------
def Inceptionv3(*, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
                **kwargs: Any) -> nn.Module:
    """Inception v3: ``Inceptionv3(pretrained=True)`` loads torchvision's weights (which set ``transform_input``).

    Args:
        pretrained: load the registry's default weights (``mhub.create("inception_v3", pretrained=True)``).
        in_chans: input channels.
        num_classes: classifier outputs (default 1000, or the weights' classes when pretrained).
        **kwargs: options of :func:`inception_v3` (``aux_logits``, ``dropout``, ...).
    """
    return mhub.create("inception_v3", pretrained, num_classes, in_chans, **kwargs)


def Inceptionv4(*, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
                **kwargs: Any) -> nn.Module:
    """Inception-v4; arguments as :func:`Inceptionv3`, options of :func:`inception_v4`."""
    return mhub.create("inception_v4", pretrained, num_classes, in_chans, **kwargs)


def InceptionResNetv2(*, pretrained: bool = False, in_chans: int = 3, num_classes: int | None = None,
                      **kwargs: Any) -> nn.Module:
    """Inception-ResNet-v2; arguments as :func:`Inceptionv3`, options of :func:`inception_resnet_v2`."""
    return mhub.create("inception_resnet_v2", pretrained, num_classes, in_chans, **kwargs)


def Xception(depth: int | None = None, *, preact: bool = False, pretrained: bool = False, in_chans: int = 3,
             num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """Xception: ``Xception()`` is Chollet's, ``Xception(65)`` the aligned Xception-65.

    Args:
        depth: ``None`` (Chollet's), 41, 65 or 71 (aligned).
        preact: the pre-activation aligned variant (41 and 65 only).
        pretrained, in_chans, num_classes: as :func:`Inceptionv3`.
        **kwargs: options of :func:`xception` or :func:`xception_aligned`.

    Raises:
        InceptionConfigError: an unknown depth, or ``preact`` without a depth that has a pre-activation variant.
    """
    aligned = {int(c.rstrip("p")): f"xception{c}" for c in configs.XCEPTION_ALIGNED if c.endswith("p") == preact}
    if preact:
        name = config_name("Xception(preact=True)", depth, aligned, what="a depth", error=InceptionConfigError)
    else:
        names = {None: "xception", **aligned}
        name = names[None] if depth is None else config_name("Xception", depth, names, error=InceptionConfigError)
    return mhub.create(name, pretrained, num_classes, in_chans, **kwargs)
