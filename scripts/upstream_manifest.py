"""Generate ``registry/<family>.toml`` from the upstream facts in ``data/upstream-weights.json``.

Usage: ``python scripts/upstream_manifest.py FAMILY [--data PATH] [-o registry/FAMILY.toml]``

Each torchvision entry becomes a ``torch-pickle`` weight set checked by its full sha256 where one was
seen, else by torch.hub's file-name prefix. Each timm entry becomes the HF hub ``model.safetensors`` where
its full digest is known (a full check beats an 8-hex prefix, which a forger can match in an hour), else
the legacy ``.pth`` release checked by the hash fragment of its file name; timm entries with neither, or
that repeat a torchvision file, are left out and listed on stderr. timm's ``crop_mode`` (when not
``center``) and test-time size are copied into ``preprocess``; a family row's ``model_args`` adds builder
arguments the weights need. torchvision weights whose classifier is unusable upstream are written headless
(``num_classes = 0``) where the family row says how they load, else left out. Only architectures and
converters that the installed plugins register are written.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from pathlib import Path

import mhub
from mhub._manifest import dump_manifest, parse_manifest
from mhub_vit import configs as vit_configs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "data" / "upstream-weights.json"

# family -> which upstream models it covers and how their checkpoints are converted.
#   models: globs over upstream model names; rename: upstream name -> our architecture name;
#   converters: upstream source -> converter name, overridden per model glob by converter_overrides;
#   model_args (optional): upstream-model glob -> builder arguments, a dict or a function of the fact entry
#   returning one (e.g. torchvision's GoogLeNet weights need transform_input=True);
#   headless (optional): how torchvision weights whose classifier upstream declares unusable load, headless
#   (num_classes = 0): their converter and builder arguments. Without it such weights are left out;
#   label_offset_converter (optional): the converter of legacy timm files whose classifier has extra leading
#   classes (``url_label_offset``, TF-slim's background class). Without it such files are left out;
#   tag_suffix (optional): upstream-model glob -> suffix of the tag, for upstream models that are one of our
#   architectures at another size (timm's vit_base_patch16_384 weights: vit_b_16.<tag>_384).
FAMILIES = {
    "resnet": {
        "models": ["resnet*", "wide_resnet*", "resnext*", "seresnet*", "seresnext*", "legacy_se*", "res2net*",
                   "res2next*"],
        "rename": {},
        "converters": {"torchvision": "torchvision.resnet", "timm": "timm.resnet"},
        "converter_overrides": {"legacy_se*": "timm.legacy_senet"},  # timm senet.py (Cadene) layout
    },
    "mobilenet": {
        "models": ["mobilenet*", "tf_mobilenetv3*", "mnasnet*", "semnasnet*"],
        # timm's mnasnet_100 is torchvision's mnasnet1_0 (same layers and constants); timm's mobilenetv1_100 is
        # our mobilenet_v1 (it has no hashed file upstream, so it is listed as left out)
        # torchvision's mnasnet0_5 file is a version-1 MNASNet (fixed 32-16 stem), our mnasnet0_5_v1stem.
        "rename": {"mnasnet_100": "mnasnet1_0", "mobilenetv1_100": "mobilenet_v1",
                   "mnasnet0_5": "mnasnet0_5_v1stem"},
        "converters": {"torchvision": "torchvision.mobilenet", "timm": "timm.mobilenet"},
        "converter_overrides": {},
    },
    "efficientnet": {
        "models": ["efficientnet*", "tf_efficientnet*"],
        "rename": {},
        "converters": {"torchvision": "torchvision.efficientnet", "timm": "timm.efficientnet"},
        "converter_overrides": {},
    },
    "vit": {
        "models": ["vit_*"],
        "rename": vit_configs.TIMM_NAMES,
        "converters": {"torchvision": "torchvision.vit", "timm": "timm.vit"},
        "converter_overrides": {},
        "model_args": {"vit_*": lambda item: _img_size(item, 224)},
        "tag_suffix": {"vit_*_384": "_384"},
    },
    "convnext": {
        "models": ["convnext*", "convmixer*"],
        "rename": {},
        "converters": {"torchvision": "torchvision.convnext", "timm": "timm.convnext"},
        "converter_overrides": {"convmixer*": "timm.convmixer"},
    },
    "mlp": {
        "models": ["mixer*", "resmlp*", "gmlp*"],
        "rename": {},
        "converters": {"timm": "timm.mlpmixer"},
        "converter_overrides": {"resmlp*": "timm.resmlp", "gmlp*": "timm.gmlp"},
    },
    "classic": {
        "models": ["alexnet", "vgg*", "squeezenet*", "densenet*", "googlenet"],
        "rename": {},
        "converters": {"torchvision": "torchvision.classic", "timm": "timm.classic"},
        "converter_overrides": {},
        # torchvision's GoogLeNet weights were trained on inputs normalised to [-1, 1]
        "model_args": {"googlenet": lambda item: {"transform_input": True} if item["source"] == "torchvision" else {}},
        # vgg16 IMAGENET1K_FEATURES: only the convolutions are valid; no dense layers at all
        "headless": {"converter": "torchvision.classic_features", "model_args": {"hidden": []},
                     "description": "convolutional features only (upstream: no usable classifier); loads headless"},
    },
    "inception": {
        "models": ["inception_v3", "inception_v4", "inception_resnet_v2", "legacy_xception", "xception*"],
        "rename": {"legacy_xception": "xception"},  # our xception is Chollet's, timm's legacy (Cadene) port
        "converters": {"torchvision": "torchvision.inception", "timm": "timm.inception"},
        "converter_overrides": {},
        # timm's legacy inception_v4 and inception_resnet_v2 files keep TF-slim's background class
        "label_offset_converter": "timm_background.inception",
        # torchvision's Inception v3 weights expect inputs in [-1, 1] and take ImageNet-normalised images
        # through transform_input, which torchvision switches on whenever it loads them.
        "model_args": {"inception_v3": lambda item: {"transform_input": True} if item["source"] == "torchvision"
                       else {}},
    },
}


def _img_size(item: dict, default: int) -> dict:
    """``img_size`` for weights trained at another size than the builder's default (timm: ``input_size``;
    torchvision: ``min_size``, the size its builder sets ``image_size`` to)."""
    size = item["input_size"][-1] if "input_size" in item else item["min_size"][0]
    return {"img_size": size} if size != default else {}


def _tag(row: dict, item: dict) -> str:
    for pattern, suffix in row.get("tag_suffix", {}).items():
        if fnmatch.fnmatchcase(item["model"], pattern):
            return item["tag"] + suffix
    return item["tag"]


def _model_args(row: dict, item: dict) -> dict:
    args: dict = {}
    for pattern, value in row.get("model_args", {}).items():
        if fnmatch.fnmatchcase(item["model"], pattern):
            args.update(value(item) if callable(value) else value)
    return args


def _finish(entry: dict, row: dict, item: dict) -> dict:
    args = _model_args(row, item)
    if args:
        entry["model_args"] = args
    return entry


def _hf_revision(item: dict) -> str:
    # "main (as referenced; not pinned)" -> "main"; a commit hash pins the file (the digest pins the bytes anyway)
    return item["sha256_revision"].split()[0]


def _converter(row: dict, source: str, model: str) -> str:
    for pattern, name in row["converter_overrides"].items():
        if fnmatch.fnmatchcase(model, pattern):
            return name
    return row["converters"][source]


def _torchvision_entry(item: dict, row: dict) -> dict | None:
    headless = not item.get("classifier_usable", True)
    if headless and "headless" not in row:
        return None
    entry = {
        "model": row["rename"].get(item["model"], item["model"]),
        "tag": _tag(row, item),
        "sources": [item["url"]],
        "format": "torch-pickle",
        "converter": row["headless"]["converter"] if headless else _converter(row, "torchvision", item["model"]),
        # the weights' own licence where it differs from the code's (SWAG weights: CC-BY-NC-4.0)
        "license": item.get("weights_license", item["license"]),
    }
    if item.get("sha256"):
        entry["sha256"] = item["sha256"]
    entry["sha256_prefix"] = item["sha256_prefix"]
    if item.get("size_bytes_seen"):
        entry["size"] = item["size_bytes_seen"]
    entry["num_classes"] = 0 if headless else item.get("num_classes", 1000)
    if item.get("is_default"):
        entry["default"] = True
    entry["metrics"] = {k: item[k] for k in ("acc1", "acc5") if item.get(k) is not None}
    entry["metrics"] = {("top1" if k == "acc1" else "top5"): v for k, v in entry["metrics"].items()}
    entry["preprocess"] = {
        "resize": item["resize_size"], "crop": item["crop_size"], "interpolation": item["interpolation"],
        "mean": item["mean"], "std": item["std"],
    }
    entry = _finish(entry, row, item)
    if headless:
        entry["model_args"] = {**entry.get("model_args", {}), **row["headless"]["model_args"]}
        entry["description"] = row["headless"]["description"]
    return entry


def _timm_entry(item: dict, row: dict) -> tuple[dict | None, str]:
    entry = {
        "model": row["rename"].get(item["model"], item["model"]),
        "tag": _tag(row, item),
        "converter": _converter(row, "timm", item["model"]),
        "license": item["license"],
    }
    if item.get("hf_hub_id") and item.get("sha256") and item.get("sha256_revision"):
        entry.update(sources=[f"hf://{item['hf_hub_id']}/model.safetensors@{_hf_revision(item)}"],
                     format="safetensors", sha256=item["sha256"])
    elif item.get("url") and item.get("url_hash_fragment"):
        entry.update(sources=[item["url"]], format="torch-pickle")
        if item.get("url_label_offset"):
            if "label_offset_converter" not in row:
                return None, "its legacy file has extra classes and the family row has no label_offset_converter"
            entry["converter"] = row["label_offset_converter"]
        if item.get("url_sha256"):
            entry["sha256"] = item["url_sha256"]
        entry["sha256_prefix"] = item["url_hash_fragment"]
    else:
        return None, "no hash known for any of its files"
    entry["num_classes"] = item.get("num_classes", 1000)
    results = item.get("timm_results_imagenet") or {}
    entry["metrics"] = {k: results[k] for k in ("top1", "top5") if results.get(k) is not None}
    crop = item["input_size"][-1]
    crop_pct = float(item.get("crop_pct", 0.875))
    entry["preprocess"] = {
        "resize": int(math.floor(crop / crop_pct)), "crop": crop, "crop_pct": crop_pct,
        "interpolation": item["interpolation"], "mean": item["mean"], "std": item["std"],
    }
    if item.get("crop_mode", "center") != "center":
        entry["preprocess"]["crop_mode"] = item["crop_mode"]
    if item.get("test_input_size"):
        entry["preprocess"]["test_size"] = item["test_input_size"][-1]
        if item.get("test_crop_pct") is not None:
            entry["preprocess"]["test_crop_pct"] = float(item["test_crop_pct"])
    entry["description"] = f"timm {item['model']}.{item['tag']}"
    return _finish(entry, row, item), ""


def generate(family: str, data: list[dict]) -> tuple[list[dict], list[str]]:
    """Return (manifest entries, reasons for what was left out) for one family."""
    row = FAMILIES[family]
    registry = mhub.get_registry()
    ours = [i for i in data if any(fnmatch.fnmatchcase(i["model"], p) for p in row["models"])]
    tv_urls = {i["url"] for i in ours if i["source"] == "torchvision"}
    entries, skipped, seen = [], [], set()
    for item in sorted(ours, key=lambda i: (i["source"] != "torchvision", i["model"], i["tag"])):
        name = f"{item['model']}.{item['tag']}"
        if item["source"] == "torchvision":
            entry, why = _torchvision_entry(item, row), "no usable classifier"
        elif item.get("url") in tv_urls:
            entry, why = None, "same file as a torchvision entry"
        else:
            entry, why = _timm_entry(item, row)
        if entry is not None and entry["model"] not in registry.archs:
            entry, why = None, f"architecture '{entry['model']}' is not registered by any plugin"
        if entry is not None and entry["converter"] not in registry.converters:
            entry, why = None, f"converter '{entry['converter']}' is not registered"
        if entry is not None and (entry["model"], entry["tag"]) in seen:
            entry, why = None, "duplicate model.tag"
        if entry is None:
            skipped.append(f"{item['source']} {name}: {why}")
            continue
        seen.add((entry["model"], entry["tag"]))
        entries.append(entry)
    has_default = {e["model"] for e in entries if e.get("default")}
    for entry in entries:  # an architecture without a torchvision default takes its first timm entry
        if entry["model"] not in has_default:
            entry["default"] = True
            has_default.add(entry["model"])
    return entries, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    entries, skipped = generate(args.family, json.loads(args.data.read_text()))
    left_out = "".join(f"#   {line}\n" for line in skipped)
    text = (f"# Weight sets of the {args.family} family, generated from upstream torchvision/timm metadata by\n"
            "# mhub's manifest generator (in its source repository); review changes like code.\n"
            + (f"# Upstream weight sets left out, and why:\n{left_out}" if skipped else "") + "\n"
            + dump_manifest(entries))
    parse_manifest(__import__("tomllib").loads(text), origin=str(args.output or "<stdout>"))  # must validate
    output = args.output or REPO / "registry" / f"{args.family}.toml"
    output.write_text(text)
    print(f"wrote {len(entries)} weight sets to {output}", file=sys.stderr)
    for line in skipped:
        print(f"  left out {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
