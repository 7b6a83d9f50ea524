"""Components of the attention scenes (qkv, attention-pattern, softmax, masking, values,
multi-head). Like scenes/components.py, every value drawn carries a `Shown` with its source.

- `NumberGrid`: an attention grid that shows numbers (scores, weights), keys down the left,
  queries across the top, one cell per (query, key), shaded by sign and size; long prompts
  are windowed.
- `SignedBars`: vertical bars for a short list of signed numbers (scores, weights, norms).
- `pattern_image`: a whole attention pattern as one image (any prompt length, cheap).
- `matrix_view`: an elided weight matrix (W_Q, W_K, W_V, W_O) from facts.attention.
- `vector_with_length`: a VectorColumn with its real length for vectors that are not d_model
  long (VectorColumn's own label assumes d_model).
- `row_of_vectors`: one elided column per token under its token box, windowed.
- `AttentionScene`: the base of the six scenes (story head, query, keys, windows).

Other scenes are welcome to these (prediction's bars could use SignedBars, kv-cache's grids
NumberGrid / pattern_image).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from manim import DOWN, LEFT, RIGHT, UP, ImageMobject, ManimColor, Rectangle, Text, VGroup, config

from facts.attention import kv_head, qk_hook

from .base import TransformerScene
from .components import (TokenStrip, VectorColumn, WeightMatrix, count, fit_width, label, number, percent, token_label, unsigned,
                         token_window)
from .theme import LABEL, SMALL, Theme


class NumberGrid(VGroup):
    """values[q, k] for the shown positions: rows are keys, columns are queries.

    positions: token positions (None = an elided run, drawn as "⋯"/"⋮").
    index(q, k): the provenance index of a cell's value in `source`.
    masked: what a cell whose key comes after its query shows: "outline" (empty, outlined),
    or "number" (its value, e.g. −inf or 0, in an outlined cell).
    `.cells[(q, k)]` is (background square, number), `.col_x[q]` / `.row_y[k]` the centres.
    """

    def __init__(self, values, positions: Sequence[int | None], pieces: Sequence[str], theme: Theme, source: str,
                 index: Callable[[int, int], tuple], masked: str = "outline", decimals: int = 2,
                 scale: float | None = None, cell_w: float = 1.0, cell_h: float = 0.5, size: float = SMALL,
                 labels: bool = True, decimals_masked: int | None = None, unsigned_values: bool = False):
        super().__init__()
        values = np.asarray(values, dtype=np.float64)
        finite = values[np.isfinite(values)]
        shown = [p for p in positions if p is not None]
        if scale is None:
            sub = np.array([values[q, k] for q in shown for k in shown if k <= q and np.isfinite(values[q, k])])
            scale = float(np.abs(sub).max()) if sub.size else (float(np.abs(finite).max()) if finite.size else 1.0)
        scale = scale or 1.0
        self.cells: dict[tuple[int, int], VGroup] = {}
        self.col_x: dict[int, float] = {}
        self.row_y: dict[int, float] = {}
        self.outlines, self.squares, self.numbers, self.dots = VGroup(), VGroup(), VGroup(), VGroup()
        for c, q in enumerate(positions):
            x = c * cell_w
            if q is not None:
                self.col_x[q] = x
            for r, k in enumerate(positions):
                y = -r * cell_h
                if k is not None:
                    self.row_y[k] = y
                center = np.array([x, y, 0])
                if q is None or k is None:
                    if (q is None) != (k is None):
                        dots = label("⋯" if q is None else "⋮", theme, size * 0.8, color=theme.faint)
                        self.dots.add(dots.move_to(center))
                    continue
                v = float(values[q, k])
                future = k > q
                if future:
                    self.outlines.add(Rectangle(width=cell_w * 0.92, height=cell_h * 0.86, stroke_color=theme.dim,
                                                stroke_width=1.2).move_to(center))
                    if masked == "outline":
                        continue
                d = decimals_masked if (future and decimals_masked is not None) else decimals
                if unsigned_values and not future and math.isfinite(v) and v >= 0:  # weights: no sign (never negative)
                    mob = unsigned(v, theme, source, index(q, k), size=size, decimals=d)
                else:
                    mob = number(v, theme, source, index(q, k), scale=scale, decimals=d, size=size)
                mob.move_to(center)
                mob.set_color(theme.text if math.isfinite(v) else theme.dim)
                frac = min(1.0, abs(v) / scale) if math.isfinite(v) else 0.0
                # the cell's shade carries sign and size (blue +, red -), the number stays readable on top
                sq = Rectangle(width=cell_w * 0.92, height=cell_h * 0.86, stroke_width=0,
                               fill_color=theme.number_color(v, scale), fill_opacity=0.55 * frac)
                sq.move_to(center)
                self.squares.add(sq)
                self.numbers.add(mob)
                self.cells[(q, k)] = VGroup(sq, mob)
        n = len(positions)
        self.frame = Rectangle(width=n * cell_w, height=n * cell_h, stroke_color=theme.dim, stroke_width=1.5)
        self.frame.move_to([(n - 1) * cell_w / 2, -(n - 1) * cell_h / 2, 0])
        # invisible column and row bands: they move and scale with the grid, so cells can be found later
        self.columns = {q: Rectangle(width=cell_w, height=n * cell_h, stroke_opacity=0).move_to(
            [c * cell_w, self.frame.get_y(), 0]) for c, q in enumerate(positions) if q is not None}
        self.rows = {k: Rectangle(width=n * cell_w, height=cell_h, stroke_opacity=0).move_to(
            [self.frame.get_x(), -r * cell_h, 0]) for r, k in enumerate(positions) if k is not None}
        self.add(self.frame, *self.columns.values(), *self.rows.values(), self.outlines, self.dots, self.squares,
                 self.numbers)
        self.key_labels, self.query_labels = VGroup(), VGroup()
        self.key_label_of: dict[int, Text] = {}
        self.query_label_of: dict[int, Text] = {}
        if labels:
            for i, pos in enumerate(positions):
                for where in ("key", "query"):
                    if pos is None:
                        lab = label("…", theme, size, color=theme.dim)
                    else:
                        lab = token_label(pieces[pos], theme, size, color=theme.token_color(pos), index=(pos,))
                    if where == "key":
                        fit_width(lab, 1.9)
                        lab.next_to([self.frame.get_left()[0], -i * cell_h, 0], LEFT, buff=0.15)
                        self.key_labels.add(lab)
                        if pos is not None:
                            self.key_label_of[pos] = lab
                    else:  # a label wider than its column reads bottom to top; a narrow one ("a", "<") stays upright
                        if lab.width > cell_w * 0.9:
                            lab.rotate(math.pi / 2)
                            fit_height(lab, 1.5)
                        fit_width(lab, cell_w * 0.9)
                        lab.next_to([i * cell_w, self.frame.get_top()[1], 0], UP, buff=0.12)
                        self.query_labels.add(lab)
                        if pos is not None:
                            self.query_label_of[pos] = lab
            self.add(self.key_labels, self.query_labels)

    def cell_center(self, q: int, k: int) -> np.ndarray:
        return np.array([self.columns[q].get_x(), self.rows[k].get_y(), 0])

    def cell_box(self, q: int, k: int, color, stroke: float = 3) -> Rectangle:
        box = Rectangle(width=self.columns[q].width * 0.96, height=self.rows[k].height * 0.92, stroke_color=color,
                        stroke_width=stroke)
        return box.move_to(self.cell_center(q, k))

    def column_box(self, q: int, color, stroke: float = 3) -> Rectangle:
        col = self.columns[q]
        return Rectangle(width=col.width * 0.98, height=col.height + 0.08, stroke_color=color,
                         stroke_width=stroke).move_to(col)

    def retarget(self, other: "NumberGrid") -> list:
        """Animations that turn this grid's numbers into `other`'s (same positions), cell by cell."""
        from manim import FadeIn, FadeOut, ReplacementTransform

        anims = []
        for key, cell in self.cells.items():
            if key in other.cells:
                anims.append(ReplacementTransform(cell, other.cells[key]))
            else:
                anims.append(FadeOut(cell))
        anims += [FadeIn(c) for key, c in other.cells.items() if key not in self.cells]
        return anims


def fit_height(mob, height: float):
    """Shrink (never grow) `mob` to at most `height`."""
    if mob.height > height:
        mob.scale_to_fit_height(height)
    return mob


# --------------------------------------------------------------------------- bars

class SignedBars(VGroup):
    """Vertical bars for a short list of numbers, one per labelled slot; bars rise for positive
    values and hang for negative ones from a common baseline.

    items: (label mobject or None, value, Shown source, index) per bar. `.bars[i]`,
    `.values[i]` (the number text), `.labels[i]`.
    """

    def __init__(self, items: Sequence[tuple], theme: Theme, height: float = 2.2, slot: float = 1.0,
                 color=None, decimals: int = 2, size: float = SMALL, top: float | None = None,
                 kind: str = "number"):
        super().__init__()
        vals = [float(v) for _, v, _, _ in items]
        top = top or max([abs(v) for v in vals if math.isfinite(v)] + [1e-9])
        self.bars, self.values, self.labels = VGroup(), VGroup(), VGroup()
        self.baseline = Rectangle(width=slot * len(items), height=0.001, stroke_color=theme.dim, stroke_width=1.5)
        self.baseline.move_to([(len(items) - 1) * slot / 2, 0, 0])
        for i, (lab, v, source, index) in enumerate(items):
            x = i * slot
            h = height * abs(v) / top if math.isfinite(v) else 0.0
            fill = color or (theme.positive if v >= 0 else theme.negative)
            bar = Rectangle(width=slot * 0.62, height=max(h, 0.015), stroke_width=0, fill_color=fill, fill_opacity=0.85)
            bar.move_to([x, 0, 0], aligned_edge=DOWN if v >= 0 else UP)
            if kind == "int":
                text = count(int(v), theme, source, size=size, color=theme.text, index=tuple(index))
            elif kind == "percent":  # probabilities: unsigned percentages
                text = percent(v, theme, source, tuple(index), size=size)
            elif kind == "decimals":  # never negative (e^x): no sign
                text = unsigned(v, theme, source, tuple(index), size=size, decimals=decimals)
            else:
                text = number(v, theme, source, tuple(index), scale=top, decimals=decimals, size=size)
                text.set_color(theme.text)
            fit_width(text, slot * 0.98)
            text.next_to(bar, UP if v >= 0 else DOWN, buff=0.08)
            self.bars.add(bar)
            self.values.add(text)
            if lab is not None:
                fit_width(lab, slot * 0.95)
                lab.move_to([x, 0, 0]).shift(DOWN * (0.3 + (h if v < 0 else 0) + (0.25 if v < 0 else 0)))
                self.labels.add(lab)
        self.add(self.baseline, self.bars, self.values, self.labels)


# --------------------------------------------------------------------------- images

def pattern_image(pattern, theme: Theme, side: float, color=None, min_pixels: int = 240) -> ImageMobject:
    """A [q_pos, k_pos] attention pattern as one image: rows are keys, columns are queries,
    colour strength = weight; cells where the key comes after the query are left faint."""
    p = np.asarray(pattern, dtype=np.float64)
    n = p.shape[0]
    cell = max(1, min_pixels // n)
    bg = np.array(ManimColor(theme.background).to_rgb()) * 255
    fg = np.array(ManimColor(color or theme.accent).to_rgb()) * 255
    faint = np.array(ManimColor(theme.faint).to_rgb()) * 255
    w = np.clip(p.T, 0, 1)[..., None] ** 0.5  # rows: keys, columns: queries; sqrt so small weights still show
    img = bg * (1 - w) + fg * w
    future = np.triu(np.ones((n, n), bool), 1).T  # key after query
    img[future] = 0.5 * faint + 0.5 * bg
    img = np.repeat(np.repeat(img, cell, 0), cell, 1)
    if cell >= 6:  # grid lines while cells are big enough to need them
        lines = np.arange(img.shape[0]) % cell == 0
        img[lines, :] = faint
        img[:, lines] = faint
    img = np.dstack([img, np.full(img.shape[:2], 255)]).astype(np.uint8)
    mob = ImageMobject(img, scale_to_resolution=img.shape[0])
    mob.set_resampling_algorithm(0)
    mob.height = side
    return mob


# --------------------------------------------------------------------------- matrices and vectors

def matrix_view(name: str, corners: dict, theme: Theme, source: str, prefix: tuple, size: float = SMALL,
                color=None) -> WeightMatrix:
    """An elided weight matrix from facts.attention.weight_corners: first rows/columns,
    ⋮/⋯, the last; its real shape below. Entry (r, c) has index prefix + (r, c) in `source`."""
    rows_idx, cols_idx = corners["rows"], corners["cols"]
    cols = cols_idx[:-1] + [None] + cols_idx[-1:]
    rows = []
    for k, r in enumerate(rows_idx):
        if k == len(rows_idx) - 1:
            rows.append(None)
        rows.append((r, corners["values"][k], source, tuple(prefix) + (r,)))
    matrix = WeightMatrix(name, tuple(corners["shape"]), rows, cols, theme, size=size, scale=0.25)
    if color is not None:
        matrix.title.set_color(color)
        matrix.left.set_color(color)
        matrix.right.set_color(color)
    return matrix


def vector_with_length(values, theme: Theme, source: str, index_prefix: tuple, length_source: str,
                       head: int = 3, tail: int = 2, size: float = SMALL, color=None, scale: float | None = None,
                       caption: str | None = None) -> VGroup:
    """A VectorColumn whose length label ("64 numbers") comes from `length_source` (e.g.
    config.d_head), with an optional caption above it. `.column` is the VectorColumn."""
    column = VectorColumn(values, theme, source, index_prefix, head=head, tail=tail, size=size, color=color,
                          show_length=False, scale=scale)
    n = len(np.asarray(values).reshape(-1))
    length = VGroup(count(n, theme, length_source, size=size * 0.85, color=theme.dim),
                    label("numbers", theme, size * 0.85, color=theme.dim)).arrange(RIGHT, buff=0.08)
    length.next_to(column, DOWN, buff=0.12)
    group = VGroup(column, length)
    if caption:
        cap = label(caption, theme, size, color=color or theme.text)
        fit_width(cap, max(column.width + 0.8, 1.6))
        cap.next_to(column, UP, buff=0.15)
        group.add(cap)
        group.caption = cap
    group.column = column
    group.length = length
    return group


def row_of_vectors(trace, positions: Sequence[int | None], tensor: str, index: Callable[[int], tuple], theme: Theme,
                   color, width: float, head: int = 2, tail: int = 1, size: float = SMALL * 0.85,
                   scale: float | None = None, boxes: bool = True) -> VGroup:
    """For each shown position, its token box (if `boxes`) with an elided column of `tensor`
    below it (trace[tensor][index(pos)]); "…" for elided runs. `.columns[pos]`, `.boxes[pos]`."""
    strip = TokenStrip(trace.pieces, trace.tokens, theme, positions=list(positions), size=size)
    group = VGroup()
    group.columns, group.boxes = {}, {}
    cols = VGroup()
    for k, pos in enumerate(positions):
        if pos is None:
            col = label("…", theme, LABEL, color=theme.dim)
        else:
            values = trace[tensor][index(pos)].numpy()
            col = VectorColumn(values, theme, tensor, index(pos), head=head, tail=tail, size=size, color=color,
                               show_length=False, scale=scale)
            group.columns[pos] = col
        col.move_to([k * width, 0, 0])
        cols.add(col)
    top = max(c.get_top()[1] for c in cols)
    for k, pos in enumerate(positions):
        if pos is not None:
            box = strip.boxes[pos]
            fit_width(box, width - 0.08)
            box.move_to([k * width, top + 0.4, 0])
            group.boxes[pos] = box
    strip.row.remove(*[m for m in strip.row if m not in strip.boxes.values()])
    if boxes:
        group.add(strip)
    group.add(cols)
    group.strip, group.cols = strip, cols
    return group


# --------------------------------------------------------------------------- the attention scenes' base

class AttentionScene(TransformerScene):
    """What every attention scene reads: the story head (layer, head, its key/value head),
    the story query token and the keys it attends to, and windows of positions."""

    @property
    def layer(self) -> int:
        return self.data.choice.layer

    @property
    def head(self) -> int:
        return self.data.choice.head

    @property
    def kv(self) -> int:
        return kv_head(self.trace.config, self.head)

    @property
    def query(self) -> int:
        return self.data.choice.query

    @property
    def story_keys(self) -> list[int]:
        return list(self.data.choice.keys)

    def hook(self, name: str) -> str:
        """The trace name of this layer's attention tensor, e.g. hook("hook_pattern")."""
        return f"blocks.{self.layer}.attn.{name}"

    def qk(self, which: str) -> str:
        """The queries ("q") or keys ("k") that q . k uses: after RoPE on rotary models."""
        return qk_hook(self.trace.config, self.layer, which)

    def grid_positions(self, limit: int) -> list[int | None]:
        return token_window([1.0] * len(self.trace.tokens), [self.query, *self.story_keys], limit, 0.0, keep_last=False)

    def place_grid(self, grid: NumberGrid) -> NumberGrid:
        """A grid at the left of the stage, under the header, leaving room for its sums below."""
        bottom = -config.frame_height / 2 + 1.0
        fit_height(grid, self.stage_top() - 0.1 - bottom)
        fit_width(grid, config.frame_width - 4.4)
        grid.to_edge(LEFT, buff=0.3).align_to([0, self.stage_top() - 0.1, 0], UP)
        return grid

    def column_sums(self, grid: NumberGrid, size: float) -> VGroup:
        """Under each shown query's column, the sum of its weights over every key (shown or not)."""
        pattern = self.trace[self.hook("hook_pattern")][self.head]
        sums = VGroup()
        for p, column in grid.columns.items():
            s = unsigned(float(pattern[p].sum()), self.theme, "attn.colsum", (self.layer, self.head, p), size=size)
            sums.add(s.move_to([column.get_x(), grid.frame.get_bottom()[1] - 0.28, 0]))
        name = label("sum", self.theme, size, color=self.theme.dim).next_to(sums, LEFT, buff=0.2)
        keys = grid.key_labels
        if len(keys.submobjects) and keys.get_right()[0] < sums.get_left()[0] - 0.1:
            name.align_to(keys, RIGHT)  # under the key labels' column, when there is one to the left
        if name.get_left()[0] < -config.frame_width / 2 + 0.2:  # a grid at the frame's edge: after the sums
            name.next_to(sums, RIGHT, buff=0.2)
        return VGroup(name, sums)
