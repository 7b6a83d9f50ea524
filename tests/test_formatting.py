"""The number and token formatting of scenes/parts/theme.py, as a literal table.

Every expected string is written out by hand (no formatting code re-used), so a change of
sign column, minus sign, rounding or invisible-character glyph shows up here. The same table
holds the tests' own formatters (tests/scene_helpers.py: expect_*), which the scene tests use
to build expected on-screen text without the implementation's code. Fast: no scene, no model.
"""

from __future__ import annotations

import pytest

from scene_helpers import expect_int, expect_number, expect_percent, expect_piece
from scenes.parts.theme import MINUS, fmt, fmt_int, fmt_percent, visible_piece

M = "\u2212"  # U+2212 MINUS SIGN, never the ASCII hyphen

FMT = [
    # (value, decimals or None for the default, expected)
    (0.123, None, "+0.12"),
    (-1.5, None, M + "1.50"),
    (1, None, "+1.00"),
    (0.5, None, "+0.50"),
    (-0.5, None, M + "0.50"),
    (12.345, 1, "+12.3"),
    (-3, 3, M + "3.000"),
    (250.0, 0, "+250"),
    # zero, and anything that rounds to zero, has a space in the sign column
    (0, None, " 0.00"),
    (0.0, 3, " 0.000"),
    (-0.0, None, " 0.00"),
    (0.004999, None, " 0.00"),
    (-0.004999, None, " 0.00"),
    (0.4, 0, " 0"),
    (0.5, 0, " 0"),  # round half to even: 0.5 -> 0
    (-0.5, 0, " 0"),
    # just above the rounding edge the sign comes back
    (0.006, None, "+0.01"),
    (-0.006, None, M + "0.01"),
    (1.5, 0, "+2"),
    (2.5, 0, "+2"),  # half to even
    (-2.5, 0, M + "2"),
    (0.05, 1, "+0.1"),
    (-0.96, 1, M + "1.0"),
    (0.0329, None, "+0.03"),
    (0.125, None, "+0.12"),
    (-0.3, 0, " 0"),
    (19.6123, 1, "+19.6"),
    (1234.5678, None, "+1234.57"),
    (float("-inf"), None, M + "inf"),
]


@pytest.mark.parametrize("value, decimals, expected", FMT)
def test_fmt(value, decimals, expected):
    shown = fmt(value) if decimals is None else fmt(value, decimals)
    assert shown == expected
    assert expect_number(value, 2 if decimals is None else decimals) == expected
    assert "-" not in shown  # the ASCII hyphen never appears


def test_minus_is_u2212():
    assert MINUS == "\u2212"
    assert fmt(-7, 0) == "\u22127"


FMT_PERCENT = [
    (0, "0.0%"),
    (0.0, "0.0%"),
    (1, "100.0%"),
    (0.5, "50.0%"),
    (0.12345, "12.3%"),
    (0.9999, "100.0%"),
    (0.001, "0.1%"),
    (0.00051, "0.1%"),
    (0.0005, "0.1%"),  # the edge itself is shown, not "<0.1%"
    (0.00049, "<0.1%"),
    (0.0004999, "<0.1%"),
    (1e-12, "<0.1%"),
    (5e-324, "<0.1%"),
    (0.0015, "0.1%"),  # 0.15 is stored just below .15, so it rounds down
    (0.0016, "0.2%"),
    (0.509, "50.9%"),
    (0.07249, "7.2%"),
    (-0.1, "-10.0%"),  # not a probability; shown as Python prints it
]


@pytest.mark.parametrize("p, expected", FMT_PERCENT)
def test_fmt_percent(p, expected):
    assert fmt_percent(p) == expected
    if p >= 0:  # the tests' formatter is for probabilities only
        assert expect_percent(p) == expected


FMT_INT = [
    (0, "0"),
    (7, "7"),
    (999, "999"),
    (1000, "1,000"),
    (49152, "49,152"),
    (1234567, "1,234,567"),
    (134515008, "134,515,008"),
    (-1234, "-1,234"),  # fmt_int keeps Python's hyphen (counts are never negative)
]


@pytest.mark.parametrize("n, expected", FMT_INT)
def test_fmt_int(n, expected):
    assert fmt_int(n) == expected
    assert expect_int(n) == expected


VISIBLE = [
    ("", ""),
    ("abc", "abc"),
    (" the", "\u2423the"),
    ("a b", "a\u2423b"),
    ("\n", "\u21b5"),
    ("\t", "\u21e5"),
    ("\r", "\u240d"),
    ("\r\n", "\u240d\u21b5"),
    ("  x\n\n", "\u2423\u2423x\u21b5\u21b5"),
    (" a\tb\r\n", "\u2423a\u21e5b\u240d\u21b5"),
    ("\u2423", "\u2423"),  # already visible glyphs pass through
    ("caf\u00e9", "caf\u00e9"),
    ("\\n", "\\n"),  # a backslash and an n, not a newline
    ("a\nb\tc\r d", "a\u21b5b\u21e5c\u240d\u2423d"),
]


@pytest.mark.parametrize("piece, expected", VISIBLE)
def test_visible_piece(piece, expected):
    assert visible_piece(piece) == expected
    assert expect_piece(piece) == expected


def test_cjk_prompts_draw_real_glyphs_not_boxes():
    """With the Noto CJK fonts `make setup` installs, Pango draws Chinese/Japanese characters with
    their own outlines, not the hex box it draws for a character no font has."""
    from scenes.parts.components import label
    from scenes.parts.theme import get_theme

    theme = get_theme("dark")
    missing = label("\U000F0000", theme)  # a private-use character: no font has it, Pango draws a box
    for text in ("東", "の", "한"):
        glyph = label(text, theme)
        assert len(glyph.submobjects) >= 1
        assert len(glyph.submobjects) != len(missing.submobjects) or \
            [len(m.points) for m in glyph.submobjects] != [len(m.points) for m in missing.submobjects], text


def test_emoji_draw_as_outlines_not_nothing():
    """Colour emoji cannot pass through manim's SVG text (they came out empty); labels ask for the
    outline form, which Pango takes from Symbola: each pictograph is a real glyph, wider than a dot."""
    from scenes.parts.components import label
    from scenes.parts.theme import get_theme

    theme = get_theme("dark")
    for text in ("🦊", "❤️", "😀"):
        glyph = label(text, theme)
        assert len(glyph.submobjects) == 1 and len(glyph.submobjects[0].points) > 40 and glyph.width > 0.2, text
    assert len(label("I ❤️ my 🦊", theme).submobjects) == 5  # I, heart, m, y, fox: every glyph drawn
