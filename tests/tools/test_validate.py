"""`mhub validate`: tolerances, reference files, reference implementations, CUDA, images."""

from __future__ import annotations

import re

import pytest
import toy_models
from conftest import randomise_batchnorm
import torch
from safetensors.torch import load_file, save_file

import mhub
from mhub import ConversionError
from mhub_tools.reference import InputSpec, reference_input, save_reference
from mhub_tools.validate import TOLERANCES, compare, upstream_state
from tools_cli import invoke

FIGURES = re.compile(r"^(\S+(?: tf32=o\w+)?)\s+max abs error (\S+) \(allowed (\S+)\)\s+cosine (\S+)", re.M)


def figures(output: str) -> dict[str, tuple[float, float, float]]:
    return {m[1]: (float(m[2]), float(m[3]), float(m[4])) for m in FIGURES.finditer(output)}


@pytest.fixture
def toy():
    toy_models.install()
    yield mhub.get_registry()
    toy_models.uninstall()


@pytest.fixture
def toy_files(tmp_path, toy):
    """Converted toynet weights, plus reference outputs of the *upstream* implementation for them."""
    upstream_state = toy_models.trained_upstream_state(num_classes=10)
    torch.save(upstream_state, tmp_path / "up.pth")
    invoke("convert", str(tmp_path / "up.pth"), "--model", "toynet", "-o", str(tmp_path / "toy.safetensors"))
    upstream = toy_models.upstream_toy(10).eval()
    upstream.load_state_dict(upstream_state)
    spec = InputSpec(48, 3, 2)
    with torch.no_grad():
        logits = upstream(reference_input(spec))
    save_reference(tmp_path / "ref.safetensors", logits, spec, producer="UpstreamToy")
    return tmp_path / "toy.safetensors", tmp_path / "ref.safetensors"


def perturb(src, dst, key, factor=1.02):
    state = load_file(src)
    state[key] = state[key] * factor
    save_file(state, str(dst))


def test_correct_checkpoint_passes_and_one_perturbed_tensor_fails(tmp_path, toy_files):
    weights, ref = toy_files
    good = invoke("validate", "toynet", "--weights", str(weights), "--reference", str(ref))
    cpu = figures(good.output)["cpu"]
    assert cpu[0] <= 1e-5 and cpu[2] > 0.99999 and "PASS" in good.output and "validation passed" in good.output

    perturb(weights, tmp_path / "bad.safetensors", "backbone.block.conv_b.weight")
    bad = invoke("validate", "toynet", "--weights", str(tmp_path / "bad.safetensors"), "--reference", str(ref),
                 check=False)
    assert bad.exit_code == 1
    max_abs, allowed, _cosine = figures(bad.output)["cpu"]
    assert max_abs > allowed and "FAIL" in bad.output
    assert "validation failed: cpu outside tolerance" in bad.output


def test_cuda_is_skipped_with_a_clear_message_without_a_gpu(toy_files):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; test_cuda_runs_tf32_off_and_on covers it")
    weights, ref = toy_files
    result = invoke("validate", "toynet", "--weights", str(weights), "--reference", str(ref),
                    "--device", "cpu", "--device", "cuda")
    assert "cuda: skipped: no CUDA device here (torch.cuda.is_available() is False)" in result.output
    assert list(figures(result.output)) == ["cpu"] and result.exit_code == 0


@pytest.mark.cuda
def test_cuda_runs_tf32_off_and_on(tmp_path, toy_files):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    weights, ref = toy_files
    result = invoke("validate", "toynet", "--weights", str(weights), "--reference", str(ref),
                    "--device", "cpu", "--device", "cuda")
    found = figures(result.output)
    assert set(found) == {"cpu", "cuda tf32=off", "cuda tf32=on"}, result.output
    assert found["cuda tf32=off"][0] <= found["cuda tf32=off"][1]
    perturb(weights, tmp_path / "bad.safetensors", "backbone.block.conv_b.weight")
    bad = invoke("validate", "toynet", "--weights", str(tmp_path / "bad.safetensors"), "--reference", str(ref),
                 "--device", "cuda", check=False)
    assert bad.exit_code == 1 and set(figures(bad.output)) == {"cuda tf32=off", "cuda tf32=on"}


@pytest.mark.cuda
def test_cuda_resnet18_against_torchvision(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    weights, original = resnet18_files(tmp_path)
    result = invoke("validate", "resnet18", "--weights", str(weights), "--reference", "torchvision:resnet18",
                    "--reference-weights", str(original), "--device", "cuda", "--input-size", "224")
    print(result.output)
    assert {"cuda tf32=off", "cuda tf32=on"} <= set(figures(result.output))


def test_json_report(toy_files):
    import json

    weights, ref = toy_files
    data = json.loads(invoke("validate", "toynet", "--weights", str(weights), "--reference", str(ref),
                             "--json").stdout)
    assert data["passed"] is True and data["runs"][0]["run"] == "cpu"
    assert data["runs"][0]["max_abs"] <= data["runs"][0]["allowed_abs"]


def test_fused_model_validates_against_the_same_reference(toy_files, monkeypatch):
    from mhub import inference

    weights, ref = toy_files
    folded = []
    original = inference.fold_batchnorms
    monkeypatch.setattr(inference, "fold_batchnorms", lambda model: folded.append(original(model)) or folded[-1])
    result = invoke("validate", "toynet", "--weights", str(weights), "--reference", str(ref), "--fuse")
    assert len(folded) == 1 and len(folded[0]) == 4  # stem, both block norms, shortcut
    assert "fused: BatchNorms folded" in result.output and "validation passed" in result.output
    assert figures(result.output)["cpu"][0] <= 1e-5


def test_weights_in_the_wrong_layout_are_a_clear_error(tmp_path, toy_files):
    _weights, ref = toy_files
    save_file(toy_models.trained_upstream_state(10), str(tmp_path / "upstream.safetensors"))
    result = invoke("validate", "toynet", "--weights", str(tmp_path / "upstream.safetensors"), "--reference",
                    str(ref), check=False)
    assert result.exit_code == 1 and "run 'mhub convert' first" in result.output


def test_no_reference_is_a_clear_error(toy_files):
    weights, _ref = toy_files
    result = invoke("validate", "toynet", "--weights", str(weights), check=False)
    assert result.exit_code == 1 and "give --reference FILE or LIBRARY:NAME (one of torchvision, timm)" in result.output


# -- the comparison itself --------------------------------------------------------------------------------------
def test_compare_figures_against_hand_computed_values():
    reference = torch.tensor([[10.0, 8.0, 6.0, 4.0, 2.0, 0.0, -2.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]],
                             dtype=torch.float64)
    output = reference.clone()
    output[0, 0] += 3e-4
    result = compare(output, reference, TOLERANCES["fp32"], "cpu")
    assert result.max_abs == pytest.approx(3e-4, rel=1e-3)
    assert result.allowed_abs == pytest.approx(1e-3)  # 1e-4 * max|ref| = 1e-4 * 10
    assert result.top5 == 1.0 and result.decidable == 2 and result.passed
    swapped = reference.clone()
    swapped[1, [1, 6]] = swapped[1, [6, 1]]  # a top-5 class leaves the top 5
    result = compare(swapped, reference, TOLERANCES["tf32"], "cuda tf32=on")
    assert result.top5 == pytest.approx((1.0 + 0.8) / 2) and not result.passed
    assert result.cosine == pytest.approx(float(torch.nn.functional.cosine_similarity(swapped, reference)[1]))


def test_near_ties_in_the_reference_are_not_counted_against_top5():
    reference = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0, 1.0 - 1e-6, 0.0]])
    output = reference.clone()
    output[0, 4], output[0, 5] = reference[0, 5], reference[0, 4]  # a tie flips within tolerance
    result = compare(output, reference, TOLERANCES["fp32"], "cpu")
    assert result.decidable == 0 and result.top5 == 0.8 and result.passed


def test_non_finite_output_fails():
    reference = torch.zeros(2, 10)
    output = reference.clone()
    output[0, 3] = float("nan")
    assert not compare(output, reference, TOLERANCES["fp32"], "cpu").passed


# -- a real architecture: resnet18 against torchvision ----------------------------------------------------------
def resnet18_files(tmp_path):
    registry = mhub.get_registry()
    if "resnet18" not in registry.archs or "torchvision.resnet" not in registry.converters:
        pytest.skip("needs the ResNet plugin (mhub_resnet: resnet18 and converter 'torchvision.resnet')")
    import torchvision

    torch.manual_seed(0)
    model = randomise_batchnorm(torchvision.models.resnet18())
    torch.save(model.state_dict(), tmp_path / "resnet18.pth")
    invoke("convert", str(tmp_path / "resnet18.pth"), "--model", "resnet18", "--from", "torchvision",
           "-o", str(tmp_path / "resnet18.safetensors"))
    return tmp_path / "resnet18.safetensors", tmp_path / "resnet18.pth"


@pytest.mark.slow
def test_resnet18_against_torchvision_with_and_without_the_original_checkpoint(tmp_path):
    weights, original = resnet18_files(tmp_path)
    common = ("validate", "resnet18", "--weights", str(weights), "--reference", "torchvision:resnet18",
              "--input-size", "64")
    mapped_back = invoke(*common)
    assert "mapped back to torchvision's layout" in mapped_back.output
    assert figures(mapped_back.output)["cpu"][0] <= 1e-4
    upstream_file = invoke(*common, "--reference-weights", str(original))
    assert "loading upstream checkpoint" in upstream_file.output

    perturb(weights, tmp_path / "bad.safetensors", "backbone.stages.3.1.conv2.conv.weight"
            if "backbone.stages.3.1.conv2.conv.weight" in load_file(weights) else sorted(load_file(weights))[5])
    bad = invoke("validate", "resnet18", "--weights", str(tmp_path / "bad.safetensors"), "--reference",
                 "torchvision:resnet18", "--reference-weights", str(original), "--input-size", "64", check=False)
    assert bad.exit_code == 1 and "FAIL" in bad.output


def test_fused_resnet18_against_torchvision_fed_the_unfused_weights(tmp_path):
    """The reference gets the weights under test mapped back: fusing must not have changed them."""
    weights, _ = resnet18_files(tmp_path)
    result = invoke("validate", "resnet18", "--weights", str(weights), "--reference", "torchvision:resnet18",
                    "--input-size", "64", "--fuse")
    assert "mapped back to torchvision's layout" in result.output and figures(result.output)["cpu"][0] <= 1e-4


def test_mapping_back_inverts_the_key_map_exactly(toy):
    arch = toy.arch("toynet")
    upstream = toy_models.upstream_toy(10)
    ours = toy_models.convert_torchvision_toy(toy_models.trained_upstream_state(10))
    back = upstream_state(arch, "torchvision", upstream.state_dict(), ours)
    original = toy_models.trained_upstream_state(10)
    assert list(back) == list(original) and all(torch.equal(back[k], original[k]) for k in original)


def test_a_key_map_that_changes_values_cannot_be_inverted(toy, monkeypatch):
    ours = toy_models.convert_torchvision_toy(toy_models.trained_upstream_state(10))
    renaming = toy_models.convert_torchvision_toy

    def scaling_map(state):
        out = renaming(state)
        out["classifier.fc.weight"] = out["classifier.fc.weight"] * 2
        return out

    monkeypatch.setattr(toy_models, "convert_torchvision_toy", scaling_map)
    with pytest.raises(ConversionError, match="changes values, not only names"):
        upstream_state(toy.arch("toynet"), "torchvision", toy_models.upstream_toy(10).state_dict(), ours)


def test_a_reshaping_key_map_is_inverted_and_a_transposing_one_refused(toy, monkeypatch):
    # a reshape keeps the elements in order (a 1x1 convolution read as a linear layer); a transpose reorders them
    upstream = toy_models.upstream_toy(10).state_dict()
    original = toy_models.trained_upstream_state(10)
    ours = toy_models.convert_torchvision_toy(original)
    renaming = toy_models.convert_torchvision_toy

    def reshaping_map(state):
        out = renaming(state)
        out["classifier.fc.weight"] = out["classifier.fc.weight"].reshape(-1)
        return out

    monkeypatch.setattr(toy_models, "convert_torchvision_toy", reshaping_map)
    back = upstream_state(toy.arch("toynet"), "torchvision", upstream, ours)
    assert all(torch.equal(back[k], original[k]) for k in original)

    monkeypatch.setattr(toy_models, "convert_torchvision_toy", lambda state: {
        **renaming(state), "classifier.fc.weight": renaming(state)["classifier.fc.weight"].t().contiguous()})
    with pytest.raises(ConversionError, match="changes values, not only names"):
        upstream_state(toy.arch("toynet"), "torchvision", upstream, ours)


# -- images ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options,resize,crop,bicubic", [((), 256, 224, False),
                                                          (("resize=180", "crop=160", "interpolation=bicubic"),
                                                           180, 160, True)])
def test_image_top5_labels(tmp_path, toy, options, resize, crop, bicubic):
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    Image.fromarray(skimage_data.chelsea()).save(tmp_path / "cat.png")
    torch.manual_seed(0)
    model = toy_models.build_toynet(num_classes=1000).eval()
    save_file(model.state_dict(), str(tmp_path / "toy1000.safetensors"))
    spec = InputSpec(32, 3, 2)
    with torch.no_grad():
        save_reference(tmp_path / "ref.safetensors", model(reference_input(spec)), spec)
    preprocess = [arg for option in options for arg in ("--preprocess", option)]
    result = invoke("validate", "toynet", "--weights", str(tmp_path / "toy1000.safetensors"), "--reference",
                    str(tmp_path / "ref.safetensors"), "--image", str(tmp_path / "cat.png"), *preprocess)
    lines = result.output.split(f"{tmp_path / 'cat.png'}:\n")[1].splitlines()[:5]

    # Independently: torchvision's transforms, the same model, the class file.
    import torchvision.transforms as T

    mode = T.InterpolationMode.BICUBIC if bicubic else T.InterpolationMode.BILINEAR
    x = T.Compose([T.Resize(resize, interpolation=mode), T.CenterCrop(crop), T.ToTensor(),
                   T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])(Image.open(tmp_path / "cat.png"))
    with torch.no_grad():
        top = model(x.unsqueeze(0)).softmax(1)[0].topk(5)
    from importlib import resources

    names = resources.files("mhub").joinpath("data/imagenet-1k-classes.txt").read_text().splitlines()
    expected = [f"{int(i):4d}  {names[int(i)]}" for i in top.indices]
    assert [line.split("%", 1)[1].strip() for line in lines] == [e.strip() for e in expected]
