import pytest
import torch

from lightmedseg_bundle.losses import LightMedSegLoss, boundary_band, inverse_frequency_weights


def _two_class_cube(size: int = 12) -> torch.Tensor:
    """Label map (1, 1, size, size, size): background 0 with a cube of class 1 in the middle."""
    label = torch.zeros(1, 1, size, size, size, dtype=torch.long)
    label[..., 4:8, 4:8, 4:8] = 1
    return label


def _logits_from_label(label: torch.Tensor, num_classes: int, scale: float = 10.0) -> torch.Tensor:
    return scale * torch.nn.functional.one_hot(label[:, 0], num_classes).movedim(-1, 1).float()


def test_inverse_frequency_weights_by_hand():
    # 8 voxels: 6 of class 0, 2 of class 1, none of class 2 -> w_c = 8 / (3 * count)
    target = torch.zeros(1, 3, 2, 2, 2)
    target[0, 0] = 1
    target[0, 0, 0, 0, :] = 0
    target[0, 1, 0, 0, :] = 1
    weights = inverse_frequency_weights(target)
    # the absent class gets the largest weight of the present classes instead of infinity
    torch.testing.assert_close(weights, torch.tensor([8 / 18, 8 / 6, 8 / 6]))


def test_inverse_frequency_weights_of_an_empty_target_are_ones():
    torch.testing.assert_close(inverse_frequency_weights(torch.zeros(2, 3, 4, 4)), torch.ones(3))


def test_boundary_band_of_a_single_pixel_by_hand():
    # the pixel and its 8 neighbours see two labels (3x3), dilated by d=2 -> 7x7 square
    target = torch.zeros(1, 1, 15, 15)
    target[0, 0, 7, 7] = 1
    band = boundary_band(target, dilation=2)
    expected = torch.zeros(1, 1, 15, 15, dtype=torch.bool)
    expected[..., 4:11, 4:11] = True
    assert torch.equal(band, expected)
    assert not boundary_band(torch.ones(1, 2, 6, 6, 6), dilation=3).any()


@pytest.mark.parametrize("dilation", [0, 1, 3])
def test_boundary_band_is_the_max_pool_definition(dilation):
    """The band as first written, with n-D max-pools: a voxel with two labels in its 3x3x3 box, dilated by a box."""
    label = torch.zeros(2, 1, 17, 20, 15, dtype=torch.long)
    label[0, :, 2:7, 3:12, 1:6] = 1  # a box touching another box, one at the border
    label[0, :, 7:12, 5:9, 4:10] = 2
    label[1, :, 12:, 15:, 10:] = 2
    target = torch.nn.functional.one_hot(label[:, 0], 3).movedim(-1, 1).float()
    pool = torch.nn.functional.max_pool3d
    boundary = (pool(target, 3, 1, 1) != -pool(-target, 3, 1, 1)).any(dim=1, keepdim=True)
    expected = pool(boundary.float(), 2 * dilation + 1, 1, dilation) > 0 if dilation else boundary
    band = boundary_band(target, dilation)
    assert torch.equal(band, expected) and 0 < band.sum() < band.numel()


@pytest.mark.parametrize("spatial", [(12, 12), (12, 12, 12)])
def test_near_perfect_prediction_scores_lower_than_wrong_one(spatial):
    label = torch.zeros(2, 1, *spatial, dtype=torch.long)
    label[(slice(None), slice(None)) + tuple(slice(3, 6) for _ in spatial)] = 1
    label[(slice(None), slice(None)) + tuple(slice(6, 9) for _ in spatial)] = 2
    loss = LightMedSegLoss(to_onehot_y=True, softmax=True)
    perfect = loss(_logits_from_label(label, 3), label)
    wrong = loss(_logits_from_label((label + 1) % 3, 3), label)
    assert perfect < 0.01
    assert wrong > 10 * perfect + 1.0


def test_absent_class_gives_finite_loss_and_gradients():
    label = _two_class_cube()  # class 2 of 3 never occurs
    logits = torch.randn(1, 3, 12, 12, 12, requires_grad=True)
    value = LightMedSegLoss(to_onehot_y=True, softmax=True)(logits, label)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(logits.grad).all()
    # predicting the absent class is still penalised
    assert value > LightMedSegLoss(to_onehot_y=True, softmax=True)(_logits_from_label(label, 3), label)


def test_background_only_target_gives_finite_loss_and_no_boundary_term():
    label = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    logits = torch.randn(1, 3, 8, 8, 8, requires_grad=True)
    with_boundary = LightMedSegLoss(to_onehot_y=True, softmax=True, boundary_weight=0.5)(logits, label)
    without_boundary = LightMedSegLoss(to_onehot_y=True, softmax=True, boundary_weight=0.0)(logits, label)
    with_boundary.backward()
    assert torch.isfinite(with_boundary)
    assert torch.isfinite(logits.grad).all()
    torch.testing.assert_close(with_boundary, without_boundary)


def test_gradient_flows_and_boundary_term_acts_only_inside_the_band():
    label = _two_class_cube(20)
    logits = torch.zeros(1, 2, 20, 20, 20, requires_grad=True)
    LightMedSegLoss(to_onehot_y=True, softmax=True)(logits, label).backward()
    assert logits.grad.abs().sum() > 0

    random_logits = torch.randn(1, 2, 20, 20, 20)
    grads = []
    for boundary_weight in (0.0, 1.0):
        logits = random_logits.clone().requires_grad_()
        LightMedSegLoss(to_onehot_y=True, softmax=True, boundary_weight=boundary_weight)(logits, label).backward()
        grads.append(logits.grad)
    boundary_grad = (grads[1] - grads[0]).abs().sum(dim=1, keepdim=True)
    band = boundary_band(torch.nn.functional.one_hot(label[:, 0], 2).movedim(-1, 1), dilation=3)
    assert 0 < band.sum() < band.numel()
    assert boundary_grad[band].min() > 0
    assert boundary_grad[~band].max() < 1e-7


def test_confidently_wrong_softmax_prediction_keeps_a_finite_gradient():
    label = _two_class_cube()
    logits = _logits_from_label(1 - label, 2, scale=200.0).requires_grad_()
    value = LightMedSegLoss(to_onehot_y=True, softmax=True)(logits, label)
    value.backward()
    assert torch.isfinite(value) and value > 10
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_class_weighting_makes_a_rare_class_count():
    # one voxel of class 1 among 1000, predicted as background: weighting must raise the loss
    label = torch.zeros(1, 1, 10, 10, 10, dtype=torch.long)
    label[0, 0, 5, 5, 5] = 1
    logits = _logits_from_label(torch.zeros_like(label), 2, scale=3.0)
    weighted = LightMedSegLoss(to_onehot_y=True, softmax=True, class_weighted=True)(logits, label)
    unweighted = LightMedSegLoss(to_onehot_y=True, softmax=True, class_weighted=False)(logits, label)
    assert weighted > unweighted + 1.0


def test_sigmoid_mode_with_overlapping_regions():
    label = _two_class_cube(12)[:, 0]
    inner = torch.zeros_like(label)
    inner[..., 5:7, 5:7, 5:7] = 1
    regions = torch.stack([label, label, inner], dim=1).float()  # nested, like TC / WT / ET
    loss = LightMedSegLoss(sigmoid=True)
    good = loss(20 * (2 * regions - 1), regions)
    bad = loss(-20 * (2 * regions - 1), regions)
    logits = torch.randn(1, 3, 12, 12, 12, requires_grad=True)
    value = loss(logits, torch.cat([regions[:, :2], torch.zeros_like(regions[:, 2:])], dim=1))  # empty channel
    value.backward()
    assert good < 0.01 < 1.0 < bad
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_include_background_false_drops_background_from_dice():
    # predicting background everywhere: background Dice is near perfect, foreground Dice is 1 - 0
    label = _two_class_cube()
    logits = _logits_from_label(torch.zeros_like(label), 2)
    with_bg = LightMedSegLoss(to_onehot_y=True, softmax=True, class_weighted=False, include_background=True)
    without_bg = LightMedSegLoss(to_onehot_y=True, softmax=True, class_weighted=False, include_background=False)
    assert without_bg(logits, label) - with_bg(logits, label) > 0.4


def test_shape_mismatch_raises_clear_error():
    loss = LightMedSegLoss(softmax=True)
    with pytest.raises(ValueError, match=r"\(1, 3, 8, 8, 8\).*\(1, 2, 8, 8, 8\)"):
        loss(torch.randn(1, 2, 8, 8, 8), torch.zeros(1, 3, 8, 8, 8))
    with pytest.raises(ValueError, match="to_onehot_y"):
        LightMedSegLoss(to_onehot_y=True, softmax=True)(torch.randn(1, 2, 8, 8, 8), torch.zeros(1, 2, 8, 8, 8))


def test_exactly_one_activation_is_required():
    with pytest.raises(ValueError, match="exactly one"):
        LightMedSegLoss()
    with pytest.raises(ValueError, match="exactly one"):
        LightMedSegLoss(softmax=True, sigmoid=True)


def test_half_precision_logits_on_a_large_volume_stay_finite():
    # voxel counts of a 64^3 volume overflow float16, so the loss must not sum in float16
    label = torch.zeros(1, 1, 64, 64, 64, dtype=torch.long)
    label[..., 20:40, 20:40, 20:40] = 1
    logits = torch.randn(1, 2, 64, 64, 64).half().requires_grad_()
    value = LightMedSegLoss(to_onehot_y=True, softmax=True)(logits, label)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert logits.grad.dtype == torch.float16 and torch.isfinite(logits.grad).all()
