"""The opt-in CPU pass (``lightmedseg_bundle.cpu.optimize_for_cpu``, the configs' ``cpu_kernels`` switch): for every
network the bundle ships or compares with, built from the bundle's own configs, it must leave the outputs, the
gradients and the state dict as they are; the shipped weights must give the same label maps with and without it."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from conftest import CONFIGS, HIPPOCAMPUS_DIR, REPO_ROOT, needs_hippocampus
from monai.bundle import ConfigParser
from torch.utils.flop_counter import FlopCounterMode

from lightmedseg_bundle.cpu import optimize_for_cpu, register_flop_formulas
from lightmedseg_bundle.cpu.kernels import (
    DepthwiseConv3d,
    OneDNNConv3d,
    PatchExpandConv3d,
    PointwiseConv3d,
    SingleOutputConv3d,
)

#: each network as a config overlay on train.json (LightMedSeg: train.json itself), with an input size it accepts
NETWORK_OVERLAYS = {
    "lightmedseg": ([], (32, 48, 32)),
    "unet": (["networks/unet.json"], (32, 48, 32)),
    "segresnet": (["networks/segresnet.json"], (32, 48, 32)),
    "veloxseg": (["networks/veloxseg.json"], (32, 64, 32)),
    "refineformer3d": (["networks/refineformer3d.json"], (32, 64, 32)),
    "segmaformer": (["networks/segmaformer.json"], (32, 32, 32)),
    "hrmedseg": (["networks/hrmedseg.json"], (32, 64, 32)),
}
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def network_from_configs(*overlays: str, without_dropout: bool = False, **overrides) -> torch.nn.Module:
    """``network_def`` of ``train.json`` with ``overlays`` (paths relative to configs/) and id overrides, plain."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / name) for name in ("train.json", *overlays)])
    if without_dropout and "dropout" in parser["network_def"]:
        parser["network_def#dropout"] = 0.0
    for key, value in overrides.items():
        parser[key] = value
    return parser.get_parsed_content("network_def")


@pytest.mark.parametrize("name", NETWORK_OVERLAYS)
def test_pass_leaves_outputs_gradients_and_state_dict_as_they_are(name):
    overlays, size = NETWORK_OVERLAYS[name]
    torch.manual_seed(0)
    # element-wise dropout draws its mask in memory order, which the channels-last layout changes: the same
    # distribution, other draws, so the comparison is made without it (drop-path draws per sample: kept)
    plain = network_from_configs(*overlays, without_dropout=True)
    fast = optimize_for_cpu(copy.deepcopy(plain))
    assert list(fast.state_dict()) == list(plain.state_dict())
    swapped = [m for m in fast.modules() if isinstance(m, (OneDNNConv3d, PointwiseConv3d, PatchExpandConv3d))]
    assert swapped, f"the pass found no convolution to speed up in {name}"

    x = torch.randn(2, 1, *size)
    plain.eval()
    fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), **TOLERANCE)

    plain.train()
    fast.train()
    torch.manual_seed(1)
    plain_loss = plain(x).square().mean()
    torch.manual_seed(1)
    fast_loss = fast(x).square().mean()
    plain_loss.backward()
    fast_loss.backward()
    # channels-last oneDNN sums a weight gradient over the voxels in another order: float32 rounding of up to ~4e-5
    # of the largest gradient (UNet; against a float64 reference), so the bound is relative to that scale
    scale = max(p.grad.abs().max() for p in plain.parameters())
    for (key, p), f in zip(plain.named_parameters(), fast.parameters(), strict=True):
        assert f.grad is not None, key
        difference = (f.grad - p.grad).abs().max()
        assert difference <= 2e-4 * scale, f"gradient of {key} differs by {difference:.2e} (largest: {scale:.2e})"


def test_pass_keeps_the_layout_of_what_it_returns_and_is_idempotent():
    net = optimize_for_cpu(network_from_configs(**{"network_def#return_priors": True}).eval())
    again = optimize_for_cpu(net)
    assert again is net and len(net._forward_pre_hooks) == 1
    with torch.no_grad():
        logits, anchors, texture = net(torch.randn(1, 1, 32, 32, 32))
    assert logits.is_contiguous() and texture.is_contiguous() and anchors.shape == (1, 8, 3)


@pytest.mark.parametrize("shape", [(1, 3, 5, 6, 7), (2, 8, 24, 32, 24), (1, 3, 1, 4, 2), (1, 2, 2, 2, 2)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsampling_equals_pytorchs_with_and_without_gradients(shape, channels_last):
    plain = torch.nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
    fast = optimize_for_cpu(torch.nn.Sequential(copy.deepcopy(plain)))
    x = torch.randn(shape)
    x = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), **TOLERANCE)
    x.requires_grad_(True)
    grad = torch.randn(plain(x).shape)
    (expected,) = torch.autograd.grad(plain(x), x, grad)
    (got,) = torch.autograd.grad(fast(x), x, grad)
    torch.testing.assert_close(got, expected, **TOLERANCE)


@pytest.mark.parametrize("kernel_size, bias", [(3, True), (5, True), ((3, 5, 1), False)])
@pytest.mark.parametrize("input_grad", [True, False])
def test_depthwise_convolution_equals_pytorchs_in_value_and_gradients(kernel_size, bias, input_grad):
    torch.manual_seed(0)
    padding = tuple(k // 2 for k in kernel_size) if isinstance(kernel_size, tuple) else kernel_size // 2
    plain = torch.nn.Conv3d(6, 6, kernel_size, padding=padding, groups=6, bias=bias)
    fast = optimize_for_cpu(torch.nn.Sequential(copy.deepcopy(plain)))
    assert isinstance(fast[0], DepthwiseConv3d)
    x = torch.randn(2, 6, 7, 9, 8, requires_grad=input_grad)
    grad = torch.randn(2, 6, 7, 9, 8)
    outputs = []
    for net in (plain, fast):
        out = net(x)
        inputs = ([x] if input_grad else []) + list(net.parameters())
        outputs.append((out, torch.autograd.grad(out, inputs, grad)))
    (expected, expected_grads), (got, got_grads) = outputs
    torch.testing.assert_close(got, expected, **TOLERANCE)
    for g, e in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4 * e.abs().max().item())


@pytest.mark.parametrize(
    "conv",
    [
        torch.nn.Conv3d(4, 4, 3, stride=2, padding=1, groups=4),  # strided
        torch.nn.Conv3d(4, 4, 3, padding=0, groups=4),  # not "same"
        torch.nn.Conv3d(4, 4, 2, padding=1, groups=4),  # even kernel
        torch.nn.Conv3d(4, 8, 3, padding=1, groups=4),  # two filters per channel
        torch.nn.Conv3d(4, 4, 3, padding=1, groups=2),  # grouped, not depthwise
    ],
)
def test_other_grouped_convolutions_keep_the_onednn_backward(conv):
    fast = optimize_for_cpu(torch.nn.Sequential(conv))
    assert type(fast[0]) is OneDNNConv3d


@pytest.mark.parametrize(
    "conv",
    [
        torch.nn.Conv3d(16, 1, 3, padding=1),  # LightMedSeg's gating head
        torch.nn.Conv3d(5, 1, 3, stride=2, padding=1, bias=False),
        torch.nn.Conv3d(3, 1, (3, 1, 5), padding=(2, 0, 1), dilation=(2, 1, 1)),
    ],
)
def test_single_output_convolution_equals_pytorchs_with_and_without_gradients(conv):
    torch.manual_seed(0)
    fast = optimize_for_cpu(torch.nn.Sequential(copy.deepcopy(conv)))
    assert isinstance(fast[0], SingleOutputConv3d)
    x = torch.randn(2, conv.in_channels, 9, 8, 7)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), conv(x), **TOLERANCE)
    x.requires_grad_(True)
    grad = torch.randn(conv(x).shape)
    expected = torch.autograd.grad(conv(x), [x, *conv.parameters()], grad)
    got = torch.autograd.grad(fast(x), [x, *fast.parameters()], grad)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4 * e.abs().max().item())


def test_metatensor_input_gives_the_plain_tensor_result():
    from monai.data import MetaTensor

    net = optimize_for_cpu(network_from_configs()).eval()
    x = torch.randn(1, 1, 32, 48, 32)
    with torch.no_grad():
        out = net(MetaTensor(x, affine=torch.eye(4)))
        assert type(out) is torch.Tensor  # the network ran on plain tensors
        torch.testing.assert_close(out, net(x), rtol=0, atol=0)


def test_a_model_trained_with_the_pass_loads_strictly_into_the_plain_network(tmp_path):
    fast = optimize_for_cpu(network_from_configs())
    optimizer = torch.optim.AdamW(fast.parameters(), 1e-2)
    fast(torch.randn(1, 1, 32, 32, 32)).mean().backward()
    optimizer.step()
    torch.save(fast.state_dict(), tmp_path / "model.pt")
    plain = network_from_configs()
    plain.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True), strict=True)
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), fast.eval()(x), **TOLERANCE)


def test_disabled_pass_returns_the_model_untouched():
    net = network_from_configs()
    assert optimize_for_cpu(net, enabled=False) is net
    assert not any(isinstance(m, OneDNNConv3d) for m in net.modules()) and not net._forward_pre_hooks


@pytest.mark.parametrize("value, expected", [("$torch.device('cpu').type == 'cpu'", True), ("false", False)])
def test_cpu_kernels_config_id_switches_the_pass(value, expected):
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser["device"] = "$torch.device('cpu')"
    parser["cpu_kernels"] = value
    net = parser.get_parsed_content("network")
    assert any(isinstance(m, PointwiseConv3d) for m in net.modules()) is expected


@pytest.mark.parametrize("config", ["train.json", "inference.json"])
def test_default_cpu_kernels_accepts_a_device_given_as_a_string(config):
    """MONAI Label's bundle train and infer tasks override ``device`` with a string such as ``"cpu"``."""
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / config))
    parser["device"] = "cpu"
    net = parser.get_parsed_content("network")
    assert any(isinstance(m, PointwiseConv3d) for m in net.modules())


def test_flop_counter_counts_the_passs_convolutions_like_pytorchs():
    register_flop_formulas()
    net = network_from_configs()
    x = torch.randn(1, 1, 32, 32, 32)
    counts = []
    for model in (net, optimize_for_cpu(copy.deepcopy(net))):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.eval()(x)
        counts.append(counter.get_total_flops())
    assert counts[0] > 0 and counts[1] == counts[0]


def test_importing_the_package_registers_nothing_in_monai_or_torch():
    code = (
        "from monai.networks.layers.factories import Act; import torch; "
        "from torch.utils.flop_counter import flop_registry; "
        "names = set(Act.names); ops = set(flop_registry); "
        "import lightmedseg_bundle.networks, lightmedseg_bundle.bundle, lightmedseg_bundle.cpu, "
        "lightmedseg_bundle.handlers, lightmedseg_bundle.inferers, lightmedseg_bundle.workarounds; "
        "assert set(Act.names) == names, set(Act.names) - names; "
        "assert set(flop_registry) == ops, set(flop_registry) - ops"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


@needs_hippocampus
def test_shipped_weights_give_the_same_label_maps_with_and_without_the_pass():
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.json"))
    parser["device"] = "$torch.device('cpu')"
    parser["dataset_dir"] = str(HIPPOCAMPUS_DIR / "imagesTr")
    parser["bundle_root"] = str(REPO_ROOT)
    preprocessing = parser.get_parsed_content("preprocessing")
    inferer = parser.get_parsed_content("inferer")
    state = torch.load(REPO_ROOT / "models" / "model.pt", weights_only=True)
    plain = network_from_configs()
    plain.load_state_dict(state)
    fast = optimize_for_cpu(copy.deepcopy(plain))
    images = sorted((HIPPOCAMPUS_DIR / "imagesTr").glob("*.nii.gz"))[:3]
    for image in images:
        x = preprocessing({"image": str(image)})["image"][None]
        with torch.no_grad():
            plain_labels = inferer(x, plain.eval()).argmax(1)
            fast_labels = inferer(x, fast.eval()).argmax(1)
        assert plain_labels.sum() > 0
        assert torch.equal(plain_labels, fast_labels), image.name
