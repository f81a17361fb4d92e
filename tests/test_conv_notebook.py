"""Chapter 3's notebook, as committed: its structure, its checks, and the sections the exercises point to."""

from __future__ import annotations

import re

import nbformat

from grading import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "course" / "03_convolution.ipynb"


def _cells() -> list:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return [c for c in nb.cells if "colab-badge" not in c.metadata.get("tags", [])
            and "course-setup" not in c.metadata.get("tags", [])]


def test_starts_with_a_title_then_autoreload_and_imports() -> None:
    cells = _cells()
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# Chapter 3")
    assert cells[1].cell_type == "code" and cells[1].source.startswith("%load_ext autoreload\n%autoreload 2\n")


def test_runs_every_visible_check_of_the_chapter_in_order() -> None:
    source = "\n".join(c.source for c in _cells() if c.cell_type == "code")
    calls = re.findall(r'check\("(\w+)"\)', source)
    assert calls == ["conv_output_size", "conv_naive", "im2col", "conv_forward", "col2im", "conv_backward",
                     "conv_as_conv", "maxpool", "conv_module", "receptive_field", "conv_counting"]


def test_every_explained_in_section_is_a_heading() -> None:
    headings = {line.lstrip("#").strip() for c in _cells() if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("#")}
    solution = (PROJECT_ROOT / "solutions" / "conv.py").read_text(encoding="utf-8")
    sections = set(re.findall(r'Explained in course/03_convolution\.ipynb, section "([^"]+)"', solution))
    assert len(sections) == 10 and sections <= headings, sections - headings


def test_shows_a_real_image_trains_to_97_percent_and_times_the_ladder() -> None:
    source = "\n".join(c.source for c in _cells())
    for needed in ("load_embedded_mnist", "assert accuracy >= 0.97", "torch.autograd.gradcheck", "F.unfold",
                   "conv2d_forward_naive(x[:naive_n]", "F.conv2d(x, w, b, stride=S, padding=P)",
                   "FAST = fast_mode()", "64·7·7", "model[0].weight"):
        assert needed in source, needed
