"""The disk cache of Text outlines (scenes/parts/glyphs.py): a Text read back from the cache is
the same object as one parsed from its SVG, attribute by attribute and pixel by pixel, for text
in every script the scenes draw; a damaged entry is parsed again; the cache is really used."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT  # noqa: F401  (puts the project on sys.path)

TEXTS = ["0.83", "83%", "1,536", "q·k/√d", "The fluffy blue creature", "東京", "🍣 sushi", "\u200eשלום", "Café naïve",
         "<b>&amp;</b>", "#set $x$", "a", " ", "W_O · z", "−4.2", "E + ΔE"]


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    """An empty project cache and an empty manim media folder, manim's in-memory SVG cache emptied."""
    from manim import config
    from manim.mobject.svg.svg_mobject import SVG_HASH_TO_MOB_MAP

    from scenes.parts import compat

    compat.install()
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path / "cache"))
    media = config.media_dir
    config.media_dir = str(tmp_path / "media")
    SVG_HASH_TO_MOB_MAP.clear()
    yield tmp_path / "cache"
    config.media_dir = media
    SVG_HASH_TO_MOB_MAP.clear()


def make(text: str, **kwargs):
    from manim import Text

    from scenes.parts.theme import FONT

    return Text(text, font=FONT, font_size=30, color="#e8e8e8", **kwargs)


def parses(monkeypatch) -> list:
    """Count SVG parses from here on."""
    from manim.mobject.svg import svg_mobject

    calls, real = [], svg_mobject.se.SVG.parse
    monkeypatch.setattr(svg_mobject.se.SVG, "parse", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def same(a, b, path: str = "text", seen=None) -> None:
    """a and b hold the same state: same types, same attributes, arrays bit for bit (recursive)."""
    seen = set() if seen is None else seen
    if id(a) in seen:
        return
    seen.add(id(a))
    assert type(a) is type(b), path
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), path
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]", seen)
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}", seen)
    elif hasattr(a, "__dict__") and type(a).__module__.startswith("manim"):
        keys = [k for k in a.__dict__ if k not in ("path_obj", "original_id")]
        assert keys == [k for k in b.__dict__ if k not in ("path_obj", "original_id")], path
        for k in keys:
            same(a.__dict__[k], b.__dict__[k], f"{path}.{k}", seen)
    else:
        assert a == b or (a != a and b != b), f"{path}: {a!r} != {b!r}"


def frame(mob) -> np.ndarray:
    from manim import Camera

    camera = Camera()
    camera.capture_mobjects([mob])
    return camera.pixel_array.copy()


def test_a_cached_text_is_the_parsed_text(fresh_cache, monkeypatch):
    from manim.mobject.svg.svg_mobject import SVG_HASH_TO_MOB_MAP

    calls = parses(monkeypatch)
    parsed = [make(t) for t in TEXTS]
    assert len(calls) == len(TEXTS)  # cold: every text parsed once
    stored = list((fresh_cache / "glyphs").iterdir())
    assert len(stored) == len(TEXTS)
    SVG_HASH_TO_MOB_MAP.clear()
    read = [make(t) for t in TEXTS]
    assert len(calls) == len(TEXTS)  # warm: none parsed again
    for text, a, b in zip(TEXTS, parsed, read):
        same(a, b, repr(text))
        assert len(a.submobjects) == len(b.submobjects) and (frame(a) == frame(b)).all(), text
        same(a.copy(), b.copy(), repr(text) + " copy")  # copies (every animation makes some) agree too
    # the outline is the text's own: two different strings do not share an entry
    assert not np.array_equal(read[0].get_all_points(), read[1].get_all_points())


def test_a_damaged_entry_is_parsed_again(fresh_cache, monkeypatch):
    from manim.mobject.svg.svg_mobject import SVG_HASH_TO_MOB_MAP

    first = make("0.83")
    (entry,) = (fresh_cache / "glyphs").iterdir()
    body = json.loads(entry.read_text())
    body["value"]["glyphs"][0]["points"]["array"] = body["value"]["glyphs"][1]["points"]["array"]  # edited, checksum not
    entry.write_text(json.dumps(body))
    calls = parses(monkeypatch)
    SVG_HASH_TO_MOB_MAP.clear()
    again = make("0.83")
    assert len(calls) == 1  # the damaged entry was not believed
    same(first, again)
    assert json.loads(entry.read_text())["value"] != body["value"]  # and it was written again, whole
