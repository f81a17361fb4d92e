"""Hidden tests of ``exercises.data`` (chapter 1): the shared properties, on inputs learners never see."""

from __future__ import annotations

import torch

from exercises.checks import Property
from exercises.checks.data import (
    channel_stats_keeps_input,
    channel_stats_values,
    minibatch_indices_cover,
    minibatch_indices_shuffled,
    normalize_keeps_inputs,
    normalize_values,
    one_hot_keeps_input,
    one_hot_values,
    random_crop_identity,
    random_crop_keeps_input,
    random_crop_offsets,
    random_crop_reproducible,
    random_crop_vectorized,
    random_crop_windows,
    random_hflip_images,
    random_hflip_keeps_input,
    random_hflip_rate,
    random_hflip_reproducible,
    random_hflip_vectorized,
    stratified_split_counts,
    stratified_split_partition,
    stratified_split_reproducible,
)
from grading.suite import hidden_test


def _pixels(n: int, c: int, h: int, w: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(1000 + seed)
    x = torch.rand(n, c, h, w, generator=g, dtype=torch.float64) * 2 - 0.7
    x[x == 0] = 0.25
    return x.to(dtype)


def _classes(sizes: list[int], seed: int, ids: list[int] | None = None) -> torch.Tensor:
    ids = ids or list(range(len(sizes)))
    y = torch.cat([torch.full((n,), k, dtype=torch.int64) for k, n in zip(ids, sizes, strict=True)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(2000 + seed))]


# ----------------------------------------------------------------------------- stratified_split

@hidden_test("stratified_split")
def split_is_a_sorted_partition_of_ten_uneven_classes() -> Property:
    return stratified_split_partition(_classes([120, 80, 61, 40, 33, 20, 9, 5, 2, 1], seed=1), 0.15, seed=77)


@hidden_test("stratified_split")
def split_counts_per_class_at_fifteen_percent() -> Property:
    return stratified_split_counts(_classes([120, 80, 61, 40, 33, 20, 9, 5, 2, 1], seed=2), 0.15, seed=78)


@hidden_test("stratified_split")
def split_counts_round_halves_up() -> Property:
    return stratified_split_counts(_classes([5, 9, 13, 3, 24], seed=3), 0.5, seed=79)  # 2.5, 4.5, 6.5, 1.5, 12


@hidden_test("stratified_split")
def split_counts_with_sparse_class_ids() -> Property:
    return stratified_split_counts(_classes([40, 16, 25], seed=4, ids=[3, 7, 9]), 0.125, seed=80)


@hidden_test("stratified_split")
def split_with_no_validation_share() -> Property:
    return stratified_split_counts(_classes([7, 3, 11], seed=5), 0.0, seed=81)


@hidden_test("stratified_split")
def split_follows_its_seed() -> Property:
    return stratified_split_reproducible(_classes([60, 45, 30, 15], seed=6), 0.3, seed=123, other_seed=124)


# ----------------------------------------------------------------------------- channel_stats

def _shifted(x: torch.Tensor, shifts: list[float], scales: list[float]) -> torch.Tensor:
    c = len(shifts)
    return (x.double() * torch.tensor(scales).view(1, c, 1, 1) + torch.tensor(shifts).view(1, c, 1, 1)).to(x.dtype)


@hidden_test("channel_stats")
def stats_of_two_channels_float32() -> Property:
    return channel_stats_values(_shifted(_pixels(5, 2, 7, 3, seed=11), [0.3, -2.0], [1.5, 0.2]))


@hidden_test("channel_stats")
def stats_of_four_channels_float64() -> Property:
    return channel_stats_values(_shifted(_pixels(3, 4, 2, 9, seed=12, dtype=torch.float64), [1, 2, 3, 4], [4, 3, 2, 1]))


@hidden_test("channel_stats")
def stats_stay_accurate_far_from_zero() -> Property:
    x = _shifted(_pixels(50, 3, 80, 90, seed=13), [-3000.0, 1500.0, 800.0], [3.0, 1.0, 0.5])
    return channel_stats_values(x)


@hidden_test("channel_stats")
def stats_stay_accurate_far_from_zero_float64() -> Property:
    return channel_stats_values(_shifted(_pixels(20, 3, 50, 50, seed=14, dtype=torch.float64), [5e3, -4e3, 1e3],
                                         [2.0, 1.0, 0.5]))


@hidden_test("channel_stats")
def stats_leave_images_alone() -> Property:
    return channel_stats_keeps_input(_pixels(6, 3, 4, 5, seed=15))


# ----------------------------------------------------------------------------- normalize

@hidden_test("normalize")
def normalize_rgb_with_width_three() -> Property:
    return normalize_values(_pixels(3, 3, 4, 3, seed=21), torch.tensor([0.49, 0.48, 0.45]),
                            torch.tensor([0.25, 0.24, 0.26]))


@hidden_test("normalize")
def normalize_float64_from_lists() -> Property:
    return normalize_values(_pixels(2, 2, 5, 6, seed=22, dtype=torch.float64), [0.3, -1.0], [0.5, 4.0])


@hidden_test("normalize")
def normalize_one_channel() -> Property:
    return normalize_values(_pixels(7, 1, 3, 8, seed=23), torch.tensor([0.2860]), torch.tensor([0.3530]))


@hidden_test("normalize")
def normalize_leaves_arguments_alone() -> Property:
    return normalize_keeps_inputs(_pixels(3, 2, 4, 4, seed=24), torch.tensor([0.1, 0.2]), torch.tensor([0.3, 0.4]))


# ----------------------------------------------------------------------------- random_crop

@hidden_test("random_crop")
def crop_windows_cifar_sized() -> Property:
    return random_crop_windows(_pixels(24, 3, 32, 32, seed=31), 4, seed=301)


@hidden_test("random_crop")
def crop_windows_float64_rectangular() -> Property:
    return random_crop_windows(_pixels(12, 2, 9, 5, seed=32, dtype=torch.float64), 3, seed=302)


@hidden_test("random_crop")
def crop_reaches_every_offset_padding_three() -> Property:
    return random_crop_offsets(_pixels(2000, 1, 5, 6, seed=33), 3, seed=303)


@hidden_test("random_crop")
def crop_reaches_every_offset_padding_one() -> Property:
    return random_crop_offsets(_pixels(600, 2, 3, 3, seed=34), 1, seed=304)


@hidden_test("random_crop")
def crop_without_padding() -> Property:
    return random_crop_identity(_pixels(5, 3, 6, 6, seed=35, dtype=torch.float64), seed=305)


@hidden_test("random_crop")
def crop_follows_its_generator() -> Property:
    return random_crop_reproducible(_pixels(40, 3, 8, 8, seed=36), 4, seed=306, other_seed=307)


@hidden_test("random_crop")
def crop_leaves_images_alone() -> Property:
    return random_crop_keeps_input(_pixels(8, 3, 5, 5, seed=37), 2, seed=308)


@hidden_test("random_crop")
def crop_has_no_loop_over_images() -> Property:
    return random_crop_vectorized(_pixels(48, 3, 6, 6, seed=38), _pixels(448, 3, 6, 6, seed=39), 2, seed=309)


# ----------------------------------------------------------------------------- random_hflip

@hidden_test("random_hflip")
def hflip_mirrors_the_width() -> Property:
    return random_hflip_images(_pixels(30, 3, 6, 4, seed=41), 0.5, seed=401)


@hidden_test("random_hflip")
def hflip_always_float64() -> Property:
    return random_hflip_images(_pixels(9, 2, 3, 7, seed=42, dtype=torch.float64), 1.0, seed=402)


@hidden_test("random_hflip")
def hflip_never() -> Property:
    return random_hflip_images(_pixels(9, 1, 4, 4, seed=43), 0.0, seed=403)


@hidden_test("random_hflip")
def hflip_rate_one_half() -> Property:
    return random_hflip_rate(_pixels(3000, 1, 2, 2, seed=44), 0.5, seed=404)


@hidden_test("random_hflip")
def hflip_rate_one_tenth() -> Property:
    return random_hflip_rate(_pixels(4000, 1, 1, 3, seed=45), 0.1, seed=405)


@hidden_test("random_hflip")
def hflip_follows_its_generator() -> Property:
    return random_hflip_reproducible(_pixels(80, 3, 2, 5, seed=46), 0.5, seed=406, other_seed=407)


@hidden_test("random_hflip")
def hflip_leaves_images_alone() -> Property:
    return random_hflip_keeps_input(_pixels(16, 3, 3, 4, seed=47), 0.7, seed=408)


@hidden_test("random_hflip")
def hflip_has_no_loop_over_images() -> Property:
    return random_hflip_vectorized(_pixels(48, 3, 4, 6, seed=48), _pixels(448, 3, 4, 6, seed=49), 0.5, seed=409)


# ----------------------------------------------------------------------------- one_hot

@hidden_test("one_hot")
def one_hot_of_ten_classes() -> Property:
    return one_hot_values(_classes([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], seed=51), 10)


@hidden_test("one_hot")
def one_hot_with_unused_classes() -> Property:
    return one_hot_values(torch.tensor([1, 4, 4, 0, 2]), 8)


@hidden_test("one_hot")
def one_hot_leaves_labels_alone() -> Property:
    return one_hot_keeps_input(torch.tensor([3, 0, 2, 1, 3]), 4)


# ----------------------------------------------------------------------------- minibatch_indices

@hidden_test("minibatch_indices")
def batches_in_order_with_a_short_tail() -> Property:
    return minibatch_indices_cover(1001, 50, False, seed=501)


@hidden_test("minibatch_indices")
def batches_in_order_exact_multiple() -> Property:
    return minibatch_indices_cover(96, 32, False, seed=502)


@hidden_test("minibatch_indices")
def batches_larger_than_the_dataset() -> Property:
    return minibatch_indices_cover(7, 10, True, seed=503)


@hidden_test("minibatch_indices")
def batches_shuffled_cover_everything() -> Property:
    return minibatch_indices_cover(257, 32, True, seed=504)


@hidden_test("minibatch_indices")
def batches_size_that_chunk_gets_wrong() -> Property:
    return minibatch_indices_cover(26, 10, False, seed=505)


@hidden_test("minibatch_indices")
def batches_shuffle_with_the_generator() -> Property:
    return minibatch_indices_shuffled(2000, 128, seed=506, other_seed=507)
