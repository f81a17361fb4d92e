"""Hidden tests of ``exercises.autograd``: the shared properties, on inputs learners never see."""

from __future__ import annotations

import torch

from exercises.checks import Property
from exercises.checks.autograd import (
    Expr,
    net_forward_backward,
    net_parameters,
    net_trains,
    net_uses_generator,
    numerical_gradient_is_centred,
    numerical_gradient_keeps_x,
    numerical_gradient_matches_autograd,
    numerical_gradient_rejects_bad_h,
    relative_error_rejects_mismatch,
    relative_error_value,
    value_accumulates,
    value_backward_order,
    value_matches_torch,
    value_operation,
    value_pow_rejects_value_exponent,
    value_starts_at_zero,
)
from grading.suite import hidden_test


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    autograd_rng = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=autograd_rng, dtype=torch.float64).to(dtype)


# ----------------------------------------------------------------------------- Value, one operation at a time


@hidden_test("Value")
def value_grad_zero_then_one_h() -> Property:
    return value_starts_at_zero(-2.5)


@hidden_test("Value")
def value_add_h() -> Property:
    return value_operation(("add", 0, 1), (0.3, -1.1), upstream=-0.75)


@hidden_test("Value")
def value_mul_h() -> Property:
    return value_operation(("mul", 0, 1), (-0.7, 2.2), upstream=None)


@hidden_test("Value")
def value_pow_cube_negative_base_h() -> Property:
    return value_operation(("pow", 0, 3), (-1.4,), upstream=0.6)


@hidden_test("Value")
def value_pow_negative_int_h() -> Property:
    return value_operation(("pow", 0, -2), (1.3,), upstream=2.0)


@hidden_test("Value")
def value_pow_float_h() -> Property:
    return value_operation(("pow", 0, 1.5), (3.1,), upstream=-1.2)


@hidden_test("Value")
def value_neg_h() -> Property:
    return value_operation(("neg", 0), (-2.3,), upstream=0.9)


@hidden_test("Value")
def value_sub_h() -> Property:
    return value_operation(("sub", 0, 1), (0.4, 1.9), upstream=1.7)


@hidden_test("Value")
def value_div_h() -> Property:
    return value_operation(("truediv", 0, 1), (-2.2, 0.8), upstream=1.3)


@hidden_test("Value")
def value_number_plus_value_h() -> Property:
    return value_operation(("add", 3.5, 0), (-0.2,), upstream=2.5)


@hidden_test("Value")
def value_number_minus_value_h() -> Property:
    return value_operation(("sub", -1.5, 0), (0.9,), upstream=1.1)


@hidden_test("Value")
def value_number_times_value_h() -> Property:
    return value_operation(("mul", -4.0, 0), (1.1,), upstream=0.5)


@hidden_test("Value")
def value_number_over_value_h() -> Property:
    return value_operation(("truediv", 5.0, 0), (-1.6,), upstream=0.8)


@hidden_test("Value")
def value_minus_number_h() -> Property:
    return value_operation(("sub", 0, 2.5), (0.6,), upstream=-1.4)


@hidden_test("Value")
def value_exp_h() -> Property:
    return value_operation(("exp", 0), (-0.8,), upstream=1.9)


@hidden_test("Value")
def value_log_h() -> Property:
    return value_operation(("log", 0), (0.35,), upstream=-0.7)


@hidden_test("Value")
def value_tanh_negative_h() -> Property:
    return value_operation(("tanh", 0), (-1.2,), upstream=1.6)


@hidden_test("Value")
def value_tanh_small_h() -> Property:
    return value_operation(("tanh", 0), (0.3,), upstream=-2.1)


@hidden_test("Value")
def value_sigmoid_positive_h() -> Property:
    return value_operation(("sigmoid", 0), (1.4,), upstream=1.8)


@hidden_test("Value")
def value_sigmoid_negative_h() -> Property:
    return value_operation(("sigmoid", 0), (-3.0,), upstream=0.4)


@hidden_test("Value")
def value_relu_positive_h() -> Property:
    return value_operation(("relu", 0), (2.2,), upstream=-1.3)


@hidden_test("Value")
def value_relu_negative_h() -> Property:
    return value_operation(("relu", 0), (-0.1,), upstream=1.3)


# ----------------------------------------------------------------------------- Value, whole graphs


@hidden_test("Value")
def value_accumulate_sum_h() -> Property:
    return value_accumulates("a + a", -1.7)


@hidden_test("Value")
def value_accumulate_square_h() -> Property:
    return value_accumulates("a * a", 1.9)


@hidden_test("Value")
def value_accumulate_two_ops_h() -> Property:
    return value_accumulates("two uses", -0.6)


@hidden_test("Value")
def value_order_long_first_h() -> Property:
    return value_backward_order(-0.4, chain=2, short_first=False)


@hidden_test("Value")
def value_order_chain_of_three_h() -> Property:
    return value_backward_order(1.3, chain=3, short_first=True)


@hidden_test("Value")
def value_order_chain_of_five_h() -> Property:
    return value_backward_order(0.2, chain=5, short_first=False)


@hidden_test("Value")
def value_rejects_value_exponent_h() -> Property:
    return value_pow_rejects_value_exponent(1.5, 2.0)


@hidden_test("Value")
def value_graph_mlp_neuron_h() -> Property:
    # Two tanh neurons sharing inputs, then a sigmoid output neuron and a log loss.
    return value_matches_torch(Expr(
        (0.5, -1.2, 0.8, -0.3, 1.1, 0.4, -0.6, 0.9),
        (("mul", 0, 2), ("mul", 1, 3), ("add", 8, 9), ("add", 10, 0.1), ("tanh", 11),
         ("mul", 0, 4), ("mul", 1, 5), ("add", 13, 14), ("tanh", 15),
         ("mul", 12, 6), ("mul", 16, 7), ("add", 17, 18), ("sigmoid", 19), ("log", 20), ("neg", 21)),
    ), "agrees with PyTorch on a two-neuron network with a log loss")


@hidden_test("Value")
def value_graph_every_operator_h() -> Property:
    return value_matches_torch(Expr(
        (0.7, -1.1, 1.6),
        (("sub", 0, 1), ("pow", 3, 2), ("truediv", 4, 2), ("exp", 5), ("mul", 6, 0), ("add", 7, 3),
         ("sigmoid", 8), ("sub", 1.0, 9), ("log", 10), ("mul", 3.0, 11), ("relu", 12), ("add", 13, 6),
         ("tanh", 14), ("pow", 2, -1.5), ("mul", 15, 16), ("truediv", 2.0, 2), ("add", 17, 18), ("neg", 19),
         ("mul", 20, 20)),
    ), "agrees with PyTorch on an expression using every operator")


@hidden_test("Value")
def value_graph_heavy_reuse_h() -> Property:
    # x is used six times, y four times, at different depths.
    return value_matches_torch(Expr(
        (0.9, -0.5),
        (("mul", 0, 0), ("add", 2, 0), ("mul", 3, 1), ("add", 4, 0), ("tanh", 5), ("mul", 6, 1),
         ("add", 7, 1), ("mul", 8, 0), ("sub", 9, 1), ("mul", 10, 0), ("add", 11, 6), ("mul", 12, 5)),
    ), "agrees with PyTorch on a graph that reuses its inputs many times")


@hidden_test("Value")
def value_graph_deep_chain_h() -> Property:
    ops: list[tuple] = []
    node = 0
    for k in range(60):
        ops.append(("tanh", node) if k % 3 == 0 else ("mul", node, 1.05) if k % 3 == 1 else ("add", node, 0))
        node = 1 + len(ops) - 1
    return value_matches_torch(Expr((0.3,), tuple(ops)), "agrees with PyTorch on a deep chain (60 operations)")


# ----------------------------------------------------------------------------- numerical_gradient


@hidden_test("numerical_gradient")
def numerical_gradient_logsumexp_3x4_h() -> Property:
    return numerical_gradient_matches_autograd("logsumexp", _randn(3, 4, seed=31))


@hidden_test("numerical_gradient")
def numerical_gradient_norm_3d_h() -> Property:
    return numerical_gradient_matches_autograd("norm", _randn(2, 3, 2, seed=32))


@hidden_test("numerical_gradient")
def numerical_gradient_det_4x4_h() -> Property:
    return numerical_gradient_matches_autograd("det", _randn(4, 4, seed=33) + 2 * torch.eye(4, dtype=torch.float64))


@hidden_test("numerical_gradient")
def numerical_gradient_python_float_h() -> Property:
    return numerical_gradient_matches_autograd("fsum", _randn(6, seed=34))


@hidden_test("numerical_gradient")
def numerical_gradient_non_contiguous_h() -> Property:
    return numerical_gradient_matches_autograd("logsumexp", _randn(4, 3, seed=35).t())


@hidden_test("numerical_gradient")
def numerical_gradient_scalar_input_h() -> Property:
    return numerical_gradient_matches_autograd("norm", torch.tensor(-1.7, dtype=torch.float64))


@hidden_test("numerical_gradient")
def numerical_gradient_centred_norm_h() -> Property:
    return numerical_gradient_is_centred("norm", _randn(5, seed=36), 0.05)


@hidden_test("numerical_gradient")
def numerical_gradient_centred_logsumexp_h() -> Property:
    return numerical_gradient_is_centred("logsumexp", _randn(2, 3, seed=37), 0.2)


@hidden_test("numerical_gradient")
def numerical_gradient_restores_det_h() -> Property:
    return numerical_gradient_keeps_x("det", _randn(3, 3, seed=38))


@hidden_test("numerical_gradient")
def numerical_gradient_restores_logsumexp_h() -> Property:
    return numerical_gradient_keeps_x("logsumexp", _randn(4, 5, seed=39) * 10)


@hidden_test("numerical_gradient")
def numerical_gradient_negative_step_h() -> Property:
    return numerical_gradient_rejects_bad_h(_randn(3, seed=40), h=-1e-3)


# ----------------------------------------------------------------------------- relative_error


@hidden_test("relative_error")
def relative_error_random_with_zeros_h() -> Property:
    a, b = _randn(5, 6, seed=41), _randn(5, 6, seed=42)
    a[0, :3] = 0.0
    b[0, :3] = 0.0
    return relative_error_value(a, b)


@hidden_test("relative_error")
def relative_error_nearly_equal_h() -> Property:
    a = _randn(20, seed=43)
    return relative_error_value(a, a * (1 + 3e-11) + 1e-13)


@hidden_test("relative_error")
def relative_error_float32_h() -> Property:
    return relative_error_value(_randn(4, 4, seed=44, dtype=torch.float32), _randn(4, 4, seed=45, dtype=torch.float32))


@hidden_test("relative_error")
def relative_error_all_zero_h() -> Property:
    return relative_error_value(torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64))


@hidden_test("relative_error")
def relative_error_shape_mismatch_h() -> Property:
    return relative_error_rejects_mismatch(torch.zeros(2, 3, dtype=torch.float64),
                                           torch.zeros(3, 2, dtype=torch.float64))


# ----------------------------------------------------------------------------- Neuron, Layer, MLP


@hidden_test("Neuron")
def neuron_four_inputs_h() -> Property:
    return net_forward_backward("Neuron", 4, (), [0.3, -1.4, 0.9, 2.2], seed=51)


@hidden_test("Neuron")
def neuron_inactive_h() -> Property:
    return net_forward_backward("Neuron", 2, (), [1.3, -0.6], seed=68, inactive=True)


@hidden_test("Neuron")
def neuron_one_input_h() -> Property:
    return net_forward_backward("Neuron", 1, (), [-0.8], seed=52)


@hidden_test("Neuron")
def neuron_linear_h() -> Property:
    return net_forward_backward("Neuron", 5, (), [1.2, -0.4, 0.6, -1.5, 0.2], seed=53, nonlin=False)


@hidden_test("Neuron")
def neuron_parameters_h() -> Property:
    return net_parameters("Neuron", 5, (), seed=54)


@hidden_test("Layer")
def layer_relu_h() -> Property:
    return net_forward_backward("Layer", 4, (3,), [0.5, 1.3, -0.7, -0.2], seed=55)


@hidden_test("Layer")
def layer_single_unit_h() -> Property:
    return net_forward_backward("Layer", 3, (1,), [-1.1, 0.4, 0.8], seed=56)


@hidden_test("Layer")
def layer_linear_h() -> Property:
    return net_forward_backward("Layer", 2, (5,), [0.9, -1.6], seed=57, nonlin=False)


@hidden_test("Layer")
def layer_parameters_h() -> Property:
    return net_parameters("Layer", 4, (5,), seed=58)


@hidden_test("Layer")
def layer_generator_h() -> Property:
    return net_uses_generator("Layer", 3, (2,), seed=59)


@hidden_test("MLP")
def mlp_three_layers_h() -> Property:
    return net_forward_backward("MLP", 3, (5, 4, 1), [0.6, -0.9, 1.4], seed=60)


@hidden_test("MLP")
def mlp_several_outputs_h() -> Property:
    return net_forward_backward("MLP", 2, (6, 3), [-0.5, 1.2], seed=61)


@hidden_test("MLP")
def mlp_one_linear_layer_h() -> Property:
    return net_forward_backward("MLP", 4, (2,), [0.3, 0.8, -1.2, 0.5], seed=62)


@hidden_test("MLP")
def mlp_deep_h() -> Property:
    return net_forward_backward("MLP", 2, (3, 4, 3, 1), [1.1, 0.7], seed=63)


@hidden_test("MLP")
def mlp_parameters_h() -> Property:
    return net_parameters("MLP", 3, (5, 4, 1), seed=64)


@hidden_test("MLP")
def mlp_parameters_deep_h() -> Property:
    return net_parameters("MLP", 2, (3, 3, 3, 2), seed=65)


@hidden_test("MLP")
def mlp_generator_h() -> Property:
    return net_uses_generator("MLP", 3, (4, 2), seed=66)


@hidden_test("MLP", points=2.0)
def mlp_trains_h() -> Property:
    return net_trains((8,), n=20, seed=67)
