"""Hidden tests of ``exercises.conv``: the shared properties, on inputs learners never see.

Each listed mistake of the chapter is caught by at least one test here: off-by-one output sizes
(``conv_output_size`` values, every forward's shape), padding on one side (forwards with padding),
the stride ignored in the backward (``col2im``/``conv2d_backward`` with stride > 1 beside a stride-1
case), a flipped or transposed kernel (every forward), ``db`` over the wrong axes (every backward),
overlapping windows overwritten (stride < kernel in ``col2im``, ``conv2d_backward``, max pooling), the
gradient sent to every tied maximum (``maxpool_*_ties``), an ``im2col`` layout other than ``unfold``'s,
and Python loops over images, filters or positions (``*_vectorized``, by counting work at two sizes).
"""

from __future__ import annotations

import torch

from exercises.checks import Property
from exercises.checks.conv import (
    _randn,
    col2im_keeps_input,
    col2im_values,
    conv_backward_keeps_inputs,
    conv_backward_values,
    conv_case,
    conv_forward_bad_input,
    conv_forward_keeps_inputs,
    conv_forward_values,
    conv_grad_bad_input,
    conv_input_grad_values,
    conv_module_forward,
    conv_module_gradcheck,
    conv_module_gradients,
    conv_module_parameters,
    conv_module_trains,
    conv_module_uses_function,
    conv_weight_grad_values,
    distinct_pool_input,
    flops_values,
    im2col_keeps_input,
    im2col_values,
    maxpool_backward_ties,
    maxpool_backward_values,
    maxpool_forward_values,
    maxpool_keeps_inputs,
    num_parameters_values,
    output_size_raises,
    output_size_values,
    receptive_field_bad_input,
    receptive_field_values,
    tied_pool_input,
    vectorized,
)
from grading.suite import hidden_test

F64 = torch.float64

# ----------------------------------------------------------------------------- conv_output_size


@hidden_test("conv_output_size")
def output_size_common_layers() -> Property:
    # 28 → two 2×2 poolings → 7: the size a flatten after them must use.
    return output_size_values([(28, 2, 2, 0, 1), (14, 2, 2, 0, 1), (32, 3, 1, 1, 1), (31, 3, 2, 1, 1),
                               (224, 7, 2, 3, 1), (56, 3, 2, 1, 1), (9, 4, 3, 0, 1), (13, 5, 4, 2, 1)],
                              show_inputs=False)


@hidden_test("conv_output_size")
def output_size_dilation() -> Property:
    return output_size_values([(32, 3, 1, 2, 2), (20, 5, 2, 0, 3), (11, 2, 1, 0, 4), (17, 3, 3, 4, 2)],
                              show_inputs=False)


@hidden_test("conv_output_size")
def output_size_empty_raises() -> Property:
    return output_size_raises([(4, 5, 1, 0, 1), (3, 4, 3, 0, 1), (6, 3, 1, 0, 4), (1, 4, 2, 1, 1)], show_inputs=False)


# ----------------------------------------------------------------------------- conv2d_forward_naive


@hidden_test("conv2d_forward_naive")
def naive_float64_plain() -> Property:
    x, w, b, *_ = conv_case(2, 3, 5, 6, 3, 3, 3, 1, 0, seed=101, dtype=F64)
    return conv_forward_values("conv2d_forward_naive", x, w, b, 1, 0)


@hidden_test("conv2d_forward_naive")
def naive_stride_and_padding() -> Property:
    x, w, b, *_ = conv_case(2, 2, 7, 8, 3, 3, 2, 2, 2, seed=105)
    return conv_forward_values("conv2d_forward_naive", x, w, b, 2, 2)


@hidden_test("conv2d_forward_naive")
def naive_stride_three() -> Property:
    x, w, b, *_ = conv_case(1, 3, 9, 10, 2, 4, 4, 3, 1, seed=109)
    return conv_forward_values("conv2d_forward_naive", x, w, b, 3, 1)


@hidden_test("conv2d_forward_naive")
def naive_inputs_unchanged() -> Property:
    x, w, b, *_ = conv_case(2, 2, 5, 5, 2, 3, 3, 1, 1, seed=113)
    return conv_forward_keeps_inputs("conv2d_forward_naive", x, w, b, 1, 1)


# ----------------------------------------------------------------------------- im2col


@hidden_test("im2col")
def im2col_float64_padded() -> Property:
    return im2col_values(_randn(2, 3, 6, 5, seed=201, dtype=F64), (3, 3), stride=1, padding=1)


@hidden_test("im2col")
def im2col_non_square_kernel_strided() -> Property:
    return im2col_values(_randn(3, 2, 9, 8, seed=202), (2, 3), stride=2, padding=2)


@hidden_test("im2col")
def im2col_single_channel_stride_three() -> Property:
    return im2col_values(_randn(2, 1, 10, 11, seed=203), (4, 4), stride=3, padding=0)


@hidden_test("im2col", points=2.0)
def im2col_vectorized() -> Property:
    return vectorized("im2col", seed=204)


@hidden_test("im2col")
def im2col_input_unchanged() -> Property:
    return im2col_keeps_input(_randn(2, 2, 6, 6, seed=205), (3, 3), 2, 1)


# ----------------------------------------------------------------------------- col2im


def _cols(shape: tuple[int, int, int, int], k: tuple[int, int], s: int, p: int, seed: int,
          dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, tuple[int, ...], tuple[int, int], int, int]:
    oh, ow = (shape[2] + 2 * p - k[0]) // s + 1, (shape[3] + 2 * p - k[1]) // s + 1
    return _randn(shape[0], shape[1] * k[0] * k[1], oh * ow, seed=seed, dtype=dtype), shape, k, s, p


@hidden_test("col2im")
def col2im_overlapping_float64() -> Property:
    return col2im_values([_cols((2, 3, 6, 5), (3, 3), 1, 1, seed=301, dtype=F64)])


@hidden_test("col2im")
def col2im_strided() -> Property:
    return col2im_values([_cols((2, 2, 6, 7), (2, 3), 1, 0, seed=302), _cols((2, 2, 9, 8), (3, 3), 2, 1, seed=303)])


@hidden_test("col2im")
def col2im_cols_unchanged() -> Property:
    return col2im_keeps_input([_cols((1, 2, 5, 5), (3, 3), 1, 1, seed=304)])


# ----------------------------------------------------------------------------- conv2d_forward


@hidden_test("conv2d_forward")
def forward_float32_same_padding() -> Property:
    x, w, b, *_ = conv_case(4, 3, 9, 7, 5, 3, 3, 1, 1, seed=401)
    return conv_forward_values("conv2d_forward", x, w, b, 1, 1)


@hidden_test("conv2d_forward")
def forward_float64_strided_non_square() -> Property:
    x, w, b, *_ = conv_case(2, 2, 11, 10, 3, 3, 5, 2, 2, seed=405, dtype=F64)
    return conv_forward_values("conv2d_forward", x, w, b, 2, 2)


@hidden_test("conv2d_forward")
def forward_one_by_one_kernel() -> Property:
    x, w, b, *_ = conv_case(3, 4, 5, 6, 2, 1, 1, 1, 0, seed=409)
    return conv_forward_values("conv2d_forward", x, w, b, 1, 0)


@hidden_test("conv2d_forward", points=2.0)
def forward_vectorized() -> Property:
    return vectorized("conv2d_forward", seed=413)


@hidden_test("conv2d_forward")
def forward_inputs_unchanged() -> Property:
    x, w, b, *_ = conv_case(2, 3, 6, 6, 4, 3, 3, 2, 1, seed=417)
    return conv_forward_keeps_inputs("conv2d_forward", x, w, b, 2, 1)


@hidden_test("conv2d_forward")
def forward_rejects_bad_shapes() -> Property:
    return conv_forward_bad_input("conv2d_forward")


# ----------------------------------------------------------------------------- conv2d_backward


@hidden_test("conv2d_backward")
def backward_overlapping_float64() -> Property:
    return conv_backward_values([conv_case(3, 2, 6, 7, 4, 3, 3, 1, 1, seed=501, dtype=F64)])


@hidden_test("conv2d_backward")
def backward_strided() -> Property:
    return conv_backward_values([conv_case(2, 3, 7, 6, 5, 3, 3, 1, 0, seed=505),
                                 conv_case(2, 3, 9, 8, 5, 3, 3, 2, 1, seed=509)])


@hidden_test("conv2d_backward")
def backward_non_square_stride_three() -> Property:
    return conv_backward_values([conv_case(2, 2, 10, 9, 3, 2, 4, 1, 1, seed=513),
                                 conv_case(2, 2, 10, 9, 3, 2, 4, 3, 2, seed=517)])


@hidden_test("conv2d_backward", points=2.0)
def backward_vectorized() -> Property:
    return vectorized("conv2d_backward", seed=521)


@hidden_test("conv2d_backward")
def backward_inputs_unchanged() -> Property:
    return conv_backward_keeps_inputs([conv_case(2, 2, 5, 6, 3, 3, 3, 1, 1, seed=525)])


# ----------------------------------------------------------------------------- max pooling


@hidden_test("maxpool2d_forward")
def pool_forward_two_by_two() -> Property:
    return maxpool_forward_values(distinct_pool_input(2, 3, 8, 9, seed=601), 2, 2)


@hidden_test("maxpool2d_forward")
def pool_forward_overlapping_float64() -> Property:
    return maxpool_forward_values(distinct_pool_input(2, 2, 9, 8, seed=602, dtype=F64), 3, 2)


@hidden_test("maxpool2d_forward")
def pool_forward_stride_one() -> Property:
    return maxpool_forward_values(_randn(1, 3, 6, 7, seed=603), 3, 1)


@hidden_test("maxpool2d_backward")
def pool_backward_two_by_two() -> Property:
    return maxpool_backward_values(distinct_pool_input(2, 3, 8, 8, seed=611), 2, 2, _randn(2, 3, 4, 4, seed=612))


@hidden_test("maxpool2d_backward")
def pool_backward_overlapping() -> Property:
    return maxpool_backward_values(distinct_pool_input(2, 2, 9, 9, seed=613, dtype=F64), 3, 2,
                                   _randn(2, 2, 4, 4, seed=614, dtype=F64))


@hidden_test("maxpool2d_backward")
def pool_backward_tied_two_by_two() -> Property:
    return maxpool_backward_ties(tied_pool_input(3, 2, 8, 8, seed=615), 2, _randn(3, 2, 4, 4, seed=616) + 3.0)


@hidden_test("maxpool2d_backward")
def pool_backward_ties_three_with_remainder() -> Property:
    return maxpool_backward_ties(tied_pool_input(2, 2, 8, 7, seed=617, dtype=F64), 3,
                                 _randn(2, 2, 2, 2, seed=618, dtype=F64) - 3.0)


@hidden_test("maxpool2d_backward")
def pool_inputs_unchanged() -> Property:
    return maxpool_keeps_inputs(distinct_pool_input(2, 2, 6, 6, seed=619), 2, 2, _randn(2, 2, 3, 3, seed=620))


# ----------------------------------------------------------------------------- Conv2d


@hidden_test("Conv2d")
def layer_registers_weight_and_bias() -> Property:
    return conv_module_parameters(5, 6, 3)


@hidden_test("Conv2d")
def layer_output_matches_torch() -> Property:
    return conv_module_forward(2, 5, 5, 1, 2, _randn(3, 2, 8, 9, seed=701))


@hidden_test("Conv2d")
def layer_runs_a_custom_function() -> Property:
    return conv_module_uses_function(2, 3, 3, _randn(2, 2, 6, 5, seed=708))


@hidden_test("Conv2d")
def layer_gradients_float32() -> Property:
    return conv_module_gradients(3, 4, 3, 2, 1, _randn(2, 3, 8, 7, seed=702), _randn(2, 4, 4, 4, seed=703))


@hidden_test("Conv2d")
def layer_gradients_float64() -> Property:
    return conv_module_gradients(2, 3, 2, 1, 0, _randn(2, 2, 5, 6, seed=704, dtype=F64),
                                 _randn(2, 3, 4, 5, seed=705, dtype=F64))


@hidden_test("Conv2d")
def layer_passes_float64_gradcheck() -> Property:
    return conv_module_gradcheck(3, 2, 3, 1, 1, _randn(2, 3, 5, 4, seed=706, dtype=F64))


@hidden_test("Conv2d", points=2.0)
def layer_learns_in_a_small_cnn() -> Property:
    return conv_module_trains(seed=707)


# ----------------------------------------------------------------------------- the backward pass as convolutions


@hidden_test("conv2d_input_grad")
def input_grad_stride_one_float64() -> Property:
    return conv_input_grad_values([conv_case(2, 3, 7, 6, 4, 3, 3, 1, 1, seed=601, dtype=F64),
                                   conv_case(1, 4, 5, 5, 4, 3, 3, 1, 0, seed=605, dtype=F64)])


@hidden_test("conv2d_input_grad", points=2.0)
def input_grad_strided_with_leftover_rows() -> Property:
    return conv_input_grad_values([conv_case(2, 2, 6, 6, 3, 3, 3, 1, 1, seed=609),
                                   conv_case(2, 2, 10, 9, 3, 3, 3, 2, 0, seed=613),
                                   conv_case(3, 1, 11, 8, 2, 4, 3, 3, 1, seed=617)])


@hidden_test("conv2d_input_grad")
def input_grad_big_padding_one_by_one() -> Property:
    return conv_input_grad_values([conv_case(2, 3, 5, 4, 2, 1, 1, 1, 1, seed=621, dtype=F64)])


@hidden_test("conv2d_input_grad")
def input_grad_rejects_bad_input() -> Property:
    return conv_grad_bad_input("conv2d_input_grad")


@hidden_test("conv2d_weight_grad")
def weight_grad_stride_one_float64() -> Property:
    return conv_weight_grad_values([conv_case(3, 2, 7, 7, 4, 3, 3, 1, 1, seed=631, dtype=F64),
                                    conv_case(2, 3, 6, 5, 3, 3, 2, 1, 0, seed=635, dtype=F64)])


@hidden_test("conv2d_weight_grad", points=2.0)
def weight_grad_strided_with_leftover_rows() -> Property:
    return conv_weight_grad_values([conv_case(2, 2, 6, 6, 3, 3, 3, 1, 0, seed=639),
                                    conv_case(2, 3, 9, 10, 2, 3, 3, 2, 1, seed=643),
                                    conv_case(2, 1, 12, 7, 3, 4, 2, 3, 2, seed=647)])


@hidden_test("conv2d_weight_grad")
def weight_grad_big_padding_one_by_one() -> Property:
    return conv_weight_grad_values([conv_case(2, 3, 4, 5, 2, 1, 1, 1, 0, seed=651, dtype=F64),
                                    conv_case(2, 3, 4, 5, 2, 1, 1, 1, 2, seed=655, dtype=F64)])


@hidden_test("conv2d_weight_grad")
def weight_grad_rejects_bad_input() -> Property:
    return conv_grad_bad_input("conv2d_weight_grad")


# ----------------------------------------------------------------------------- receptive fields and costs


@hidden_test("receptive_field", points=2.0)
def receptive_field_stacks() -> Property:
    return receptive_field_values([[(7, 2), (3, 2), (3, 1), (3, 1)], [(2, 2), (2, 2), (2, 2)], [(1, 1)],
                                   [(3, 2), (3, 2), (3, 2), (3, 2)], [(5, 1), (3, 3), (2, 1)], [(11, 4), (3, 2)]],
                                  show_inputs=False)


@hidden_test("receptive_field")
def receptive_field_dilated() -> Property:
    return receptive_field_values([[(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)], [(3, 2, 2), (3, 1, 3)],
                                   [(2, 1, 5)]], show_inputs=False)


@hidden_test("receptive_field")
def receptive_field_rejects_bad_layers() -> Property:
    return receptive_field_bad_input()


@hidden_test("conv2d_num_parameters")
def num_parameters_layers() -> Property:
    return num_parameters_values([(64, 128, 3, True), (3, 96, 11, True), (256, 512, 1, False), (2, 5, (3, 7), True),
                                  (7, 3, (1, 4), False)], show_inputs=False)


@hidden_test("conv2d_flops", points=2.0)
def flops_layers() -> Property:
    return flops_values([(64, 128, 3, 56, 1, 1), (3, 96, 11, 227, 4, 0), (256, 512, 1, 14, 2, 0),
                         (2, 5, (3, 7), (20, 31), (2, 1), (1, 3)), (32, 32, 5, (17, 9), 3, 2)], show_inputs=False)
