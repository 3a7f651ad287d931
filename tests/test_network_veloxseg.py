"""Behaviour of the VeloxSeg network and its SDKT loss: shapes, gradients, exports, input errors, config overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from lightmedseg_bundle.losses.sdkt import SDKTLoss, SDKTSegmentationLoss, gram_matrix
from lightmedseg_bundle.networks.blocks.veloxseg import PairedWindowAttention
from lightmedseg_bundle.networks.veloxseg import VeloxSeg

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "in_channels, out_channels, modality_channels, size",
    [
        (1, 3, None, (48, 64, 48)),
        (2, 2, (1, 1), (32, 32, 32)),
        (4, 4, (2, 2), (16, 32, 48)),
        (3, 1, (1, 1, 1), (32, 16, 16)),
    ],
)
def test_output_matches_input_size(in_channels, out_channels, modality_channels, size):
    net = VeloxSeg(in_channels=in_channels, out_channels=out_channels, modality_channels=modality_channels).eval()
    with torch.no_grad():
        out = net(torch.randn(2, in_channels, *size))
    assert out.shape == (2, out_channels, *size)
    assert torch.isfinite(out).all()


def test_reference_strides_are_configurable():
    net = VeloxSeg(in_channels=1, out_channels=2, strides=(4, 2, 2, 2)).eval()
    assert net.size_divisible == 32
    with torch.no_grad():
        assert net(torch.randn(1, 1, 64, 32, 32)).shape == (1, 2, 64, 32, 32)


def test_paired_window_attention_mixes_modalities_and_masks_padding():
    torch.manual_seed(0)
    pwa = PairedWindowAttention(16, num_modalities=2, num_heads=2, head_dim=4, num_scales=2, window_size=4).eval()
    xs = [torch.randn(1, 16, 6, 8, 6) for _ in range(2)]  # 6 is no multiple of 4: padded and masked windows
    with torch.no_grad():
        out = pwa(xs)
        changed = pwa([xs[0], xs[1] + torch.randn_like(xs[1])])
    assert [o.shape for o in out] == [x.shape for x in xs]
    assert torch.isfinite(out[0]).all()
    assert not torch.allclose(out[0], changed[0]), "modality 0 must attend to the tokens of modality 1"
    # Depth 6 is padded to 8 for 4-voxel windows: voxels 4-5 form a window with 2 padded slices, which must be masked
    # out, so they get exactly the attention of a 2-voxel-deep volume holding just them.
    local = PairedWindowAttention(16, num_scales=1, window_size=4).eval()
    x = torch.randn(1, 16, 6, 4, 4)
    with torch.no_grad():
        assert torch.allclose(local([x])[0][:, :, 4:], local([x[:, :, 4:]])[0], atol=1e-5)


def test_param_count_matches_the_paper():
    # Paper and reference README (github.com/JinPLu/VeloxSeg): 1.66M parameters for the PET/CT model (two modality
    # groups, 2 classes). The reference layout (strides 4, 2, 2, 2) reproduces it; the bundle default makes the last
    # transition stride 1 (docs/architecture.md), which stays within 15 %.
    reference = VeloxSeg(in_channels=2, out_channels=2, modality_channels=(1, 1), strides=(4, 2, 2, 2))
    assert abs(num_params(reference) - 1.66e6) / 1.66e6 < 0.02
    default = VeloxSeg(in_channels=2, out_channels=2, modality_channels=(1, 1))
    assert abs(num_params(default) - 1.66e6) / 1.66e6 < 0.15


@pytest.mark.slow
def test_onnx_runtime_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = VeloxSeg(in_channels=2, out_channels=3, modality_channels=(1, 1)).eval()
    x = torch.randn(1, 2, 48, 32, 32)
    path = tmp_path / "veloxseg.onnx"
    with pytest.warns(UserWarning, match=r"only valid for spatial size \(48, 32, 32\)"):  # windows fixed by the size
        torch.onnx.export(
            net, (x,), str(path), dynamo=False, input_names=["image"], output_names=["pred"], opset_version=17
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(1, 2, 48, 32, 32)
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], expected, atol=1e-4)
    with pytest.raises(Exception, match="dimensions"):  # a static graph refuses other sizes instead of guessing
        session.run(None, {"image": torch.randn(1, 2, 32, 32, 32).numpy()})


def test_an_all_16_input_is_too_small_for_the_bottleneck():
    with pytest.raises(ValueError, match="at least one spatial size of 32"):
        VeloxSeg(in_channels=1, out_channels=2)(torch.zeros(1, 1, 16, 16, 16))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spatial_dims": 2}, "spatial_dims"),
        ({"in_channels": 0}, "positive"),
        ({"in_channels": 2, "modality_channels": (1, 2)}, "summing to `in_channels`"),
        ({"channels": (16,)}, "at least 2 stages"),
        ({"num_heads": (1, 2, 2)}, "`num_heads` must hold one positive value per stage"),
        ({"group_widths": (4, 8, 8, 24)}, "group width must divide"),
        ({"strides": (4, 2, 3, 1)}, "must be 1 or 2"),
        ({"num_scales": (4, 2, 2, 2)}, r"num_scales\[-1\]"),
        ({"kernel_sizes": (1, 4)}, "odd"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_constructor_arguments_give_a_specific_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VeloxSeg(**kwargs)


def test_sdkt_loss_is_zero_for_identical_features_and_positive_otherwise():
    torch.manual_seed(0)
    features = torch.randn(2, 16, 6, 8, 6)
    sdkt = SDKTLoss()
    assert sdkt(features, features.clone()).item() == 0.0
    assert sdkt(features, torch.randn(2, 16, 3, 4, 3)).item() > 0
    assert gram_matrix(features).shape == (2, 16, 16)
    with pytest.raises(ValueError, match="channel count"):
        sdkt(features, torch.randn(2, 8, 6, 8, 6))


def test_sdkt_gives_gradients_to_the_student_only():
    torch.manual_seed(0)
    student = VeloxSeg(in_channels=1, out_channels=2).train()
    teacher = VeloxSeg(in_channels=1, out_channels=1)
    loss = SDKTSegmentationLoss(
        lambda pred, target: pred.new_zeros(()), student, teacher, teacher_layer="decoder_stages.0"
    )
    value = loss(student(torch.randn(1, 1, 32, 32, 32)), None)
    assert value.item() > 0
    value.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training
    encoder_grads = [p.grad for p in student.encoder.parameters()]
    assert all(g is not None for g in encoder_grads) and any(g.abs().sum() > 0 for g in encoder_grads)


def test_enabling_sdkt_leaves_the_network_unchanged():
    torch.manual_seed(0)
    net = VeloxSeg(in_channels=1, out_channels=3).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        before = net(x)
    count, keys = num_params(net), list(net.state_dict())
    seg_loss = torch.nn.CrossEntropyLoss()
    teacher = VeloxSeg(in_channels=1, out_channels=1)
    loss = SDKTSegmentationLoss(seg_loss, net, teacher, teacher_layer="decoder_stages.0")
    assert num_params(net) == count and list(net.state_dict()) == keys
    with torch.no_grad():
        assert torch.equal(net(x), before)
        label = torch.randint(0, 3, (1, 32, 32, 32))
        assert torch.equal(loss(before, label), seg_loss(before, label)), "eval-mode forwards add no SDKT term"
        net.train()
        pred = net(x)
        assert loss(pred, label) > seg_loss(pred, label)


def test_sdkt_overlay_builds_the_loss():
    parser = ConfigParser()
    parser.read_config(
        [
            str(CONFIGS / "train.json"),
            str(CONFIGS / "networks" / "veloxseg.json"),
            str(CONFIGS / "losses" / "veloxseg_sdkt.json"),
        ]
    )
    parser["device"] = "$torch.device('cpu')"
    loss = parser.get_parsed_content("loss")
    net = parser.get_parsed_content("network")
    assert isinstance(loss, SDKTSegmentationLoss)
    net.train()
    pred = net(torch.randn(1, 1, 48, 64, 48))
    label = torch.randint(0, 3, (1, 1, 48, 64, 48))
    value = loss(pred, label)
    assert value > loss.loss(pred, label)
