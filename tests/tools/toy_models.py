"""A tiny family for the toolchain tests, usable in-process and, through an entry point, in subprocesses.

``UpstreamToy`` plays a torchvision-style model (flat attribute names, registered in the order they run,
shortcut projection last); ``toynet`` is the same network in mhub's layout (``BackboneClassifier``) whose
block runs its same-shaped shortcut *first*, as mhub's ResNet does; ``torchvision.toy`` is the key map.
``toychain`` registers two same-shaped convolutions in the opposite order to the data flow between them:
the case the structural matcher must refuse.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from pathlib import Path

from mhub import hookimpl

HERE = Path(__file__).resolve().parent
PLUGIN_NAME = "toy-tools"


@hookimpl
def register_models(register):
    register("toynet", "toy_models:build_toynet", family="toy", first_conv="backbone.stem.0",
             classifier="classifier.fc")
    register("toychain", "toy_models:build_toychain", family="toychain")


@hookimpl
def register_converters(register):
    register("torchvision.toy", "toy_models:convert_torchvision_toy")


def build_toynet(num_classes: int = 1000, in_chans: int = 3, logit_scale: float = 1.0):
    """mhub layout of :class:`UpstreamToy`; ``logit_scale`` plays an architecture argument (``model_args``)."""
    import torch.nn as nn

    from mhub import BackboneClassifier

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_a, self.norm_a = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.conv_b, self.norm_b = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.shortcut = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))

        def forward(self, x):
            shortcut = self.shortcut(x)  # runs first, registered last
            y = self.norm_b(self.conv_b(self.norm_a(self.conv_a(x)).relu()))
            return (shortcut + y).relu()

    backbone = nn.Sequential(OrderedDict(
        stem=nn.Sequential(nn.Conv2d(in_chans, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8),
                           nn.ReLU()),
        block=Block(),
    ))
    layers = OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(8, num_classes))
    if logit_scale != 1.0:
        class Scale(nn.Module):
            def forward(self, x):
                return x * logit_scale

        layers["scale"] = Scale()
    return BackboneClassifier(backbone, nn.Sequential(layers))


def upstream_toy(num_classes: int = 1000, in_chans: int = 3):
    """A torchvision-style model: flat names, modules registered in the order they run."""
    import torch.nn as nn

    class UpstreamToy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(in_chans, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8)
            self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.conv3, self.bn3 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
            self.down = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
            self.fc = nn.Linear(8, num_classes)

        def forward(self, x):
            x = self.bn1(self.conv1(x)).relu()
            y = self.bn3(self.conv3(self.bn2(self.conv2(x)).relu()))
            return self.fc((y + self.down(x)).relu().mean(dim=(2, 3)))

    return UpstreamToy()


TORCHVISION_TOY = {
    "conv1": "backbone.stem.0", "bn1": "backbone.stem.1", "conv2": "backbone.block.conv_a",
    "bn2": "backbone.block.norm_a", "conv3": "backbone.block.conv_b", "bn3": "backbone.block.norm_b",
    "down.0": "backbone.block.shortcut.0", "down.1": "backbone.block.shortcut.1", "fc": "classifier.fc",
}


def convert_torchvision_toy(state):
    """Key map from :func:`upstream_toy`'s layout to ``toynet``'s."""
    out = OrderedDict()
    for key, tensor in state.items():
        module, _, leaf = key.rpartition(".")
        out[f"{TORCHVISION_TOY[module]}.{leaf}"] = tensor
    return out


def build_toychain(num_classes: int = 1000, in_chans: int = 3):
    """Two same-shaped convolutions registered second-then-first although the first feeds the second."""
    import torch.nn as nn

    from mhub import BackboneClassifier

    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(in_chans, 4, 3, padding=1)
            self.second = nn.Conv2d(4, 4, 3, padding=1)
            self.first = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.second(self.first(self.stem(x)).relu())

    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))
    return BackboneClassifier(Chain(), head)


def trained_upstream_state(num_classes: int = 10, seed: int = 0):
    """A deterministic upstream-layout state dict with non-trivial BatchNorm statistics."""
    import torch

    torch.manual_seed(seed)
    from conftest import randomise_batchnorm  # not at the top: subprocesses load this module as a plugin

    model = randomise_batchnorm(upstream_toy(num_classes), seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.num_batches_tracked.fill_(7)  # integer buffers must travel through conversion too
    return model.state_dict()


def install():
    """Register this module as a plugin in the current process (tests undo it with :func:`uninstall`)."""
    from mhub import plugins

    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    plugins.register_plugin(sys.modules[__name__], PLUGIN_NAME)


def uninstall():
    from mhub import plugins

    plugins.unregister_plugin(PLUGIN_NAME)


def subprocess_env(root: Path) -> dict[str, str]:
    """Environment under which ``python -m mhub`` sees this module as an installed plugin (entry point)."""
    dist_info = root / "mhub_toy_tools-1.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: mhub-toy-tools\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[mhub]\n{PLUGIN_NAME} = toy_models\n")
    path = os.pathsep.join(filter(None, [str(root), str(HERE), os.environ.get("PYTHONPATH", "")]))
    return {"PYTHONPATH": path}
