"""Hidden tests of ``exercises.layers``: the shared properties, on inputs learners never see."""

from __future__ import annotations

import torch

from exercises.checks import Property
from exercises.checks.layers import (
    activation_backward_values,
    activation_forward_values,
    batchnorm_backward_values,
    batchnorm_eval_backward_values,
    batchnorm_eval_forward_values,
    batchnorm_forward_values,
    batchnorm_inputs,
    batchnorm_rejects_bad_gamma,
    batchnorm_running_rejects_single_sample,
    batchnorm_running_values,
    dropout_backward_identity,
    dropout_backward_same_mask,
    dropout_identity,
    dropout_rejects_bad_p,
    dropout_train_statistics,
    dropout_uses_generator,
    huge_logits,
    layernorm_backward_values,
    layernorm_forward_values,
    layernorm_inputs,
    layernorm_rejects_bad_beta,
    linear_backward_values,
    linear_forward_values,
    linear_rejects_mismatched_shapes,
    net_inputs,
    relu_backward_at_zero,
    relu_backward_keeps_inputs,
    relu_backward_values,
    relu_forward_keeps_input,
    relu_forward_values,
    running_statistics,
    softmax_cross_entropy_rejects_bad_labels,
    softmax_cross_entropy_values,
    spatial_batchnorm_backward_values,
    spatial_batchnorm_forward_values,
    spatial_inputs,
    two_layer_net_rejects_missing_key,
    two_layer_net_values,
)
from grading.suite import hidden_test


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32, zeros: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    if zeros:
        x[torch.rand(*shape, generator=g) < 0.2] = 0.0
    else:
        x[x == 0] = 0.5
    return x


@hidden_test("relu_forward")
def relu_forward_4d_float32() -> Property:
    return relu_forward_values(_randn(2, 3, 5, 7, seed=11, zeros=True))


@hidden_test("relu_forward")
def relu_forward_float64_large() -> Property:
    return relu_forward_values(_randn(9, 13, seed=12, dtype=torch.float64) * 1e4)


@hidden_test("relu_forward")
def relu_forward_non_contiguous() -> Property:
    return relu_forward_values(_randn(6, 8, seed=13).t())


@hidden_test("relu_forward")
def relu_forward_input_unchanged() -> Property:
    return relu_forward_keeps_input(_randn(4, 10, seed=14, zeros=True))


@hidden_test("relu_backward")
def relu_backward_4d_float64() -> Property:
    return relu_backward_values(_randn(3, 2, 4, 5, seed=21, dtype=torch.float64),
                                _randn(3, 2, 4, 5, seed=22, dtype=torch.float64))


@hidden_test("relu_backward")
def relu_backward_float32() -> Property:
    return relu_backward_values(_randn(17, 6, seed=23), _randn(17, 6, seed=24))


@hidden_test("relu_backward")
def relu_backward_zero_input() -> Property:
    return relu_backward_at_zero(_randn(8, 9, seed=25, zeros=True), _randn(8, 9, seed=26))


@hidden_test("relu_backward")
def relu_backward_inputs_unchanged() -> Property:
    return relu_backward_keeps_inputs(_randn(5, 7, seed=27, zeros=True), _randn(5, 7, seed=28))


# ============================================================================= chapter 2, beyond ReLU


def _no_zeros(*shape: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return _randn(*shape, seed=seed, dtype=dtype)


# ----------------------------------------------------------------------------- linear


@hidden_test("linear_forward")
def linear_forward_float32_rectangular_h() -> Property:
    return linear_forward_values(_randn(7, 5, seed=101), _randn(5, 3, seed=102), _randn(3, seed=103))


@hidden_test("linear_forward")
def linear_forward_float64_wide_h() -> Property:
    f64 = torch.float64
    return linear_forward_values(_randn(64, 20, seed=104, dtype=f64), _randn(20, 10, seed=105, dtype=f64),
                                 _randn(10, seed=106, dtype=f64))


@hidden_test("linear_forward")
def linear_forward_bias_length_h() -> Property:
    return linear_rejects_mismatched_shapes(_randn(4, 3, seed=107), _randn(3, 2, seed=108), _randn(2, seed=109))


@hidden_test("linear_backward")
def linear_backward_float32_rectangular_h() -> Property:
    return linear_backward_values(_randn(9, 4, seed=111), _randn(4, 6, seed=112), _randn(6, seed=113),
                                  _randn(9, 6, seed=114))


@hidden_test("linear_backward")
def linear_backward_float64_square_h() -> Property:
    f64 = torch.float64
    return linear_backward_values(_randn(5, 4, seed=115, dtype=f64), _randn(4, 4, seed=116, dtype=f64),
                                  _randn(4, seed=117, dtype=f64), _randn(5, 4, seed=118, dtype=f64))


@hidden_test("linear_backward")
def linear_backward_single_sample_h() -> Property:
    f64 = torch.float64
    return linear_backward_values(_randn(1, 3, seed=119, dtype=f64), _randn(3, 2, seed=120, dtype=f64),
                                  _randn(2, seed=121, dtype=f64), _randn(1, 2, seed=122, dtype=f64))


@hidden_test("linear_backward")
def linear_backward_float64_large_h() -> Property:
    f64 = torch.float64
    return linear_backward_values(_randn(32, 12, seed=123, dtype=f64), _randn(12, 7, seed=124, dtype=f64),
                                  _randn(7, seed=125, dtype=f64), _randn(32, 7, seed=126, dtype=f64))


# ----------------------------------------------------------------------------- sigmoid and tanh

_HUGE = torch.tensor([[-1e4, -3e3, -200.0, -88.5, -30.0, -0.5], [0.0, 0.5, 30.0, 88.5, 200.0, 1e4]])


@hidden_test("sigmoid_forward")
def sigmoid_forward_float64_h() -> Property:
    return activation_forward_values("sigmoid", _randn(4, 6, seed=131, dtype=torch.float64) * 4)


@hidden_test("sigmoid_forward")
def sigmoid_forward_huge_float32_h() -> Property:
    return activation_forward_values("sigmoid", _HUGE.clone())


@hidden_test("sigmoid_backward")
def sigmoid_backward_float32_h() -> Property:
    return activation_backward_values("sigmoid", _randn(3, 2, 5, seed=132) * 3, _randn(3, 2, 5, seed=133))


@hidden_test("sigmoid_backward")
def sigmoid_backward_huge_float32_h() -> Property:
    return activation_backward_values("sigmoid", _HUGE.clone(), _randn(2, 6, seed=134))


@hidden_test("sigmoid_backward")
def sigmoid_backward_float64_h() -> Property:
    return activation_backward_values("sigmoid", _randn(10, seed=135, dtype=torch.float64) * 2,
                                      _randn(10, seed=136, dtype=torch.float64))


@hidden_test("tanh_forward")
def tanh_forward_float32_h() -> Property:
    return activation_forward_values("tanh", _randn(5, 7, seed=141) * 3)


@hidden_test("tanh_forward")
def tanh_forward_float64_wide_range_h() -> Property:
    return activation_forward_values("tanh", torch.linspace(-18, 18, 37, dtype=torch.float64))


@hidden_test("tanh_backward")
def tanh_backward_float64_h() -> Property:
    return activation_backward_values("tanh", _randn(4, 5, seed=142, dtype=torch.float64) * 2,
                                      _randn(4, 5, seed=143, dtype=torch.float64))


@hidden_test("tanh_backward")
def tanh_backward_float32_h() -> Property:
    return activation_backward_values("tanh", _randn(2, 3, 4, seed=144) * 1.5, _randn(2, 3, 4, seed=145))


# ----------------------------------------------------------------------------- softmax cross-entropy


def _labels(n: int, c: int, seed: int) -> torch.Tensor:
    labels_rng = torch.Generator().manual_seed(seed)
    return torch.randint(0, c, (n,), generator=labels_rng)


@hidden_test("softmax_cross_entropy")
def softmax_cross_entropy_float64_h() -> Property:
    return softmax_cross_entropy_values(_randn(10, 7, seed=151, dtype=torch.float64) * 2, _labels(10, 7, 152))


@hidden_test("softmax_cross_entropy")
def softmax_cross_entropy_float32_h() -> Property:
    return softmax_cross_entropy_values(_randn(12, 5, seed=153) * 4, _labels(12, 5, 154))


@hidden_test("softmax_cross_entropy")
def softmax_cross_entropy_one_sample_h() -> Property:
    return softmax_cross_entropy_values(_randn(1, 9, seed=155, dtype=torch.float64), _labels(1, 9, 156))


@hidden_test("softmax_cross_entropy", points=2.0)
def softmax_cross_entropy_huge_float32_h() -> Property:
    return softmax_cross_entropy_values(*huge_logits(8, 6, seed=157))


@hidden_test("softmax_cross_entropy")
def softmax_cross_entropy_huge_float64_h() -> Property:
    return softmax_cross_entropy_values(*huge_logits(4, 3, seed=158, dtype=torch.float64))


@hidden_test("softmax_cross_entropy")
def softmax_cross_entropy_negative_label_h() -> Property:
    return softmax_cross_entropy_rejects_bad_labels(_randn(3, 4, seed=159), torch.tensor([0, -1, 2]))


# ----------------------------------------------------------------------------- dropout


@hidden_test("dropout_forward")
def dropout_forward_half_float64_h() -> Property:
    return dropout_train_statistics(_no_zeros(100, 30, seed=161, dtype=torch.float64), 0.5, seed=162)


@hidden_test("dropout_forward")
def dropout_forward_low_p_float32_h() -> Property:
    return dropout_train_statistics(_no_zeros(40, 50, seed=163), 0.1, seed=164)


@hidden_test("dropout_forward")
def dropout_forward_high_p_4d_h() -> Property:
    return dropout_train_statistics(_no_zeros(8, 3, 10, 10, seed=165), 0.8, seed=166)


@hidden_test("dropout_forward")
def dropout_forward_eval_identity_h() -> Property:
    return dropout_identity(_no_zeros(20, 15, seed=167), 0.6, training=False)


@hidden_test("dropout_forward")
def dropout_forward_zero_p_h() -> Property:
    return dropout_identity(_no_zeros(20, 15, seed=168, dtype=torch.float64), 0.0, training=True)


@hidden_test("dropout_forward")
def dropout_forward_generator_h() -> Property:
    return dropout_uses_generator(_no_zeros(30, 30, seed=169), 0.4, seed=170)


@hidden_test("dropout_forward")
def dropout_forward_negative_p_h() -> Property:
    return dropout_rejects_bad_p(_no_zeros(3, 3, seed=171), -0.1)


@hidden_test("dropout_backward")
def dropout_backward_half_h() -> Property:
    return dropout_backward_same_mask(_no_zeros(60, 20, seed=172), 0.5, seed=173, dout=_randn(60, 20, seed=174))


@hidden_test("dropout_backward")
def dropout_backward_quarter_float64_h() -> Property:
    f64 = torch.float64
    return dropout_backward_same_mask(_no_zeros(25, 40, seed=175, dtype=f64), 0.25, seed=176,
                                      dout=_randn(25, 40, seed=177, dtype=f64))


@hidden_test("dropout_backward")
def dropout_backward_eval_h() -> Property:
    return dropout_backward_identity(_no_zeros(10, 10, seed=178), _randn(10, 10, seed=179))


# ----------------------------------------------------------------------------- batch normalization


@hidden_test("batchnorm_forward")
def batchnorm_forward_float64_h() -> Property:
    x, gamma, beta, _ = batchnorm_inputs(10, 6, seed=181)
    return batchnorm_forward_values(x, gamma, beta)


@hidden_test("batchnorm_forward")
def batchnorm_forward_float32_big_eps_h() -> Property:
    x, gamma, beta, _ = batchnorm_inputs(24, 5, seed=182, dtype=torch.float32)
    return batchnorm_forward_values(x, gamma, beta, eps=1e-2)


@hidden_test("batchnorm_forward")
def batchnorm_forward_two_samples_h() -> Property:
    x, gamma, beta, _ = batchnorm_inputs(2, 4, seed=183)
    return batchnorm_forward_values(x, gamma, beta)


@hidden_test("batchnorm_forward")
def batchnorm_forward_bad_gamma_h() -> Property:
    return batchnorm_rejects_bad_gamma(batchnorm_inputs(5, 3, seed=184)[0])


@hidden_test("batchnorm_backward", points=2.0)
def batchnorm_backward_float64_h() -> Property:
    return batchnorm_backward_values(*batchnorm_inputs(12, 4, seed=185))


@hidden_test("batchnorm_backward")
def batchnorm_backward_float32_h() -> Property:
    return batchnorm_backward_values(*batchnorm_inputs(32, 7, seed=186, dtype=torch.float32), eps=1e-3)


@hidden_test("batchnorm_backward")
def batchnorm_backward_three_samples_h() -> Property:
    return batchnorm_backward_values(*batchnorm_inputs(3, 5, seed=187))


# ----------------------------------------------------------------------------- batch norm at test time


@hidden_test("batchnorm_running_update")
def batchnorm_running_one_batch_h() -> Property:
    x = batchnorm_inputs(9, 5, seed=190)[0]
    mean, var = running_statistics(x, seed=191)
    return batchnorm_running_values(mean, var, [x], momentum=0.2)


@hidden_test("batchnorm_running_update")
def batchnorm_running_many_batches_h() -> Property:
    batches = [batchnorm_inputs(5, 3, seed=192 + k)[0] for k in range(4)]
    return batchnorm_running_values(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64),
                                    batches, momentum=0.1)


@hidden_test("batchnorm_running_update")
def batchnorm_running_float32_h() -> Property:
    x = batchnorm_inputs(16, 6, seed=196, dtype=torch.float32)[0]
    mean, var = running_statistics(x, seed=197)
    return batchnorm_running_values(mean, var, [x, x.flip(0) * 0.5 + 1], momentum=0.5)


@hidden_test("batchnorm_running_update")
def batchnorm_running_single_sample_h() -> Property:
    return batchnorm_running_rejects_single_sample(batchnorm_inputs(4, 3, seed=198)[0])


@hidden_test("batchnorm_eval_forward")
def batchnorm_eval_forward_float64_h() -> Property:
    x, gamma, beta, _ = batchnorm_inputs(7, 6, seed=200)
    return batchnorm_eval_forward_values(x, gamma, beta, *running_statistics(x, seed=201))


@hidden_test("batchnorm_eval_forward")
def batchnorm_eval_forward_one_sample_h() -> Property:
    x, gamma, beta, _ = batchnorm_inputs(5, 4, seed=202)
    return batchnorm_eval_forward_values(x[2:3], gamma, beta, *running_statistics(x, seed=203))


@hidden_test("batchnorm_eval_forward")
def batchnorm_eval_forward_float32_h() -> Property:
    x, gamma, beta, _ = batchnorm_inputs(20, 5, seed=204, dtype=torch.float32)
    return batchnorm_eval_forward_values(x, gamma, beta, *running_statistics(x, seed=205), eps=1e-2)


@hidden_test("batchnorm_eval_backward", points=2.0)
def batchnorm_eval_backward_float64_h() -> Property:
    x, gamma, beta, dout = batchnorm_inputs(9, 4, seed=206)
    return batchnorm_eval_backward_values(x, gamma, beta, *running_statistics(x, seed=207), dout)


@hidden_test("batchnorm_eval_backward")
def batchnorm_eval_backward_float32_h() -> Property:
    x, gamma, beta, dout = batchnorm_inputs(12, 6, seed=208, dtype=torch.float32)
    return batchnorm_eval_backward_values(x, gamma, beta, *running_statistics(x, seed=209), dout, eps=1e-3)


# ----------------------------------------------------------------------------- spatial batch norm


@hidden_test("spatial_batchnorm_forward")
def spatial_batchnorm_forward_float64_h() -> Property:
    x, gamma, beta, _ = spatial_inputs(2, 5, 4, 3, seed=210)
    return spatial_batchnorm_forward_values(x, gamma, beta)


@hidden_test("spatial_batchnorm_forward")
def spatial_batchnorm_forward_float32_h() -> Property:
    x, gamma, beta, _ = spatial_inputs(5, 2, 6, 6, seed=211, dtype=torch.float32)
    return spatial_batchnorm_forward_values(x, gamma, beta, eps=1e-2)


@hidden_test("spatial_batchnorm_forward")
def spatial_batchnorm_forward_one_pixel_h() -> Property:
    x, gamma, beta, _ = spatial_inputs(6, 3, 1, 1, seed=212)
    return spatial_batchnorm_forward_values(x, gamma, beta)


@hidden_test("spatial_batchnorm_backward", points=2.0)
def spatial_batchnorm_backward_float64_h() -> Property:
    return spatial_batchnorm_backward_values(*spatial_inputs(3, 4, 3, 5, seed=213))


@hidden_test("spatial_batchnorm_backward")
def spatial_batchnorm_backward_float32_h() -> Property:
    return spatial_batchnorm_backward_values(*spatial_inputs(2, 6, 4, 4, seed=214, dtype=torch.float32), eps=1e-3)


# ----------------------------------------------------------------------------- layer norm


@hidden_test("layernorm_forward")
def layernorm_forward_float64_h() -> Property:
    x, gamma, beta, _ = layernorm_inputs(7, 9, seed=220)
    return layernorm_forward_values(x, gamma, beta)


@hidden_test("layernorm_forward")
def layernorm_forward_one_sample_h() -> Property:
    x, gamma, beta, _ = layernorm_inputs(1, 6, seed=221)
    return layernorm_forward_values(x, gamma, beta)


@hidden_test("layernorm_forward")
def layernorm_forward_float32_h() -> Property:
    x, gamma, beta, _ = layernorm_inputs(16, 4, seed=222, dtype=torch.float32)
    return layernorm_forward_values(x, gamma, beta, eps=1e-2)


@hidden_test("layernorm_forward")
def layernorm_forward_bad_beta_h() -> Property:
    return layernorm_rejects_bad_beta(layernorm_inputs(3, 5, seed=223)[0])


@hidden_test("layernorm_backward", points=2.0)
def layernorm_backward_float64_h() -> Property:
    return layernorm_backward_values(*layernorm_inputs(8, 6, seed=224))


@hidden_test("layernorm_backward")
def layernorm_backward_float32_h() -> Property:
    return layernorm_backward_values(*layernorm_inputs(5, 10, seed=225, dtype=torch.float32), eps=1e-3)


@hidden_test("layernorm_backward")
def layernorm_backward_square_h() -> Property:
    return layernorm_backward_values(*layernorm_inputs(4, 4, seed=226))


# ----------------------------------------------------------------------------- the two-layer net


@hidden_test("two_layer_net_loss", points=2.0)
def two_layer_net_float64_no_reg_h() -> Property:
    return two_layer_net_values(*net_inputs(9, 6, 8, 4, seed=191), reg=0.0)


@hidden_test("two_layer_net_loss", points=2.0)
def two_layer_net_float64_reg_h() -> Property:
    return two_layer_net_values(*net_inputs(7, 5, 10, 3, seed=192), reg=0.5)


@hidden_test("two_layer_net_loss")
def two_layer_net_float32_reg_h() -> Property:
    return two_layer_net_values(*net_inputs(16, 12, 9, 6, seed=193, dtype=torch.float32), reg=0.05)


@hidden_test("two_layer_net_loss")
def two_layer_net_missing_bias_h() -> Property:
    return two_layer_net_rejects_missing_key(*net_inputs(4, 3, 5, 2, seed=194))
