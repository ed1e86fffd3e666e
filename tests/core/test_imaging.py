"""mhub.imaging against upstream's own eval transforms: for every distinct preprocess setting in registry/*.toml
(read at test time, so a new family is covered by adding its manifest), the tensor equals torchvision's
``ImageClassification`` preset and timm's ``create_transform(**resolve_data_config(...))`` exactly, and a
``transforms.v2`` chain to within one float32 ulp of its ``ToDtype`` scaling; on real photos of odd and even
sizes, portrait and landscape, smaller and larger than the crop, in RGB, greyscale, RGBA, palette and 16-bit.
Plus class names, file loading and errors."""

from __future__ import annotations

import json

import pytest
import torch

import mhub
import mhub_registry
from mhub import imaging
from mhub._manifest import load_manifest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

skimage_data = pytest.importorskip("skimage.data")
Image = pytest.importorskip("PIL.Image")
np = pytest.importorskip("numpy")
timm_data = pytest.importorskip("timm.data")
v2 = pytest.importorskip("torchvision.transforms.v2")
from torchvision.transforms import InterpolationMode  # noqa: E402
from torchvision.transforms._presets import ImageClassification  # noqa: E402  (what Weights.transforms() is)


def registry_settings() -> dict[str, dict]:
    """Every distinct ``preprocess`` table of the first-party manifests, keyed by the first set that uses it."""
    settings: dict[str, dict] = {}
    for path in sorted(mhub_registry.DIRECTORY.glob("*.toml")):
        for spec in load_manifest(path):
            key = json.dumps(spec.preprocess, sort_keys=True)
            settings.setdefault(key, (spec.name, spec.preprocess))
    return dict(settings.values())


REGISTRY = registry_settings()


def photos() -> dict[str, object]:
    """Real photos (scikit-image) cut to odd and even sizes, in the modes users feed."""
    chelsea, astronaut, coffee = skimage_data.chelsea(), skimage_data.astronaut(), skimage_data.coffee()
    alpha = np.linspace(0, 255, chelsea.shape[1], dtype=np.uint8)[None, :].repeat(chelsea.shape[0], 0)
    grey = np.asarray(Image.fromarray(astronaut).convert("L"), dtype=np.uint16)
    return {
        "451x300": Image.fromarray(chelsea),  # odd width, even height
        "511x383": Image.fromarray(astronaut[:383, :511]),  # odd both
        "600x400": Image.fromarray(coffee),  # even both
        "233x400-portrait": Image.fromarray(coffee[:, 100:333]),
        "113x75-upscaled": Image.fromarray(chelsea[::4, ::4]),
        "L-385x512": Image.fromarray(astronaut[:, :385]).convert("L"),
        "RGBA-451x300": Image.fromarray(np.dstack([chelsea, alpha])),
        "P-301x400": Image.fromarray(coffee[:, :301]).convert("P"),
        "I;16-512x437": Image.fromarray(grey[:437] * 2),  # half the values above 255: Pillow clamps them
    }


PHOTOS = photos()
SOME_PHOTOS = ("451x300", "600x400", "113x75-upscaled")  # for second passes over a setting: odd, even, upscaled


def torchvision_preset(spec: dict):
    return ImageClassification(crop_size=spec["crop"], resize_size=spec["resize"], mean=spec["mean"],
                               std=spec["std"], interpolation=InterpolationMode(spec["interpolation"]))


def torchvision_v2(spec: dict):
    return v2.Compose([v2.Resize(spec["resize"], interpolation=InterpolationMode(spec["interpolation"])),
                       v2.CenterCrop(spec["crop"]), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(spec["mean"], spec["std"])])


def timm_transform(preprocess: dict, test: bool):
    """timm's eval transform for a manifest table, through its own data-config resolution."""
    cfg = {"input_size": (3, preprocess["crop"], preprocess["crop"]), "crop_pct": preprocess["crop_pct"]}
    for ours, theirs in (("interpolation", "interpolation"), ("mean", "mean"), ("std", "std"),
                         ("crop_mode", "crop_mode"), ("test_crop_pct", "test_crop_pct")):
        if ours in preprocess:
            cfg[theirs] = preprocess[ours]
    if "test_size" in preprocess:
        cfg["test_input_size"] = (3, preprocess["test_size"], preprocess["test_size"])
    config = timm_data.resolve_data_config(pretrained_cfg=cfg, use_test_size=test)
    return timm_data.create_transform(**config, is_training=False)


def v2_tolerance(spec: dict, reference: torch.Tensor) -> float:
    # v2's ToDtype multiplies by 1/255 where the others divide by 255: one float32 ulp apart in [0, 1] (<= 2**-24),
    # which rounding ``x - mean`` can make two before the division by std, plus one ulp of the result
    return 2 * 2.0**-24 / min(spec["std"]) + torch.finfo(torch.float32).eps * float(reference.abs().max())


def assert_matches_upstream(preprocess: dict, test: bool = False, photos: tuple[str, ...] = tuple(PHOTOS)) -> None:
    """A timm set (one with ``crop_pct``) against timm, any other against torchvision's preset and v2."""
    spec = imaging.resolve(preprocess, test=test)
    if "crop_pct" in preprocess:
        references = [("timm", timm_transform(preprocess, test), 0.0)]
    else:
        assert spec["crop_mode"] == "center", "torchvision has no crop modes: a set with one needs its crop_pct"
        references = [("torchvision preset", torchvision_preset(spec), 0.0),
                      ("torchvision v2", torchvision_v2(spec), None)]
    for photo in photos:
        image = PHOTOS[photo]
        ours = imaging.to_tensor(image, preprocess, test=test)
        assert ours.shape == (3, spec["crop"], spec["crop"]) and ours.dtype == torch.float32
        rgb = image.convert("RGB")  # what ImageFolder's and timm's loaders hand their transforms
        for name, transform, atol in references:
            expected = transform(rgb)
            tolerance = v2_tolerance(spec, expected) if atol is None else atol
            torch.testing.assert_close(ours, expected, rtol=0, atol=tolerance,
                                       msg=lambda m, name=name, photo=photo: f"{name}, {photo}: {m}")


def test_the_registry_has_settings_of_both_libraries():
    # the parity test below is only as good as its coverage; the first-party manifests had 45 settings
    assert len(REGISTRY) >= 45
    assert any("crop_pct" in p for p in REGISTRY.values()) and any("crop_pct" not in p for p in REGISTRY.values())


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registry_setting_matches_torchvision_and_timm(name):
    assert_matches_upstream(REGISTRY[name])
    if "test_size" in REGISTRY[name] or "test_crop_pct" in REGISTRY[name]:
        assert_matches_upstream(REGISTRY[name], test=True, photos=SOME_PHOTOS)


@pytest.mark.parametrize("preprocess", [
    {"crop": 384, "crop_pct": 1.0, "crop_mode": "squash", "interpolation": "bicubic", "test_size": 480},
    {"crop": 240, "crop_pct": 0.9, "crop_mode": "squash", "interpolation": "bilinear"},
    {"crop": 224, "crop_pct": 0.9, "crop_mode": "border", "interpolation": "bicubic", "mean": [0.5] * 3,
     "std": [0.5] * 3},
    {"crop": 161, "crop_pct": 1.0, "crop_mode": "border", "interpolation": "bilinear"},
    {"crop": 224, "crop_pct": 0.95, "interpolation": "bicubic", "test_size": 288, "test_crop_pct": 1.0},
    {"crop": 176, "crop_pct": 0.875, "interpolation": "bilinear", "test_size": 224, "test_crop_pct": 0.965},
    {"crop": 225, "crop_pct": 0.95, "interpolation": "lanczos", "test_crop_pct": 0.9},
    {"crop": 97, "crop_pct": 0.8, "interpolation": "nearest"},
    {"crop": 96, "crop_pct": 0.875, "interpolation": "box"},
    {"crop": 96, "crop_pct": 0.875, "interpolation": "hamming"},
], ids=lambda p: "-".join(str(v) for v in p.values() if not isinstance(v, list)))
def test_crop_modes_test_sizes_and_filters_match_timm(preprocess):
    """Settings the registry may not hold yet (timm's squash and border modes, test-time sizes, other filters)."""
    assert_matches_upstream(preprocess)
    assert_matches_upstream(preprocess, test=True, photos=SOME_PHOTOS)


def test_torchvision_sets_match_at_the_sizes_where_the_old_arithmetic_differed():
    # 640x427 -> 383x256 (truncated, not rounded); 255 - 240 = 15 is odd, so the crop offset rounds 7.5 to 8
    image = Image.fromarray(skimage_data.coffee()).resize((640, 427))
    assert imaging.scaled_size(640, 427, imaging.resolve({"resize": 256})) == (383, 256)
    for resize, crop in ((256, 224), (255, 240), (331, 300), (219, 192), (235, 224)):
        spec = imaging.resolve({"resize": resize, "crop": crop, "interpolation": "bicubic"})
        torch.testing.assert_close(imaging.to_tensor(image, spec), torchvision_preset(spec)(image), rtol=0, atol=0)


def test_resolve_fills_defaults_derives_timm_sizes_and_test_sizes():
    assert imaging.resolve({}) == {"resize": 256, "crop": 224, "crop_mode": "center", "interpolation": "bilinear",
                                   "mean": imaging.IMAGENET_MEAN, "std": imaging.IMAGENET_STD}
    assert imaging.resolve({"crop": 240, "crop_pct": 0.9})["resize"] == 266  # timm: floor(240 / 0.9)
    assert imaging.resolve({"crop": 380, "crop_pct": 0.922, "resize": 412})["resize"] == 412
    timm_set = {"crop": 224, "crop_pct": 0.95, "test_size": 288, "test_crop_pct": 1.0}
    assert imaging.resolve(timm_set)["crop"] == 224
    assert imaging.resolve(timm_set, test=True)["crop"] == imaging.resolve(timm_set, test=True)["resize"] == 288
    assert imaging.resolve({"crop": 176, "crop_pct": 0.9, "test_size": 224}, test=True)["resize"] == 248
    assert imaging.resolve({"resize": 232, "crop": 224}, test=True)["resize"] == 232  # no test size: unchanged


def test_command_line_overrides_recompute_a_timm_resize():
    timm_set = {"resize": 235, "crop": 224, "crop_pct": 0.95, "interpolation": "bicubic"}
    assert imaging.resolve(imaging.override(timm_set, {"crop": 288}))["resize"] == 303  # floor(288 / 0.95)
    assert imaging.resolve(imaging.override(timm_set, {"crop_pct": 1.0}))["resize"] == 224
    assert imaging.override(timm_set, {"interpolation": "bilinear"})["resize"] == 235
    assert imaging.resolve(imaging.override(timm_set, {"resize": 250}))["resize"] == 250  # crop_pct dropped
    with pytest.raises(mhub.MhubError, match="resize 250 and crop_pct 0.9, which means resize 248"):
        imaging.resolve(imaging.override(timm_set, {"resize": 250, "crop_pct": 0.9}))
    torchvision_set = {"resize": 232, "crop": 224}
    assert imaging.override(torchvision_set, {"crop": 200}) == {"resize": 232, "crop": 200}


@pytest.mark.parametrize("preprocess,message", [
    ({"interpolation": "lanczos3"}, "unknown interpolation 'lanczos3'"),
    ({"crop_mode": "letterbox"}, "unknown crop_mode 'letterbox'"),
    ({"crop": 224, "resize": 200}, "0 < crop <= resize"),
    ({"crop": 224, "crop_pct": 0.9, "resize": 256}, "resize 256 and crop_pct 0.9, which means resize 248"),
])
def test_invalid_preprocessing_is_a_clear_error(preprocess, message):
    with pytest.raises(mhub.MhubError, match=message):
        imaging.resolve(preprocess)


def test_only_pil_images_are_accepted():
    with pytest.raises(mhub.MhubError, match="expected a PIL.Image, got ndarray"):
        imaging.to_tensor(skimage_data.coffee())


def test_class_names_are_imagenet_1k():
    names = imaging.class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[281] == "tabby" and names[967] == "espresso"
    assert imaging.label(967) == "espresso" and imaging.label(3, num_classes=10) == "class 3"


def test_load_images_batches_files_of_any_mode(tmp_path):
    paths = []
    for name, image in (("chelsea", PHOTOS["451x300"]), ("grey", PHOTOS["L-385x512"]),
                        ("rgba", PHOTOS["RGBA-451x300"])):
        paths.append(tmp_path / f"{name}.png")
        image.save(paths[-1])
    spec = {"crop": 96, "crop_pct": 0.9, "test_size": 128}
    batch = imaging.load_images(paths, spec)
    assert batch.shape == (3, 3, 96, 96) and batch.dtype == torch.float32
    for path, image, row in zip(paths, (PHOTOS["451x300"], PHOTOS["L-385x512"], PHOTOS["RGBA-451x300"]), batch):
        torch.testing.assert_close(row, imaging.to_tensor(image, spec), rtol=0, atol=0)
    assert imaging.load_image(paths[1], spec, test=True).shape == (1, 3, 128, 128)


def test_unreadable_image_and_missing_pillow_are_clear_errors(tmp_path, monkeypatch):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("hello")
    with pytest.raises(mhub.MhubError, match="cannot read image"):
        imaging.open_image(bad)
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)
    with pytest.raises(mhub.MhubError, match="needs Pillow"):
        imaging.open_image(bad)
