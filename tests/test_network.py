"""Behaviour of the LightMedSeg network: shapes, gradients, priors, routing, exports and input errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from lightmedseg_bundle.benchmarking.memory import LiveTensorMemory
from lightmedseg_bundle.networks import LightMedSeg
from lightmedseg_bundle.networks.blocks import AdaptiveDecoderStage, GhostConv3d, SkipRouter, SpatialPositionBias

ARCHITECTURE_DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


@pytest.mark.parametrize("conv_type", ["ghost", "standard"])
@pytest.mark.parametrize(
    "in_channels, out_channels, size",
    [(1, 3, (16, 16, 16)), (2, 4, (32, 48, 64)), (4, 4, (64, 32, 16)), (4, 1, (48, 48, 32))],
)
def test_output_matches_input_size(conv_type, in_channels, out_channels, size):
    net = LightMedSeg(in_channels=in_channels, out_channels=out_channels, conv_type=conv_type).eval()
    with torch.no_grad():
        out = net(torch.randn(2, in_channels, *size))
    assert out.shape == (2, out_channels, *size)
    assert torch.isfinite(out).all()


def test_priors_lie_in_unit_interval():
    net = LightMedSeg(in_channels=1, out_channels=3, num_anchors=5, return_priors=True).eval()
    with torch.no_grad():
        logits, anchors, texture = net(torch.randn(3, 1, 32, 48, 16) * 10)
    assert logits.shape == (3, 3, 32, 48, 16)
    assert anchors.shape == (3, 5, 3)
    assert texture.shape == (3, 1, 16, 24, 8)
    for prior in (anchors, texture):
        assert prior.min() >= 0 and prior.max() <= 1
    assert not torch.allclose(anchors[0], anchors[1]), "anchors must depend on the input sample"


def test_skip_router_weights_sum_to_one_per_voxel():
    router = SkipRouter(router_channels=8, out_channels=4)
    sources = [torch.randn(2, 8, 4, 6, 5) * 5 for _ in range(4)]
    weights = router.routing_weights(sources)
    assert weights.shape == (2, 4, 4, 6, 5)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2, 4, 6, 5), atol=1e-6)
    assert router(sources).shape == (2, 4, 4, 6, 5)


def test_decoder_branch_weights_sum_to_one_per_voxel():
    stage = AdaptiveDecoderStage(16, 8, num_anchors=8)
    weights = stage.branch_weights(torch.randn(2, 8, 6, 6, 6) * 5)
    assert weights.shape == (2, 3, 6, 6, 6)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2, 6, 6, 6), atol=1e-6)


def test_spatial_position_bias_equals_stacked_offsets_and_conv():
    """Eqs. 14-15 built naively: stack the (B, K, D, H, W) offset maps and apply the 1x1x1 conv."""
    torch.manual_seed(0)
    spb = SpatialPositionBias(num_anchors=3, channels=5)
    anchors = torch.rand(2, 3, 3)
    size = (4, 6, 8)
    grids = torch.meshgrid(*[torch.arange(n) / n for n in size], indexing="ij")
    offsets = sum(grids[a][None, None] - anchors[:, :, a, None, None, None] for a in range(3))  # (B, K, D, H, W)
    expected = torch.nn.functional.conv3d(offsets, spb.weight[:, :, None, None, None], spb.bias)
    features = torch.randn(2, 5, *size)
    assert torch.allclose(spb(features, anchors), features + expected, atol=1e-6)


def test_ghost_conv_makes_half_the_channels_cheaply():
    ghost = GhostConv3d(4, 8, stride=2)
    assert ghost(torch.randn(1, 4, 8, 8, 8)).shape == (1, 8, 4, 4, 4)
    assert ghost.primary.out_channels == 4 and ghost.cheap.groups == 4
    assert GhostConv3d(4, 7)(torch.randn(1, 4, 4, 4, 4)).shape[1] == 7


def _documented_param_counts() -> dict[str, int]:
    text = ARCHITECTURE_DOC.read_text()
    counts = {}
    for variant in ("ghost", "standard"):
        match = re.search(rf"^\|\s*`{variant}`\s*\|\s*([\d,]+)\s*\|", text, re.MULTILINE)
        assert match, f"docs/architecture.md has no parameter row for the {variant} variant"
        counts[variant] = int(match.group(1).replace(",", ""))
    return counts


@pytest.mark.parametrize("conv_type", ["ghost", "standard"])
def test_param_counts_match_architecture_doc(conv_type):
    net = LightMedSeg(in_channels=4, out_channels=4, conv_type=conv_type, head_upsample="transposed")  # the paper's
    assert sum(p.numel() for p in net.parameters()) == _documented_param_counts()[conv_type]


def test_trilinear_head_interpolates_the_half_resolution_logits():
    """``head_upsample="trilinear"`` drops the head's transposed conv: the logits are the D/2 logits interpolated."""
    torch.manual_seed(0)
    paper = LightMedSeg(in_channels=1, out_channels=3, head_upsample="transposed")
    net = LightMedSeg(in_channels=1, out_channels=3, head_upsample="trilinear").eval()
    expand = sum(p.numel() for p in paper.head[1].parameters())
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in paper.parameters()) - expand
    x = torch.randn(1, 1, 32, 48, 16)
    half = {}
    net.head[0].register_forward_hook(lambda module, args, out: half.update(logits=out))
    with torch.no_grad():
        out = net(x)
    assert half["logits"].shape == (1, 3, 16, 24, 8)
    expected = torch.nn.functional.interpolate(half["logits"], scale_factor=2, mode="trilinear", align_corners=False)
    torch.testing.assert_close(out, expected)


def test_refined_head_starts_as_the_trilinear_head_and_corrects_it_from_the_image():
    """``head_upsample="refined"``: an untrained refinement returns the trilinear head's logits; once trained, the
    correction depends on the full-resolution image, which no other layer sees."""
    torch.manual_seed(0)
    trilinear = LightMedSeg(in_channels=1, out_channels=3, head_upsample="trilinear").eval()
    torch.manual_seed(0)
    refined = LightMedSeg(in_channels=1, out_channels=3, head_upsample="refined").eval()
    added = (3 + 1) * 8 * 27 + 8 + 2 * 8 + 8 * 3 + 3  # 3x3x3 conv on [logits, image], GN, 1x1x1 correction
    assert sum(p.numel() for p in refined.parameters()) == sum(p.numel() for p in trilinear.parameters()) + added
    x = torch.randn(1, 1, 32, 48, 16)
    with torch.no_grad():
        torch.testing.assert_close(refined(x), trilinear(x))
        torch.nn.init.normal_(refined.refinement.correction.weight)
        out = refined(x)
        upsampled = trilinear(x)
        assert not torch.allclose(out, upsampled)
        image_only = torch.zeros_like(x)
        image_only[..., 16, 24, 8] = 10.0  # one voxel: its 3x3x3 neighbourhood's correction changes most
        changed = (refined.refinement(upsampled, x + image_only) - out).abs().amax(dim=1)[0]
    neighbourhood = torch.zeros_like(changed, dtype=torch.bool)
    neighbourhood[15:18, 23:26, 7:10] = True
    assert changed[neighbourhood].min() > 10 * changed[~neighbourhood].max()  # elsewhere only through GN's statistics


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spatial_dims": 2}, "spatial_dims"),
        ({"conv_type": "depthwise"}, "conv_type"),
        ({"channels": (8, 16, 32)}, "4 encoder stages"),
        ({"dropout": 1.0}, "dropout"),
        ({"in_channels": 0}, "positive"),
        ({"head_upsample": "nearest"}, "head_upsample"),
    ],
)
def test_bad_constructor_arguments_give_a_specific_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LightMedSeg(**kwargs)


def test_wider_preset_is_configurable():
    net = LightMedSeg(in_channels=4, out_channels=3, channels=(16, 32, 64, 128)).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 4, 32, 32, 32)).shape == (1, 3, 32, 32, 32)
    assert (
        sum(p.numel() for p in net.parameters())
        > sum(p.numel() for p in LightMedSeg(in_channels=4, out_channels=3).parameters()) * 3
    )


def test_routed_sources_equal_projecting_then_resampling():
    """The router resamples before its 1x1x1 projections; the paper projects first (Eq. 11). Same function."""
    torch.manual_seed(0)
    net = LightMedSeg(in_channels=1, out_channels=2).eval()
    skips = [torch.randn(1, c, s, s, s) for c, s in zip((8, 16, 32, 64), (32, 16, 8, 4), strict=True)]
    for size in ([4, 4, 4], [8, 8, 8]):
        expected = [
            torch.nn.functional.interpolate(proj(e), size=size, mode="trilinear", align_corners=False)
            for proj, e in zip(net.skip_projections, skips, strict=True)
        ]
        with torch.no_grad():
            for got, want in zip(net.routed_sources(skips, size), expected, strict=True):
                assert torch.allclose(got, want, atol=1e-5)


def test_inference_frees_half_resolution_maps_once_read():
    """At inference the half-resolution maps (E1, F0, its aligned skip, the decoder's upsampled input, the encoder
    stage's branches) are freed once read: at 1 x 4 x 64^3 with the trilinear head, at most 7.5 MiB of tensors are
    alive at once (7.1 MiB now; 10.1 MiB when they were kept to the end of their ``forward``)."""
    net = LightMedSeg(in_channels=4, head_upsample="trilinear").eval()
    x = torch.randn(1, 4, 64, 64, 64)
    with torch.inference_mode(), LiveTensorMemory() as tensors:
        net(x)
    assert tensors.peak <= 7.5 * 2**20


def test_monai_metatensor_input_keeps_working():
    """Bundle pipelines feed MetaTensors; the network must accept them like plain tensors."""
    from monai.data import MetaTensor

    net = LightMedSeg(in_channels=1, out_channels=3).eval()
    x = torch.randn(1, 1, 32, 32, 16)
    with torch.no_grad():
        out = net(MetaTensor(x, affine=torch.eye(4)))
        assert torch.allclose(torch.as_tensor(out), net(x), atol=1e-6)


def test_the_readme_snippet_loads_the_shipped_weights_into_the_default_network():
    """``LightMedSeg()``'s defaults are the shipped model: the README's "Using the network" code runs as written."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    snippet = readme.split("## Using the network", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parent.parent)
    try:
        exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - the repository's own README
    finally:
        os.chdir(cwd)
    assert namespace["logits"].shape == (1, 3, 48, 64, 48)
