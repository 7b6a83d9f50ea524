"""The lecture workflow: captions, lecture files, the page, and CLI checks (fast, no rendering)."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from model.errors import UserError
from pipeline import captions
from pipeline.lecture_file import load_lecture
from pipeline.page import lecture_page
from pipeline.render import default_out, slug
from scenes.parts.params import Params
from scenes.registry import SCENES

SRT = """1
00:00:00,000 --> 00:00:04,000
The prompt is 10 tokens.

2
00:00:04,000 --> 00:01:02,500
' creature' --> ' blue' gets 0.61 <b>&</b>
"""


def test_srt_to_vtt_and_back():
    cues = captions.parse_srt(SRT)
    assert [(c.start, c.end) for c in cues] == [(0.0, 4.0), (4.0, 62.5)]
    assert cues[1].text == "' creature' --> ' blue' gets 0.61 <b>&</b>"  # the arrow in the text is text
    vtt = captions.to_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:04.000\nThe prompt is 10 tokens.")
    # an arrow inside a cue's text would end the cue early: only timing lines may hold "-->"
    arrows = [line for line in vtt.splitlines() if "-->" in line]
    assert arrows == ["00:00:00.000 --> 00:00:04.000", "00:00:04.000 --> 00:01:02.500"], arrows
    assert "\n' creature' \u2192 ' blue' gets 0.61 &lt;b&gt;&amp;&lt;/b&gt;\n" in vtt
    again = captions.parse_srt(vtt)
    assert [(c.start, c.end) for c in again] == [(0.0, 4.0), (4.0, 62.5)]
    assert again[1].text == "' creature' \u2192 ' blue' gets 0.61 &lt;b&gt;&amp;&lt;/b&gt;"
    assert captions.parse_srt(captions.to_srt(cues)) == cues


def test_chapters():
    vtt = captions.chapters_vtt([{"name": "beat_split", "start": 0, "end": 13.6}, {"name": "beat_grid_cost", "start": 13.6, "end": 30}])
    assert "00:00:13.600 --> 00:00:30.000\nGrid cost" in vtt
    assert "\nSplit\n" in vtt


def write(tmp_path, text):
    path = tmp_path / "lecture.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ('title = "x"\n[defaults\nprompt = "hi"\n', "syntax error: .* line 2"),
    ('title = "x"\n\ncolour = 3\n[[scene]]\nname = "tokens"\n', ":3: unknown key 'colour'"),
    ('[[scene]]\nname = "tokens"\n\n[[scene]]\nname = "tokenz"\n', ":5: unknown scene 'tokenz'; did you mean 'tokens'"),
    ('[[scene]]\nname = "tokens"\nlayr = 2\n', ":3: unknown option 'layr'; did you mean 'layer'"),
    ('[defaults]\nseed = "one"\n[[scene]]\nname = "tokens"\n', ":2: option 'seed' has the wrong type"),
    ('title = "no scenes"\n', "at least one"),
])
def test_lecture_file_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_lecture(write(tmp_path, text), list(SCENES))


@pytest.mark.parametrize("name", ["intro.toml", "full.toml"])
def test_shipped_lecture_loads(name):
    lecture = load_lecture(ROOT / "assets" / "lectures" / name, list(SCENES))
    assert lecture.title and len(lecture.scenes) >= 4
    assert all(s.name in SCENES for s in lecture.scenes)
    assert all(s.options["prompt"] for s in lecture.scenes)


def test_lecture_scene_title_and_notes(tmp_path):
    lecture = tmp_path / "l.toml"
    lecture.write_text('[[scene]]\nname = "tokens"\ntitle = "Text becomes tokens"\nnotes = "line one\\nline two"\n\n'
                       '[[scene]]\nname = "cost"\n')
    first, second = load_lecture(lecture, list(SCENES)).scenes
    assert (first.title, first.notes, second.title, second.notes) == ("Text becomes tokens", "line one\nline two", "", "")
    assert "title" not in first.options and "notes" not in first.options  # page text, not render options
    lecture.write_text('[[scene]]\nname = "tokens"\ntitle = 3\n')
    with pytest.raises(UserError, match=r"l.toml:3: title must be text"):
        load_lecture(lecture, list(SCENES))
    lecture.write_text('[[scene]]\nname = "tokens"\nspeaker = "x"\n')
    with pytest.raises(UserError, match=r"unknown option 'speaker'.*\(allowed: name, title, notes, prompt, model"):
        load_lecture(lecture, list(SCENES))


def test_page_is_self_contained():
    clip = {"name": "tokens", "line": "text becomes tokens", "video": "tokens.mp4", "poster": "tokens.poster.png",
            "captions_vtt": captions.to_vtt(captions.parse_srt(SRT)), "chapters_vtt": captions.chapters_vtt([]),
            "chapters": [{"name": "beat_split", "start": 0.0}], "provenance": {"prompt": "<script>alert(1)</script>"}}
    page = lecture_page("A <lecture>", "sub", [clip, {"name": "masking", "error": "boom"}])
    assert "http://" not in page and "https://" not in page  # no CDN
    assert 'src="data:text/vtt;charset=utf-8;base64,' in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "A &lt;lecture&gt;" in page and "not rendered: boom" in page
    assert '<body class="dark">' in page  # the default theme's page
    light = lecture_page("A lecture", "sub", [clip], theme="light")
    assert '<body class="light">' in light and "body.light {" in light  # the page matches light clips


def test_output_folders_differ_by_model_and_prompt():
    a = default_out(Params(prompt="The capital of France is"))
    b = default_out(Params(prompt="The capital of France was"))
    c = default_out(Params(prompt="The capital of France is", model="/models/gpt2"))
    assert len({a, b, c}) == 3
    assert a.parts[0] == b.parts[0] == c.parts[0] == "media"
    assert a.parts[1] == b.parts[1] and a.parts[1].startswith("smollm2-135m")  # the model's folder
    assert c.parts[1].startswith("gpt2") and c.parts[1] != a.parts[1]
    assert a.parts[2] == c.parts[2] != b.parts[2]  # the prompt's folder
    assert slug("Ünïcödé / <b> & 🙂").startswith("unicode-b-")


def cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "render.py"), *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_list_and_models():
    listed = cli("list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.strip().splitlines()] == list(SCENES)
    models = cli("models")
    assert models.returncode == 0 and "smollm2-135m" in models.stdout and "Apache-2.0" in models.stdout


# Render option errors and a file as --out are rows of tests/bad_input_cases.json (tests/test_reliability.py).


def test_a_lecture_of_thousands_of_scenes_starts_promptly(tmp_path, monkeypatch):
    """Planning a lecture does a fixed amount of work per scene: no search through the file's
    text per option (it was quadratic: 2,000 scenes took 43 s) and one voice check in all.
    Counted, not timed."""
    import argparse

    from pipeline import lecture_file, render
    from scenes.parts import voice

    calls = {"line_of": 0, "line_start": 0, "missing": 0}

    def counting(name, real):
        def wrapper(*a, **k):
            calls[name] += 1
            return real(*a, **k)
        return wrapper

    for name in ("line_of", "line_start"):
        monkeypatch.setattr(lecture_file, name, counting(name, getattr(lecture_file, name)))
    monkeypatch.setattr(voice, "missing", counting("missing", voice.missing))
    monkeypatch.setattr(render, "CHECKED", {})
    n = 4000
    path = tmp_path / "big.toml"
    path.write_text('title = "big"\n' + "".join(f'[[scene]]\nname = "tokens"\nseed = {i}\n\n' for i in range(n)))
    args = argparse.Namespace(file=path, prompt=None, model=None, layer=None, head=None, analogy=None, theme=None,
                              seed=None, quality=None, fps=None, format=None, voice=None, speed=None,
                              burn_captions=None, query=None, key=None, device="auto", sections=False, out=None)
    _, items, _ = render.lecture_jobs(args)
    assert len(items) == n and [p.seed for _, p, _ in items] == list(range(n))
    assert calls["line_of"] <= 1 and calls["line_start"] == 0 and calls["missing"] == 1, calls  # per file, not per scene
    bad = path.read_text().replace("seed = 3999", "sede = 3999")  # an error still names its line
    path.write_text(bad)
    line = bad.splitlines().index("sede = 3999") + 1
    with pytest.raises(UserError, match=rf"big.toml:{line}: unknown option 'sede'"):
        render.lecture_jobs(args)
