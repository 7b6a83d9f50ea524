"""A plain 2-D plot without LaTeX: axes as lines, tick labels as Pango text, data as one
polyline (cheap to draw for hundreds of points) and optional dots.

Tick labels carry a `Shown` with source "axis" (they are scale marks, not data), so the
scene tests know every number on screen.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, DashedLine, Dot, ImageMobject, Line, ManimColor, Rectangle, RoundedRectangle,
                   VGroup, VMobject)

from .components import count, label
from .provenance import Shown
from .theme import LABEL, SMALL, Theme, fmt_int


def tick_text(value: float, decimals: int) -> str:
    return fmt_int(int(round(value))) if decimals == 0 else f"{value:.{decimals}f}"


class Plot(VGroup):
    """Axes from (x0, y0) to (x1, y1) drawn `width` x `height`, with tick labels and axis names.

    `point(x, y)` maps data to the frame; `polyline`, `dots` and `vline` return new mobjects
    (not added to the plot) in the plot's coordinates.
    """

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], theme: Theme,
                 width: float = 6.0, height: float = 3.5, x_ticks: Sequence[float] = (), y_ticks: Sequence[float] = (),
                 x_label: str = "", y_label: str = "", x_decimals: int = 0, y_decimals: int = 0, size: float = SMALL,
                 x_tick_text: Callable[[float], str] | None = None, y_tick_text: Callable[[float], str] | None = None):
        super().__init__()
        self.theme = theme
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.w, self.h = width, height
        origin = np.array([0.0, 0.0, 0.0])
        self.x_axis = Line(origin, origin + RIGHT * width, color=theme.dim, stroke_width=2)
        self.y_axis = Line(origin, origin + UP * height, color=theme.dim, stroke_width=2)
        self.add(self.x_axis, self.y_axis)
        self.tick_labels = VGroup()
        marks = [(self.point(x, self.y0), DOWN, x, x_tick_text(x) if x_tick_text else tick_text(x, x_decimals)) for x in x_ticks]
        marks += [(self.point(self.x0, y), LEFT, y, y_tick_text(y) if y_tick_text else tick_text(y, y_decimals)) for y in y_ticks]
        for p, side, value, text in marks:
            tick = Line(p, p + side * 0.08, color=theme.dim, stroke_width=2)
            lab = label(text, theme, size * 0.85, color=theme.dim, mono=True, shown=Shown(text, value, "axis", kind="text"))
            lab.next_to(tick, side, buff=0.06)
            self.add(tick)
            self.tick_labels.add(lab)
        self.add(self.tick_labels)
        self.x_name = self.y_name = None
        if x_label:
            self.x_name = label(x_label, theme, size, color=theme.dim)
            self.x_name.next_to(self.x_axis, DOWN, buff=0.1 + (0.3 if len(x_ticks) else 0))
            self.add(self.x_name)
        if y_label:
            self.y_name = label(y_label, theme, size, color=theme.dim)
            self.y_name.next_to(self.y_axis, UP, buff=0.15).align_to(self.y_axis, LEFT).shift(LEFT * 0.1)
            self.add(self.y_name)

    def point(self, x: float, y: float) -> np.ndarray:
        """Data (x, y) -> a point in the frame (follows the plot when it moves or scales)."""
        start = self.x_axis.get_start()
        sx = self.x_axis.get_length() / self.w  # the plot's current scale
        fx = (x - self.x0) / (self.x1 - self.x0) if self.x1 != self.x0 else 0.0
        fy = (y - self.y0) / (self.y1 - self.y0) if self.y1 != self.y0 else 0.0
        return start + np.array([fx * self.w * sx, fy * self.h * sx, 0.0])

    def polyline(self, xs: Sequence[float], ys: Sequence[float], color, stroke_width: float = 3) -> VMobject:
        line = VMobject(stroke_color=color, stroke_width=stroke_width)
        line.set_points_as_corners([self.point(x, y) for x, y in zip(xs, ys)])
        return line

    def dots(self, xs: Sequence[float], ys: Sequence[float], color, radius: float = 0.06) -> VGroup:
        return VGroup(*[Dot(self.point(x, y), radius=radius, color=color) for x, y in zip(xs, ys)])

    def vline(self, x: float, color, dashed: bool = True) -> Line:
        a, b = self.point(x, self.y0), self.point(x, self.y1)
        return DashedLine(a, b, color=color, stroke_width=2) if dashed else Line(a, b, color=color, stroke_width=2)

    def hline(self, y: float, color, dashed: bool = True) -> Line:
        a, b = self.point(self.x0, y), self.point(self.x1, y)
        return DashedLine(a, b, color=color, stroke_width=2) if dashed else Line(a, b, color=color, stroke_width=2)


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """About `count` round tick values from 0 to `top` (steps of 1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0]
    raw = top / count
    power = 10 ** np.floor(np.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10) if m * power >= raw), default=raw)
    return [float(k * step) for k in range(int(top // step) + 1)]


# --------------------------------------------------------------------------- matrices as boxes, values as images

class MatrixBox(VGroup):
    """A weight matrix too big to print: a box, its name, and its real shape ("576 × 1536")."""

    def __init__(self, name: str, shape: tuple[int, int], sources: tuple[str, str], theme: Theme, width: float = 1.6,
                 height: float = 1.2, color=None, size: float = SMALL):
        super().__init__()
        color = color or theme.dim
        self.box = RoundedRectangle(corner_radius=0.08, width=width, height=height, stroke_color=color,
                                    stroke_width=2.5, fill_color=color, fill_opacity=0.15)
        self.title = label(name, theme, LABEL, bold=True).move_to(self.box)
        if self.title.width > width - 0.15:
            self.title.scale_to_fit_width(width - 0.15)
        self.shape_label = VGroup(count(shape[0], theme, sources[0], size, color=theme.dim), label("×", theme, size, color=theme.dim),
                                  count(shape[1], theme, sources[1], size, color=theme.dim)).arrange(RIGHT, buff=0.08)
        self.shape_label.next_to(self.box, DOWN, buff=0.12)
        self.add(self.box, self.title, self.shape_label)


def values_image(values, theme: Theme, scale: float, columns: int, cell_px: int = 8, height: float = 2.0) -> ImageMobject:
    """Many numbers as one image of coloured cells (row by row, `columns` per row), coloured
    like shown numbers: blue positive, red negative, grey near zero."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    rows = -(-len(values) // columns)
    neutral = np.array(ManimColor(theme.neutral).to_rgb())
    pos, neg = np.array(ManimColor(theme.positive).to_rgb()), np.array(ManimColor(theme.negative).to_rgb())
    bg = np.array(ManimColor(theme.background).to_rgb())
    t = np.clip(np.abs(values) / scale, 0, 1)[:, None] if scale > 0 else np.zeros((len(values), 1))
    end = np.where(values[:, None] >= 0, pos, neg)
    rgb = neutral * (1 - t) + end * t  # grey at 0, full colour at |value| >= scale
    cells = np.tile(bg, (rows * columns, 1))
    cells[:len(values)] = rgb
    grid = cells.reshape(rows, columns, 3)
    img = np.kron(grid, np.ones((cell_px, cell_px, 1)))
    rgba = np.dstack([np.round(img * 255), np.full(img.shape[:2], 255)]).astype(np.uint8)
    mob = ImageMobject(rgba, scale_to_resolution=rgba.shape[0])
    mob.set_resampling_algorithm(0)
    mob.height = height
    return mob


class SignedRows(VGroup):
    """Horizontal bars for signed values, one row each (attention_parts.SignedBars is the vertical
    kind): a name, a bar from a centre line (right = positive,
    blue; left = negative, red), and the value. rows: (name, value, source, index)."""

    def __init__(self, rows, theme: Theme, half_width: float = 2.0, size: float = LABEL, decimals: int = 2):
        super().__init__()
        from .components import number

        top = max((abs(r[1]) for r in rows), default=1.0) or 1.0
        bar_h = size * 0.012 + 0.08
        self.lines = VGroup()
        names = [label(r[0], theme, size, mono=True) for r in rows]
        name_w = max((n.width for n in names), default=0)
        for k, ((name, value, source, index), name_mob) in enumerate(zip(rows, names)):
            y = -k * (bar_h + 0.25)
            length = max(0.02, half_width * abs(value) / top)
            color = theme.positive if value >= 0 else theme.negative
            bar = Rectangle(width=length, height=bar_h, stroke_width=0, fill_color=color, fill_opacity=0.85)
            bar.move_to([half_width + name_w + 0.3, y, 0], aligned_edge=LEFT if value >= 0 else RIGHT)
            name_mob.move_to([name_w, y, 0], aligned_edge=RIGHT)
            num = number(value, theme, source, index, scale=top, size=size * 0.9, decimals=decimals)
            num.move_to([2 * half_width + name_w + 0.45, y, 0], aligned_edge=LEFT)
            self.lines.add(VGroup(name_mob, bar, num))
        centre = Line([half_width + name_w + 0.3, 0.2, 0], [half_width + name_w + 0.3, -(len(rows) - 1) * (bar_h + 0.25) - 0.2, 0],
                      color=theme.dim, stroke_width=1.5)
        self.centre = centre
        self.add(centre, self.lines)


class CountBars(VGroup):
    """A few large whole numbers compared as bars: name, bar (length relative to the largest),
    the number (inside the bar, right-aligned, when it would run past the longest bar).
    rows: (name, value, source, colour); `.lines[k]` is (name, bar, number)."""

    def __init__(self, rows, theme: Theme, width: float = 6.0, bar_height: float = 0.45, spacing: float = 0.85,
                 size: float = LABEL):
        super().__init__()
        top = max((r[1] for r in rows), default=1) or 1
        self.lines = VGroup()
        for k, (name, value, source, color) in enumerate(rows):
            y = -k * spacing
            name_mob = label(name, theme, size).move_to([0, y, 0], aligned_edge=RIGHT)
            bar = Rectangle(width=max(0.04, width * value / top), height=bar_height, stroke_width=0, fill_color=color,
                            fill_opacity=0.85).move_to([0.3, y, 0], aligned_edge=LEFT)
            num = count(value, theme, source, size=size, color=theme.text).next_to(bar, RIGHT, buff=0.2)
            if num.get_right()[0] > 0.3 + width:
                num.move_to(bar.get_right() + LEFT * 0.15, aligned_edge=RIGHT).set_color(theme.background)
            self.lines.add(VGroup(name_mob, bar, num))
        self.add(self.lines)


# --------------------------------------------------------------------------- labels that keep clear

def box_of(mob, pad: float = 0.0) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of `mob`, grown by `pad`."""
    (x0, y0, _), (x1, y1, _) = mob.get_corner(DOWN + LEFT), mob.get_corner(UP + RIGHT)
    return x0 - pad, y0 - pad, x1 + pad, y1 + pad


def overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def line_points(points, step: float = 0.04) -> list[tuple[float, float]]:
    """Points every `step` along a polyline (a curve, a dashed line): what a label must not touch."""
    out = []
    for a, b in zip(points, points[1:]):
        a, b = np.asarray(a[:2], float), np.asarray(b[:2], float)
        n = max(1, int(np.linalg.norm(b - a) / step))
        out += [tuple(a + (b - a) * t / n) for t in range(n + 1)]
    return out


AROUND = ((0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1), (1, 0), (-1, 0))  # above first, then below ...


def place_clear(mob, anchors, region: tuple, boxes: list, points: list, sides=AROUND, pad: float = 0.06):
    """Move `mob` next to one of `anchors` where it stays inside `region` (x0, y0, x1, y1) and
    touches no box in `boxes` and no point in `points`: spots are tried nearest first (each
    anchor, each side in `sides`, then further out); if none is clear, the one with the least
    trouble wins. The placed box joins `boxes`."""
    w, h = mob.width, mob.height
    best = None
    for dist in (0.1, 0.25, 0.45, 0.7, 1.0, 1.4):
        for anchor in anchors:
            for dx, dy in sides:
                cx = anchor[0] + dx * (dist + w / 2)
                cy = anchor[1] + dy * (dist + h / 2)
                box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
                outside = max(0.0, region[0] - box[0]) + max(0.0, box[2] - region[2]) + \
                    max(0.0, region[1] - box[1]) + max(0.0, box[3] - region[3])
                padded = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
                hits = sum(overlaps(padded, b) for b in boxes) + \
                    sum(padded[0] <= x <= padded[2] and padded[1] <= y <= padded[3] for x, y in points)
                trouble = (10 * outside + hits, dist)
                if best is None or trouble < best[0]:
                    best = (trouble, (cx, cy))
                if trouble[0] == 0:
                    mob.move_to([cx, cy, 0])
                    boxes.append(box_of(mob))
                    return mob
    mob.move_to([best[1][0], best[1][1], 0])
    boxes.append(box_of(mob))
    return mob
