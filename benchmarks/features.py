"""Feature extraction and UNet forward time against timm's features_only and segmentation_models_pytorch.

Same weights on both sides (random init, converted by the registered key maps), eval mode, no grad, one
thread, runs interleaved so that load on a shared machine hits both alike. Printed per pair: median time of
each and the ratio mhub / peer, plus the largest output difference:

- ``mhub.features(resnet50)`` vs ``timm.create_model("resnet50", features_only=True)`` (all 5 levels);
- the same with ``out_indices=(1,)``: mhub runs only as far as that level, timm's FeatureListNet too;
- ``mhub.features(vit_b_16)`` vs timm's ``features_only`` ViT (the last 3 blocks as stride-16 maps);
- ``mhub.create("unet_resnet34")`` vs ``smp.Unet("resnet34")``.

    python benchmarks/features.py [--size 224] [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

import mhub
from mhub._lazy import import_string


def converted(name: str, state, converter: str, **kwargs):
    model = mhub.create(name, **kwargs)
    model.load_state_dict(import_string(mhub.get_registry().converter(converter).function)(state))
    return model.eval()


def pairs(size: int):
    import segmentation_models_pytorch as smp
    import timm

    resnet = timm.create_model("resnet50").eval()
    timm_levels = timm.create_model("resnet50", features_only=True).eval()
    timm_levels.load_state_dict(resnet.state_dict(), strict=False)
    timm_stage1 = timm.create_model("resnet50", features_only=True, out_indices=(1,)).eval()
    timm_stage1.load_state_dict(resnet.state_dict(), strict=False)
    ours = converted("resnet50", resnet.state_dict(), "timm.resnet")
    yield "resnet50, 5 levels", mhub.features(ours), timm_levels
    yield "resnet50, out_indices=(1,)", mhub.features(ours, out_indices=(1,)), timm_stage1

    vit = timm.create_model("vit_base_patch16_224", img_size=size).eval()
    timm_vit = timm.create_model("vit_base_patch16_224", img_size=size, features_only=True).eval()
    timm_vit.load_state_dict({f"model.{k}": v for k, v in vit.state_dict().items()}, strict=False)
    yield "vit_b_16, last 3 blocks", mhub.features(converted("vit_b_16", vit.state_dict(), "timm.vit",
                                                             img_size=size)), timm_vit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unet = smp.Unet("resnet34", encoder_weights=None, classes=2).eval()
    yield "unet_resnet34", converted("unet_resnet34", unet.state_dict(), "smp.unet", num_classes=2), unet


def timed(model, x) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(1, 3, args.size, args.size)
    print(f"{'pair':<28} {'mhub ms':>9} {'peer ms':>9} {'ratio':>6}  max |diff|")
    for label, ours, peer in pairs(args.size):
        with torch.no_grad():
            got, expected = ours(x), peer(x)
        got, expected = (got, expected) if isinstance(got, list) else ([got], [expected])
        diff = max((a - b).abs().max().item() for a, b in zip(got, expected))
        times = {"ours": [], "peer": []}
        timed(ours, x), timed(peer, x)  # warm-up
        for _ in range(args.repeats):
            times["ours"].append(timed(ours, x))
            times["peer"].append(timed(peer, x))
        mine, theirs = statistics.median(times["ours"]), statistics.median(times["peer"])
        print(f"{label:<28} {1e3 * mine:9.1f} {1e3 * theirs:9.1f} {mine / theirs:6.2f}  {diff:.2e}")


if __name__ == "__main__":
    main()
