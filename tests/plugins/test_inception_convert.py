"""The inception key maps: pure renames, every upstream key placed or named in the error, torch-free imports."""

from __future__ import annotations

import pytest
from family_checks import assert_plugin_imports_without_torch

from mhub import ConversionError
from mhub_inception.convert import from_timm, from_timm_with_background, from_torchvision


def test_torchvision_keys_move_values_pass_through_the_auxiliary_classifier_included():
    marker = object()
    out = from_torchvision({
        "Conv2d_1a_3x3.conv.weight": marker, "Conv2d_4a_3x3.bn.running_var": 1, "Mixed_5b.branch_pool.bn.bias": 2,
        "Mixed_6a.branch3x3dbl_3.conv.weight": 3, "Mixed_6e.branch7x7dbl_5.bn.weight": 4,
        "Mixed_7a.branch7x7x3_4.conv.weight": 5, "Mixed_7c.branch3x3dbl_3b.bn.running_mean": 6, "fc.bias": 7,
        "AuxLogits.conv0.conv.weight": 8, "AuxLogits.fc.weight": 9, "AuxLogits.conv1.bn.running_var": 10,
    })
    assert out == {
        "backbone.stem.conv1a.conv.weight": marker, "backbone.stem.conv4a.norm.running_var": 1,
        "backbone.stages.0.0.branch3.1.norm.bias": 2, "backbone.stages.1.0.branch1.2.conv.weight": 3,
        "backbone.stages.1.4.branch2.4.norm.weight": 4, "backbone.stages.2.0.branch1.3.conv.weight": 5,
        "backbone.stages.2.2.branch2.2.1.norm.running_mean": 6, "classifier.fc.bias": 7,
        "aux.conv0.conv.weight": 8, "aux.head.fc.weight": 9, "aux.conv1.norm.running_var": 10,
    }


def test_timm_layouts_are_told_apart_by_their_first_convolution():
    assert from_timm({"features.0.conv.weight": 0, "features.3.conv.bn.bias": 1, "features.19.branch2_3b.bn.weight": 2,
                      "features.6.branch0.conv.weight": 3, "last_linear.weight": 4}) == {
        "backbone.stem.conv1a.conv.weight": 0, "backbone.stem.mixed3a.branch1.0.norm.bias": 1,
        "backbone.stages.2.1.branch2.3.1.norm.weight": 2, "backbone.stages.0.0.branch0.0.conv.weight": 3,
        "classifier.fc.weight": 4}
    assert from_timm({"conv2d_1a.conv.weight": 0, "repeat_1.19.conv2d.bias": 1, "block8.branch1.2.bn.bias": 2,
                      "mixed_7a.branch2.1.conv.weight": 3, "conv2d_7b.bn.running_mean": 4, "classif.bias": 5}) == {
        "backbone.stem.conv1a.conv.weight": 0, "backbone.stages.1.20.proj.bias": 1,
        "backbone.stages.2.10.branches.branch1.2.norm.bias": 2, "backbone.stages.2.0.branch2.1.conv.weight": 3,
        "backbone.head.norm.running_mean": 4, "classifier.fc.bias": 5}


def test_xception_blocks_are_placed_in_their_flows():
    # entry = the leading blocks with a projection shortcut; exit = the last block (legacy, then its two exit
    # convolutions) or the last two (aligned); middle = the rest
    legacy = {"conv1.weight": 0, "block1.skip.weight": 1, "block1.rep.0.conv1.weight": 2, "block1.rep.4.weight": 3,
              "block1.rep.3.conv1.weight": 4, "block2.skip.weight": 5, "block3.rep.1.conv1.weight": 6,
              "block3.rep.1.pointwise.weight": 7, "block3.rep.2.bias": 8, "block4.skip.weight": 9,
              "bn4.running_var": 10}
    assert from_timm(legacy) == {
        "backbone.stem.conv1.conv.weight": 0, "backbone.entry.0.shortcut.conv.weight": 1,
        "backbone.entry.0.stack.conv1.dw.conv.weight": 2, "backbone.entry.0.stack.conv2.pw.norm.weight": 3,
        "backbone.entry.0.stack.conv2.dw.conv.weight": 4, "backbone.entry.1.shortcut.conv.weight": 5,
        "backbone.middle.0.stack.conv1.dw.conv.weight": 6, "backbone.middle.0.stack.conv1.pw.conv.weight": 7,
        "backbone.middle.0.stack.conv1.pw.norm.bias": 8, "backbone.exit.0.shortcut.conv.weight": 9,
        "backbone.exit.1.stack.conv2.pw.norm.running_var": 10}
    # aligned; pre-activation keys too: bare-conv stem and shortcut, the block's norm is `pre`, a separable
    # conv's norm belongs to its depthwise unit
    aligned = {"stem.0.conv.weight": 0, "stem.1.weight": 1, "blocks.0.shortcut.weight": 2, "blocks.1.norm.bias": 3,
               "blocks.2.stack.conv2.norm.weight": 4, "blocks.3.stack.conv3.conv_pw.weight": 5,
               "blocks.3.shortcut.bn.weight": 6, "blocks.4.stack.conv1.bn_dw.bias": 7, "head.fc.bias": 8}
    assert from_timm(aligned) == {
        "backbone.stem.conv1.conv.weight": 0, "backbone.stem.conv2.conv.weight": 1,
        "backbone.entry.0.shortcut.conv.weight": 2, "backbone.middle.0.pre.norm.bias": 3,
        "backbone.middle.1.stack.conv2.dw.norm.weight": 4, "backbone.exit.0.stack.conv3.pw.conv.weight": 5,
        "backbone.exit.0.shortcut.norm.weight": 6, "backbone.exit.1.stack.conv1.dw.norm.bias": 7,
        "classifier.fc.bias": 8}


@pytest.mark.parametrize("convert,state,named", [
    (from_torchvision, {"Conv2d_1a_3x3.conv.weight": 0, "Mixed_5b.branch9x9.conv.weight": 1},
     "Mixed_5b.branch9x9.conv.weight"),
    (from_torchvision, {"AuxLogits.conv0.conv.weight": 0, "AuxLogits.conv2.conv.weight": 1},
     "AuxLogits.conv2.conv.weight"),
    (from_timm, {"features.0.conv.weight": 0, "features.40.branch0.conv.weight": 1}, "features.40.branch0"),
    (from_timm, {"conv2d_1a.conv.weight": 0, "repeat.0.conv2d.scale": 1}, "repeat.0.conv2d.scale"),
    (from_timm, {"conv1.weight": 0, "block1.rep.0.conv1.weight": 1, "block1.rep.5.weight": 2}, "block1.rep.5"),
    (from_timm, {"stem.0.conv.weight": 0, "blocks.0.stack.conv1.se.weight": 1}, "blocks.0.stack.conv1.se"),
])
def test_unplaceable_keys_are_conversion_errors_naming_them(convert, state, named):
    with pytest.raises(ConversionError, match=rf"1 key\(s\) of the .* checkpoint have no place.*{named}"):
        convert(state)


def test_legacy_files_lose_tf_slims_background_class():
    # lists slice as tensors do: the first row (class 0, "background") goes, the rest keep their order
    out = from_timm_with_background({"features.0.conv.weight": 0, "last_linear.weight": [[-1.0], [0.0], [1.0]],
                                     "last_linear.bias": ["background", "tench", "goldfish"]})
    assert out == {"backbone.stem.conv1a.conv.weight": 0, "classifier.fc.weight": [[0.0], [1.0]],
                   "classifier.fc.bias": ["tench", "goldfish"]}
    with pytest.raises(ConversionError, match="no 'classifier.fc.weight' to drop TF-slim's background class"):
        from_timm_with_background({"conv2d_1a.conv.weight": 0})


def test_an_unknown_layout_is_named():
    with pytest.raises(ConversionError, match="not a timm Inception-family checkpoint .*first keys: conv_stem"):
        from_timm({"conv_stem.weight": 0, "bn1.weight": 1})


def test_package_plugin_configs_and_converters_import_without_torch():
    assert_plugin_imports_without_torch("mhub_inception")  # importing mhub_inception.plugin imports the package
