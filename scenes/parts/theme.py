"""The visual language: colours, fonts, sizes and number formatting shared by every scene.

Two themes, dark (default, for video) and light (projectors, print); a theme changes colours
only, never a position. Query yellow, key teal, value red; numbers coloured by sign and size
(positive blue, negative red, near zero grey); every prompt token keeps one colour.

How numbers are written, in every scene (the style guide; the tests write the expected text of
signed numbers, percentages and whole numbers themselves and check every one on screen):
- Signs only where a quantity can be negative: vector entries, logits, scores, cosines, pushes
  (`fmt`: "+0.12", "−1.50", with a real minus sign; a value that shows as zero gets no sign).
  Probabilities, sums of probabilities, lengths (norms), counts and eˣ carry none.
- Probabilities as percentages with one decimal (`fmt_percent`: "47.5%"; "<0.1%" for what
  would round to zero). One exception: inside an attention grid, where a cell holds five
  characters, weights are written unsigned with two decimals ("0.92", column sums "1.00"),
  and the same weight named beside the grid is a percentage ("92.3%").
- Quantities that cannot be negative but are not probabilities (eˣ, costs in nats): unsigned,
  fixed decimals (`components.unsigned`: "11.64").
- Whole numbers with thousands separators (`fmt_int`: "1,536").
- Shapes as rows × columns of the matrix as drawn ("576 × 64"), never the other order.
- Attention scores labelled with their scaling ("q·k / √64"), and where a vector changes because
  of a norm, the norm step is drawn, not only said.
- Spoken numbers follow the same rules in words (scenes/parts/narration.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from manim import ManimColor, interpolate_color

FONT = "DejaVu Sans"
MONO = "DejaVu Sans Mono"

# Font sizes (manim units). The smallest, SMALL, is still legible at 854x480.
TITLE, BODY, LABEL, SMALL = 40, 30, 24, 20

MINUS = "\u2212"  # a real minus sign: as wide as "+" in DejaVu Sans Mono, so digits line up


@dataclass(frozen=True)
class Theme:
    name: str
    background: str
    text: str
    dim: str  # secondary text, outlines, ellipses
    faint: str  # box fills, grid lines
    accent: str  # the one highlight colour for "look here"
    query: str
    key: str
    value: str
    positive: str
    negative: str
    neutral: str
    tokens: tuple[str, ...] = field(default_factory=tuple)

    def token_color(self, position: int) -> ManimColor:
        """The colour of the prompt token at `position`, the same in every scene of a render."""
        return ManimColor(self.tokens[position % len(self.tokens)])

    def number_color(self, value: float, scale: float) -> ManimColor:
        """Blue for positive, red for negative; the larger |value| / scale, the brighter. 0 -> grey."""
        if not math.isfinite(value):
            return ManimColor(self.dim)
        t = min(1.0, abs(value) / scale) if scale > 0 else 0.0
        end = self.positive if value >= 0 else self.negative
        return interpolate_color(ManimColor(self.neutral), ManimColor(end), 0.25 + 0.75 * t)


DARK = Theme(
    name="dark",
    background="#14161b",
    text="#ece9e1",
    dim="#8b909a",
    faint="#2a2e37",
    accent="#ffd166",
    query="#f4d35e",
    key="#2ec4b6",
    value="#ef476f",
    positive="#5aa9ff",
    negative="#ff6b6b",
    neutral="#6b7079",
    tokens=("#f6a95b", "#8fd694", "#b69cf6", "#f28cb1", "#7cc6fe", "#e9d985", "#f08a6c", "#6fd3c6", "#c5a3ff", "#a7c957"),
)

LIGHT = Theme(
    name="light",
    background="#fbfaf6",
    text="#1d1f24",
    dim="#6a6f78",
    faint="#e4e2dc",
    accent="#c77d00",
    query="#b58900",
    key="#0f8b8d",
    value="#c81d4e",
    positive="#1f5fbf",
    negative="#c62828",
    neutral="#a0a4ab",
    tokens=("#c8621b", "#2e8b3d", "#6a4fc7", "#c2407a", "#1f78b4", "#9a7d0a", "#b8432a", "#13857a", "#8a55d6", "#5b7f12"),
)

THEMES = {"dark": DARK, "light": LIGHT}


def get_theme(name: str) -> Theme:
    return THEMES[name]


def fmt(value: float, decimals: int = 2) -> str:
    """A number with a sign column and fixed decimals: "+0.12", "−1.50"."""
    text = f"{abs(value):.{decimals}f}"
    if float(text) == 0:
        return " " + text  # no sign for a shown zero
    return ("+" if value > 0 else MINUS) + text


def fmt_percent(p: float) -> str:
    """A probability as a percentage, one decimal; tiny values stay visible as "<0.1%"."""
    if 0 < p < 0.0005:
        return "<0.1%"
    return f"{100 * p:.1f}%"


def fmt_int(n: int) -> str:
    return f"{n:,}"


def visible_piece(piece: str) -> str:
    """A token's text with its invisible characters made visible: space -> "␣", newline -> "↵"."""
    return piece.replace("\r", "\u240d").replace("\n", "\u21b5").replace("\t", "\u21e5").replace(" ", "\u2423")
