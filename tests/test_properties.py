"""Property tests: any Unicode prompt through tokenizer -> trace -> scene construction (no rendering).

A prompt is either refused with a UserError (empty, control characters, characters the vocabulary
cannot spell, too long) or it works all the way: its tokens decode back to it, the forward pass
runs, and a scene builds. Never any other exception.

A property that returns early on every refused prompt would pass if every prompt were refused, so
each test counts the prompts it accepted and fails when too few were (half for the fast test; a
quarter of the 8 slow ones). Half the generated text stays short and avoids control characters (and
unassigned or private-use ones), so nearly all of that half should be accepted.
"""

import pytest
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st

from model.errors import UserError
from model.trace import MAX_PROMPT_TOKENS, encode_prompt, get_trace

# Text the issue names as valid: emoji, CJK, right-to-left, combining marks, Pango markup, Typst.
VALID = ["I love 🙂 and 🐍 👩‍👩‍👧", "東京は日本の首都です", "שלום עולם مرحبا", "Cafe\u0301 n\u0303 Z\u0335\u0301",
         "<b>bold</b> <span foreground='red'>x</span> &amp; &", "#set text(red) $x^2$ *bold* #let a = [b]"]
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=700)
PLAIN_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn")), min_size=1, max_size=120)
MIXED_TEXT = st.one_of(ANY_TEXT, PLAIN_TEXT)


def enough_accepted(counts: dict, fraction: float) -> None:
    print(f"accepted {counts['accepted']} of {counts['generated']} generated prompts")
    assert counts["generated"] > 0 and counts["accepted"] >= fraction * counts["generated"], counts


def test_any_prompt_is_refused_cleanly_or_round_trips(smollm2):
    counts = {"generated": 0, "accepted": 0}

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(MIXED_TEXT)
    @example("word " * 300)
    @example("")
    def check(prompt):
        counts["generated"] += 1
        try:
            ids = encode_prompt(smollm2, prompt)
        except UserError as e:
            event("refused")
            note(f"refused: {e}")
            assert "\n" not in str(e)
            return
        event("accepted")
        counts["accepted"] += 1
        assert 0 < len(ids) <= MAX_PROMPT_TOKENS
        assert smollm2.encoding.decode(ids) == prompt

    check()
    enough_accepted(counts, 0.5)


@pytest.fixture
def scratch_cache(tmp_path, monkeypatch):
    """A fresh trace cache (random prompts stay out of the shared one) that shares the weight cache."""
    from model.cache import cache_dir

    shared = cache_dir()
    for name in ("weights", "fingerprints"):
        (shared / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / name).symlink_to(shared / name)
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path))
    return tmp_path


def trace_and_build(prompt: str):
    from scene_helpers import build

    trace = get_trace(prompt, "smollm2-135m", "cpu")
    assert trace.prompt == prompt and len(trace.pieces) == len(trace.tokens)
    scene = build("tokens", MT_PROMPT=prompt, MT_DEVICE="cpu")
    shown = [m.shown.text for m in scene.seen.values() if getattr(m, "shown", None) and m.shown.source == "prompt"]
    assert "".join("".join(shown).split()) == "".join(prompt.split())  # drawn literally, whatever it holds
    return trace, scene


@pytest.mark.slow
@pytest.mark.parametrize("prompt", VALID, ids=["emoji", "cjk", "rtl", "combining", "pango", "typst"])
def test_valid_unusual_prompts_trace_and_build(prompt, scratch_cache):
    trace, _ = trace_and_build(prompt)
    assert trace.tokens


@pytest.mark.slow
def test_any_prompt_traces_and_builds_or_is_refused(scratch_cache):
    counts = {"generated": 0, "accepted": 0}

    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(prompt=st.one_of(st.text(st.characters(codec="utf-8"), min_size=1, max_size=60),
                            st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn")), min_size=1, max_size=60)))
    def check(prompt):
        counts["generated"] += 1
        try:
            trace, _ = trace_and_build(prompt)
        except UserError as e:
            event("refused")
            assert "\n" not in str(e)
            return
        event("accepted")
        counts["accepted"] += 1
        assert trace.tokens and (scratch_cache / "traces").is_dir()

    check()
    enough_accepted(counts, 0.25)
