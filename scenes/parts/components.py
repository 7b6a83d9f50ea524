"""Shared visual components. Every scene draws with these, so viewers learn them once.

Each component is built from real values and attaches a `Shown` (scenes/provenance.py) to
every mobject that displays a value, so tests can check shown value == trace value.
Text is Pango (`Text`, which never parses markup); no LaTeX anywhere.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Iterable, Sequence

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, ORIGIN, Arrow, Circle, DashedLine, Dot, ImageMobject, Line,
                   Rectangle, RoundedRectangle, Square, Text, VGroup, VMobject, config)

from .provenance import Shown
from .theme import FONT, LABEL, MONO, SMALL, Theme, fmt, fmt_int, fmt_percent, visible_piece

FRAME_MARGIN = 0.25


def frame_width() -> float:
    return config.frame_width


def frame_height() -> float:
    return config.frame_height


# --------------------------------------------------------------------------- text

# Emoji and pictographs. Pango draws these from the colour emoji font, which manim's SVG route
# cannot carry (the glyph comes out empty); asking for text presentation (U+FE0E) makes Pango
# use an outline font (Symbola), which it can.
PICTOGRAPH = re.compile("([\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff])\ufe0f?(?!\ufe0e)")


def drawable(text: str) -> str:
    """`text` with every pictograph asked for in its outline (text) form, and, when it holds
    right-to-left letters (Hebrew, Arabic), a left-to-right mark first: Pango then lays the
    line out left to right, as every row here reads, and a token made only of such letters is
    drawn at all (manim's Text of a right-to-left paragraph comes out empty)."""
    text = PICTOGRAPH.sub("\\1\ufe0e", text)
    return "\u200e" + text if any(unicodedata.bidirectional(c) in ("R", "AL") for c in text) else text


def label(text: str, theme: Theme, size: float = LABEL, color=None, mono: bool = False, bold: bool = False,
          shown: Shown | None = None) -> Text:
    """Plain Pango text (never markup: prompt text is safe as it is).

    A label made before in this process (same text, font, size, colour) is copied from
    manim's SVG cache; one made by an earlier process is read from the project cache
    (scenes/parts/glyphs.py). Either way its SVG is not parsed again."""
    mob = Text(drawable(text), font=MONO if mono else FONT, font_size=size, color=color or theme.text,
               weight="BOLD" if bold else "NORMAL", use_svg_cache=True)
    if shown is not None:
        mob.shown = shown
    return mob


def fit_width(mob, width: float):
    """Shrink (never grow) `mob` to at most `width`."""
    if mob.width > width:
        mob.scale_to_fit_width(width)
    return mob


def fit_height(mob, height: float):
    """Shrink (never grow) `mob` to at most `height`."""
    if mob.height > height:
        mob.scale_to_fit_height(height)
    return mob


def number(value: float, theme: Theme, source: str, index: tuple = (), scale: float = 1.0, decimals: int = 2,
           size: float = SMALL, prompt: str | None = None) -> Text:
    """One number: monospace, sign column, fixed decimals, coloured by sign and size."""
    text = fmt(float(value), decimals)
    mob = label(text, theme, size, color=theme.number_color(float(value), scale), mono=True)
    mob.shown = Shown(text, float(value), source, tuple(index), prompt, "number", decimals)
    return mob


def percent(p: float, theme: Theme, source: str, index: tuple = (), size: float = SMALL, color=None) -> Text:
    """A probability (an attention weight, a softmax output) as the style guide writes one: a
    percentage with one decimal, no sign ("83.0%", "<0.1%")."""
    text = fmt_percent(float(p))
    return label(text, theme, size, color=color or theme.text, mono=True,
                 shown=Shown(text, float(p), source, tuple(index), None, "percent"))


def unsigned(value: float, theme: Theme, source: str, index: tuple = (), size: float = SMALL, color=None,
             decimals: int = 2) -> Text:
    """A quantity that cannot be negative, where a percentage would not fit or is not meant (a
    weight in a grid, a cost in nats): fixed decimals, no sign ("0.92", "5.88")."""
    text = f"{float(value):.{decimals}f}"
    return label(text, theme, size, color=color or theme.text, mono=True,
                 shown=Shown(text, float(value), source, tuple(index), kind="decimals", decimals=decimals))


def count(value: int, theme: Theme, source: str, size: float = LABEL, color=None, index: tuple = ()) -> Text:
    """A whole number, with thousands separators."""
    text = fmt_int(int(value))
    return label(text, theme, size, color=color or theme.accent, mono=True,
                 shown=Shown(text, int(value), source, index, kind="int"))


def token_label(piece: str, theme: Theme, size: float = LABEL, color=None, source: str = "pieces",
                index: tuple = (), prompt: str | None = None) -> Text:
    """A token's text with its spaces made visible ("␣the")."""
    text = visible_piece(piece)
    return label(text, theme, size, color=color, mono=True,
                 shown=Shown(text, piece, source, index, prompt, "token"))


# --------------------------------------------------------------------------- windows

def token_window(widths: Sequence[float], focus: Iterable[int], budget: float, gap: float,
                 keep_last: bool = True) -> list[int | None]:
    """Which tokens to draw when they do not all fit: the focus tokens, then their neighbours,
    the first and (with keep_last) the last token; `None` marks an elided run (drawn as "…",
    `gap` wide). Strips and attention grids (widths all 1, budget = cells) both use it.

    widths: each token's drawn width (same units as budget).
    """
    n = len(widths)
    if sum(widths) <= budget:
        return list(range(n))
    focus = sorted({f for f in focus if 0 <= f < n}) or [n - 1]
    anchors = focus + [0] + ([n - 1] if keep_last else [])

    def cost(chosen: set[int]) -> float:
        ordered = sorted(chosen)
        gaps = sum(1 for a, b in zip(ordered, ordered[1:]) if b > a + 1)
        gaps += (ordered[0] > 0) + (ordered[-1] < n - 1)
        return sum(widths[i] for i in chosen) + gaps * gap

    chosen = set(focus)
    order = sorted(range(n), key=lambda i: (min(abs(i - a) + (0 if a in focus else 2) for a in anchors), i))
    for i in order:
        if i in chosen:
            continue
        if cost(chosen | {i}) <= budget:
            chosen.add(i)
    out: list[int | None] = []
    ordered = sorted(chosen)
    if ordered[0] > 0:
        out.append(None)
    for a, b in zip(ordered, ordered[1:] + [None]):
        out.append(a)
        if b is not None and b > a + 1:
            out.append(None)
    if ordered[-1] < n - 1:
        out.append(None)
    return out


def shorten_text(text: str, chars_per_line: int, max_lines: int) -> list[str]:
    """Wrap text into lines of about chars_per_line; if too many, keep the first line, an
    ellipsis line and the last lines (the end of a prompt matters most for what comes next)."""
    words = text.replace("\r", "").replace("\t", " ").split(" ")
    lines: list[str] = []
    current = ""
    for word in words:
        chunks = word.split("\n")
        for j, chunk in enumerate(chunks):
            if j > 0:
                lines.append(current)
                current = ""
            while len(chunk) > chars_per_line:  # a very long word: hard break
                if current:
                    lines.append(current)
                    current = ""
                lines.append(chunk[:chars_per_line])
                chunk = chunk[chars_per_line:]
            candidate = f"{current} {chunk}" if current else chunk
            if len(candidate) > chars_per_line and current:
                lines.append(current)
                current = chunk
            else:
                current = candidate
    lines.append(current)
    lines = [line for line in lines if line.strip()] or [text.strip()]
    if len(lines) > max_lines:
        lines = [lines[0], "…"] + lines[-(max_lines - 2):]
    return lines


class PromptText(VGroup):
    """The prompt as plain text, wrapped, long prompts shortened in the middle."""

    def __init__(self, prompt: str, theme: Theme, size: float = 34, max_width: float | None = None,
                 max_lines: int = 3, color=None):
        super().__init__()
        max_width = max_width or frame_width() - 2 * FRAME_MARGIN - 0.6
        chars = max(12, int(max_width / (size * 0.0072)))  # DejaVu Sans: about 0.0072 per font-size unit
        lines = shorten_text(prompt, chars, max_lines)
        for line in lines:
            mob = label(line, theme, size, color=color)
            mob.shown = Shown(line, line, "prompt", kind="text")
            self.add(mob)
        self.arrange(DOWN, aligned_edge=LEFT, buff=0.18)
        fit_width(self, max_width)


# --------------------------------------------------------------------------- token strip

class TokenStrip(VGroup):
    """The prompt's tokens as coloured boxes (each token's text, optionally its id below).

    Long prompts are windowed: `focus` tokens and their neighbours are kept, the rest is
    "…". `.boxes[pos]` is the box group of token `pos`, `.ids[pos]` its id text.
    """

    def __init__(self, pieces: Sequence[str], ids: Sequence[int], theme: Theme, focus: Iterable[int] = (),
                 show_ids: bool = False, max_width: float | None = None, size: float = LABEL,
                 positions: Sequence[int] | None = None):
        super().__init__()
        max_width = max_width or frame_width() - 2 * FRAME_MARGIN
        self.theme = theme
        char_w = size * 0.00817  # DejaVu Sans Mono advance per font-size unit (measured)
        pad, buff = 0.24, 0.1
        widths = [len(visible_piece(p)) * char_w + pad + buff for p in pieces]
        if show_ids:
            widths = [max(w, len(fmt_int(i)) * char_w * 0.8 + 0.12 + buff) for w, i in zip(widths, ids)]
        gap = 3 * char_w + buff
        self.window = token_window(widths, focus, max_width, gap) if positions is None else list(positions)
        self.boxes: dict[int, VGroup] = {}
        self.texts: dict[int, Text] = {}
        self.ids: dict[int, Text] = {}
        height = size * 0.024 + 0.22
        cells = []
        for pos in self.window:
            if pos is None:
                cells.append(label("…", theme, size, color=theme.dim))
                continue
            color = theme.token_color(pos)
            text = token_label(pieces[pos], theme, size, color=theme.text, index=(pos,))
            min_width = height * 0.9
            if show_ids:  # the id below must not be wider than its box
                ident = count(ids[pos], theme, "tokens", size=size * 0.8, color=theme.dim, index=(pos,))
                self.ids[pos] = ident
                min_width = max(min_width, ident.width + 0.12)
            box = RoundedRectangle(corner_radius=0.08, width=max(text.width + pad, min_width), height=height,
                                   stroke_color=color, stroke_width=2.5, fill_color=color, fill_opacity=0.22)
            text.move_to(box)
            # keep the baseline steady: align texts by their box, not by their own ink
            group = VGroup(box, text)
            self.boxes[pos], self.texts[pos] = group, text
            cells.append(group)
        self.row = VGroup(*cells).arrange(RIGHT, buff=buff)
        self.add(self.row)
        if show_ids:
            for pos, group in self.boxes.items():
                self.ids[pos].next_to(group, DOWN, buff=0.12)
                self.add(self.ids[pos])
        fit_width(self, max_width)

    @property
    def shown_positions(self) -> list[int]:
        return [p for p in self.window if p is not None]

    def id_group(self) -> VGroup:
        return VGroup(*self.ids.values())


# --------------------------------------------------------------------------- vectors and matrices

def bracket(height: float, theme: Theme, side: str, color=None, tick: float = 0.1) -> VMobject:
    """A square bracket [ or ] of the given height."""
    s = -1 if side == "left" else 1
    pts = [np.array([-s * tick, height / 2, 0]), np.array([0, height / 2, 0]),
           np.array([0, -height / 2, 0]), np.array([-s * tick, -height / 2, 0])]
    mob = VMobject(stroke_color=color or theme.dim, stroke_width=2.5)
    mob.set_points_as_corners(pts)
    return mob


def vdots(theme: Theme, size: float = SMALL) -> Text:
    return label("⋮", theme, size, color=theme.dim)


class VectorColumn(VGroup):
    """A long vector as a column: first `head` and last `tail` entries, a vertical ellipsis,
    and its real length ("576 numbers")."""

    def __init__(self, values, theme: Theme, source: str, index_prefix: tuple = (), head: int = 3, tail: int = 2,
                 scale: float | None = None, size: float = SMALL, color=None, show_length: bool = True,
                 prompt: str | None = None):
        super().__init__()
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        n = len(values)
        if scale is None:
            scale = float(3 * values.std()) if n > 1 and values.std() > 0 else 1.0
        shown_idx = list(range(n)) if n <= head + tail + 1 else list(range(head)) + [None] + list(range(n - tail, n))
        self.entries: dict[int, Text] = {}
        rows = []
        for j in shown_idx:
            if j is None:
                rows.append(vdots(theme, size))
                continue
            mob = number(values[j], theme, source, tuple(index_prefix) + (j,), scale, size=size, prompt=prompt)
            self.entries[j] = mob
            rows.append(mob)
        self.body = VGroup(*rows).arrange(DOWN, buff=0.1)
        for mob in self.entries.values():  # right-align numbers in their column
            mob.align_to(self.body, RIGHT)
        h = self.body.height + 0.2
        self.left = bracket(h, theme, "left", color).next_to(self.body, LEFT, buff=0.08)
        self.right = bracket(h, theme, "right", color).next_to(self.body, RIGHT, buff=0.08)
        self.add(self.left, self.body, self.right)
        self.length = None
        if show_length:
            self.length = count(n, theme, f"len({source})", size=size * 0.85, color=theme.dim)
            words = label("numbers", theme, size * 0.85, color=theme.dim)
            self.length_label = VGroup(self.length, words).arrange(RIGHT, buff=0.08)
            self.length_label.next_to(self, DOWN, buff=0.12)
            self.add(self.length_label)


class WeightMatrix(VGroup):
    """A large matrix, elided in both directions, with its real shape beside it.

    rows: a list of (row_label, values for `cols`, source, index_prefix) or None for "⋮".
    cols: the column indices shown (a None entry marks "⋯").
    """

    def __init__(self, name: str, shape: tuple[int, int], rows: list, cols: list, theme: Theme,
                 size: float = SMALL, scale: float = 0.1, highlight: int | None = None, highlight_color=None):
        super().__init__()
        self.rows: dict[int, VGroup] = {}
        grid_rows = []
        self.row_labels = VGroup()
        self.row_label_of: dict[int, Text] = {}
        for r, row in enumerate(rows):
            if row is None:
                cells = [vdots(theme, size) if c is not None else label(" ", theme, size) for c in cols]
                grid_rows.append((None, cells))
                continue
            row_label, values, source, prefix = row
            cells, k = [], 0
            for c in cols:
                if c is None:
                    cells.append(label("⋯", theme, size, color=theme.dim))
                else:
                    cells.append(number(values[k], theme, source, tuple(prefix) + (c,), scale, size=size))
                    k += 1
            grid_rows.append((row_label, cells))
        cell_w = max(m.width for _, cells in grid_rows for m in cells) + 0.22
        cell_h = size * 0.02 + 0.14
        body = VGroup()
        for r, (row_label, cells) in enumerate(grid_rows):
            y = -r * cell_h
            row_group = VGroup()
            for c, mob in enumerate(cells):
                mob.move_to([c * cell_w, y, 0])
                row_group.add(mob)
            body.add(row_group)
            if row_label is not None:
                lab = label(str(row_label), theme, size * 0.85, color=theme.dim, mono=True,
                            shown=Shown(str(row_label), row_label, "index", kind="text"))
                lab.next_to(row_group[0], LEFT, buff=0.45)
                lab.set_y(y)
                self.row_labels.add(lab)
                self.row_label_of[r] = lab
                self.rows[r] = row_group
        self.body = body
        h = body.height + 0.25
        self.left = bracket(h, theme, "left").next_to(body, LEFT, buff=0.1)
        self.right = bracket(h, theme, "right").next_to(body, RIGHT, buff=0.1)
        self.row_labels.next_to(self.left, LEFT, buff=0.15, aligned_edge=RIGHT) if len(self.row_labels) else None
        for lab, (r, grp) in zip(self.row_labels, self.rows.items()):
            lab.set_y(grp.get_y())
        self.title = label(name, theme, LABEL, bold=True)
        self.title.next_to(VGroup(self.left, self.right), UP, buff=0.15)
        n_rows, n_cols = shape
        self.shape_label = VGroup(count(n_rows, theme, f"shape({name})", size, color=theme.dim, index=(0,)),
                                  label("×", theme, size, color=theme.dim),
                                  count(n_cols, theme, f"shape({name})", size, color=theme.dim, index=(1,))).arrange(RIGHT, buff=0.1)
        self.shape_label.next_to(VGroup(self.left, self.right), DOWN, buff=0.15)
        self.add(self.left, body, self.right, self.row_labels, self.title, self.shape_label)
        self.highlight_box = None
        if highlight is not None and highlight in self.rows:
            grp = self.rows[highlight]
            self.highlight_box = RoundedRectangle(corner_radius=0.06, width=body.width + 0.3, height=cell_h,
                                                  stroke_color=highlight_color or theme.accent, stroke_width=3)
            self.highlight_box.move_to([body.get_center()[0], grp.get_y(), 0])
            self.add(self.highlight_box)


# --------------------------------------------------------------------------- bars

def sample_rows(steps: Sequence[dict], step: int) -> tuple[list[tuple], int]:
    """ProbabilityBars rows for one step of `facts.generation.samples` (its real top tokens, plus
    the drawn token when it is not among them; source "sample.probs") and the drawn token's row."""
    s = steps[step]
    rows = [(t["token"], t["probability"], (step, t["id"]), None) for t in s["top"]]
    chosen = s["chosen"]
    if chosen["id"] not in [t["id"] for t in s["top"]]:
        rows.append((chosen["token"], chosen["probability"], (step, chosen["id"]), None))
    return rows, [r[2][1] for r in rows].index(chosen["id"])


class ProbabilityBars(VGroup):
    """Horizontal bars: token, bar (length = probability), percentage.

    rows: (piece, probability, index into `source`, prompt or None) per bar, largest first.
    """

    def __init__(self, rows: Sequence[tuple], theme: Theme, bar_width: float = 4.0, size: float = LABEL,
                 highlight: int | None = None, source: str = "probs", value_kind: str = "percent",
                 token_source: str = "vocab", top: float | None = None):
        super().__init__()
        self.bars, self.tokens, self.values = [], [], []
        top = top or max((r[1] for r in rows), default=1.0) or 1.0  # `top`: a shared scale for panels side by side
        bar_h = size * 0.012 + 0.08
        lines = VGroup()
        for k, (piece, p, index, prompt) in enumerate(rows):
            color = theme.accent if k == highlight else theme.positive
            tok = token_label(piece, theme, size, source="bars.piece", index=(k,), prompt=prompt)
            tok_index = (index[-1],) if token_source == "vocab" else tuple(index)  # vocab: the token id
            tok.shown = Shown(tok.shown.text, piece, token_source, tok_index, prompt, "token")
            length = max(0.02, bar_width * float(p) / top)
            bar = Rectangle(width=length, height=bar_h, stroke_width=0, fill_color=color, fill_opacity=0.85)
            text = fmt_percent(float(p)) if value_kind == "percent" else fmt(float(p))
            val = label(text, theme, size * 0.9, color=theme.text, mono=True,
                        shown=Shown(text, float(p), source, tuple(index), prompt,
                                    "percent" if value_kind == "percent" else "number"))
            self.tokens.append(tok)
            self.bars.append(bar)
            self.values.append(val)
            lines.add(VGroup(tok, bar, val))
        for k, (tok, bar, val) in enumerate(zip(self.tokens, self.bars, self.values)):
            y = -k * (bar_h + 0.22)
            tok.move_to([0, y, 0], aligned_edge=RIGHT)
            bar.move_to([0.2, y, 0], aligned_edge=LEFT)
            val.next_to(bar, RIGHT, buff=0.15)
        self.add(lines)
        self.lines = lines


# --------------------------------------------------------------------------- attention grid

class AttentionGrid(VGroup):
    """An attention pattern: keys down the left, queries across the top (each column is one
    query and sums to 1). Each cell's square has area proportional to its weight; cells
    where the key comes after the query are masked: outlined and empty.

    pattern: [q_pos, k_pos] weights; positions: the token positions shown (None = "…").
    """

    def __init__(self, pattern, pieces: Sequence[str], positions: Sequence[int | None], theme: Theme,
                 cell: float = 0.42, size: float = SMALL, color=None, show_labels: bool = True):
        super().__init__()
        pattern = np.asarray(pattern, dtype=np.float64)
        color = color or theme.accent
        self.cells: dict[tuple[int, int], Square] = {}
        squares, outlines = VGroup(), VGroup()
        n = len(positions)
        for r, k in enumerate(positions):  # rows: keys
            for c, q in enumerate(positions):  # columns: queries
                center = np.array([c * cell, -r * cell, 0])
                if k is None or q is None:
                    continue
                if k > q:
                    outlines.add(Square(cell * 0.82, stroke_color=theme.faint, stroke_width=1.5).move_to(center))
                    continue
                w = float(pattern[q, k])
                side = cell * 0.9 * math.sqrt(max(w, 0.0))
                sq = Square(max(side, 0.01), stroke_width=0, fill_color=color, fill_opacity=0.9 if side > 0.01 else 0)
                sq.move_to(center)
                squares.add(sq)
                self.cells[(q, k)] = sq
        frame = Rectangle(width=n * cell, height=n * cell, stroke_color=theme.dim, stroke_width=1.5)
        frame.move_to([(n - 1) * cell / 2, -(n - 1) * cell / 2, 0])
        self.frame, self.squares, self.masked = frame, squares, outlines
        self.add(frame, outlines, squares)
        self.key_labels, self.query_labels = VGroup(), VGroup()
        if show_labels:
            for i, pos in enumerate(positions):
                for group, where in ((self.key_labels, "key"), (self.query_labels, "query")):
                    if pos is None:
                        lab = label("…", theme, size, color=theme.dim)
                    else:
                        lab = token_label(pieces[pos], theme, size, color=theme.token_color(pos), index=(pos,))
                    if where == "key":
                        lab.next_to(frame.get_left() + np.array([0, -i * cell + (n - 1) * cell / 2, 0]), LEFT, buff=0.12)
                    else:  # a label wider than its column reads bottom to top; a narrow one ("a", "<") stays upright
                        if lab.width > cell * 0.9:
                            lab.rotate(math.pi / 2)
                        lab.next_to(frame.get_top() + np.array([i * cell - (n - 1) * cell / 2, 0, 0]), UP, buff=0.12)
                    group.add(lab)
            self.add(self.key_labels, self.query_labels)


# --------------------------------------------------------------------------- provenance tag

class ProvenanceTag(VGroup):
    """Bottom-right corner: model, layer/head (and how it was chosen), trace hash."""

    def __init__(self, model_name: str, layer: int, head: int, auto: bool, score: float, trace_hash: str,
                 theme: Theme, size: float = 16):
        super().__init__()
        how = f"auto {score:.2f}" if auto else "chosen"
        text = f"{model_name} · layer {layer} head {head} ({how}) · trace {trace_hash[:8]}"
        self.text = label(text, theme, size, color=theme.dim, mono=True,
                          shown=Shown(text, text, "provenance", kind="text"))
        self.add(self.text)
        fit_width(self, frame_width() - 2 * FRAME_MARGIN)
        self.to_corner(DOWN + RIGHT, buff=0.15)


# --------------------------------------------------------------------------- cell grids as images

def cell_grid_image(n: int, theme: Theme, side: float, causal: bool = True, pixels: int = 480,
                    band: float = 0.0) -> ImageMobject:
    """An n x n grid of cells drawn as one image (cheap for thousands of cells): the cells a
    causal model fills (key not after query) shaded, grid lines while cells are big enough.
    band > 0: the cells less than `band` cells before their query (a sliding window) in the accent colour."""
    from manim import ManimColor

    px = max(n, (pixels // n) * n)
    cell = px // n
    bg = np.array(ManimColor(theme.background).to_rgb()) * 255
    fill = np.array(ManimColor(theme.dim).to_rgb()) * 255
    line = np.array(ManimColor(theme.faint).to_rgb()) * 255
    img = np.empty((px, px, 3))
    img[:] = bg
    rows = np.arange(px)[:, None] // cell
    cols = np.arange(px)[None, :] // cell
    filled = (rows <= cols) if causal else np.ones((px, px), bool)  # rows: keys, columns: queries
    img[filled] = 0.35 * fill + 0.65 * bg
    if band > 0:
        accent = np.array(ManimColor(theme.accent).to_rgb()) * 255
        img[filled & ((cols - rows) < max(band, 1.0))] = 0.8 * accent + 0.2 * bg
    if cell >= 4:
        grid = (np.arange(px) % cell == 0)
        img[grid, :] = line
        img[:, grid] = line
    img = np.dstack([img, np.full((px, px), 255)]).astype(np.uint8)
    mob = ImageMobject(img, scale_to_resolution=px)
    mob.set_resampling_algorithm(0)  # nearest: crisp cells
    mob.height = side
    return mob


class BurnedCaptions(VGroup):
    """--burn-captions: the current caption cue drawn at the bottom of the picture, on a band
    of the background colour, for players that ignore subtitle files."""

    def __init__(self, theme: Theme, size: float = 26):
        super().__init__()
        self.theme, self.size, self.current = theme, size, None

    def show(self, text: str) -> "BurnedCaptions":
        if text == self.current:
            return self
        self.current = text
        self.submobjects = []
        if text:
            from manim import BackgroundRectangle

            words = VGroup(*[label(line, self.theme, self.size) for line in text.split("\n")])
            words.arrange(DOWN, buff=0.12)
            fit_width(words, frame_width() - 2 * FRAME_MARGIN)
            band = BackgroundRectangle(words, color=self.theme.background, fill_opacity=0.85, buff=0.12)
            self.add(band, words)
            self.move_to([0, -frame_height() / 2 + 0.55 + words.height / 2, 0])
        return self
