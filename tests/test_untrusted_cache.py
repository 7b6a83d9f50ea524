"""Whatever is read back from the cache is checked, never believed: the fingerprint memo, trace
entries (tensors + JSON), derived facts, and the bundles a Ray task installs. In-process, on a
temporary MANIM_TRANSFORMER_CACHE whose weights/ is the shared test cache's (no dequantizing).

The truths here are computed another way: the checkpoint's fingerprint with hashlib over the file,
the prompt's ids with the tokenizer directly."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from model import cache, loading, untrusted
from model.trace import cache_path, meta_checksum

PROMPT = "The capital of France is"


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch, smollm2):
    """An empty cache in tmp_path/cache sharing only the float weights; tmp_path/outside is where
    nothing may ever be written."""
    shared = cache.cache_dir() / "weights"
    root = tmp_path / "cache"
    root.mkdir()
    (root / "weights").symlink_to(shared)
    (tmp_path / "outside").mkdir()
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(root))
    monkeypatch.setattr(cache, "_MEMORY", type(cache._MEMORY)())
    from scenes.parts import data

    monkeypatch.setattr(data, "_TRACES", {})
    monkeypatch.setattr(data, "_CHOICES", {})
    monkeypatch.setattr("model.trace.load", lambda *args, **kwargs: smollm2)  # a rebuild reuses the loaded model
    return root


def true_fingerprint(source) -> str:
    """What loading.fingerprint must give for a GGUF file: sha256 over "name:sha256(bytes)"."""
    digest = hashlib.sha256(Path(source.path).read_bytes()).hexdigest()
    return hashlib.sha256(f"{source.path.name}:{digest}".encode()).hexdigest()


def memo_path(source) -> Path:
    info = source.path.stat()
    stamp = hashlib.sha256(f"{source.path}:{info.st_size}:{info.st_mtime_ns}".encode()).hexdigest()
    return cache.cache_dir() / "fingerprints" / stamp


def everything_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# --------------------------------------------------------------------------- the fingerprint memo

@pytest.mark.parametrize("planted", ["traversal", "absolute", "too-long", "link-to-dev-zero", "fifo", "folder", "binary"])
def test_a_crafted_fingerprint_memo_is_never_believed(planted, fresh_cache, tmp_path):
    """The memo once named the weight cache file: a memo reading ../../outside/x made `predict`
    write 540 MB there. Every memo that is not 64 hex digits in a small regular file is ignored;
    the fingerprint is hashed afresh and the weights come from cache_dir()/weights."""
    source = loading.resolve("smollm2-135m")
    memo = memo_path(source)
    memo.parent.mkdir(parents=True, exist_ok=True)
    escape = tmp_path / "outside" / "stolen"
    if planted == "traversal":
        memo.write_text("../../outside/stolen")
    elif planted == "absolute":
        memo.write_text(str(escape))
    elif planted == "too-long":
        memo.write_text("a" * 64 + "/../../outside/stolen")
    elif planted == "link-to-dev-zero":
        memo.symlink_to("/dev/zero")  # read whole, this would never end
    elif planted == "fifo":
        os.mkfifo(memo)  # read plainly, this would block forever
    elif planted == "folder":
        memo.mkdir()
    elif planted == "binary":
        memo.write_bytes(b"\xff" * 64)
    assert source.fingerprint == true_fingerprint(source)
    assert everything_under(tmp_path / "outside") == set()
    if planted != "folder":  # replaced by a fresh, well-formed memo (never written through the link)
        assert stat.S_ISREG(memo.lstat().st_mode) and memo.read_text() == true_fingerprint(source)
    assert Path("/dev/zero").is_char_device()


def test_the_weights_are_read_from_the_cache_folder_whatever_the_memo_says(fresh_cache, tmp_path):
    source = loading.resolve("smollm2-135m")
    memo = memo_path(source)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text("../../outside/stolen")
    before = everything_under(fresh_cache / "weights")
    loaded = loading.load("smollm2-135m", "cpu")
    assert loaded.fingerprint == true_fingerprint(source)
    assert everything_under(tmp_path / "outside") == set()
    assert everything_under(fresh_cache / "weights") == before  # read, not rewritten: the entry was found
    assert not any(p.is_file() and p.stat().st_size > 1 << 20 for p in fresh_cache.rglob("*") if p.parent.name != "weights")


# --------------------------------------------------------------------------- trace entries

def tokenizer_truth(smollm2, prompt: str) -> tuple[list[int], list[str]]:
    ids = smollm2.encoding.encode(prompt)
    return ids, [smollm2.encoding.decode_single_token_bytes(i).decode("utf-8", "replace") for i in ids]


def rewrite_meta(path: Path, edit, keep_checksum_valid: bool) -> None:
    meta_file = path.with_suffix(".json")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    edit(meta)
    if keep_checksum_valid:  # a careful forger recomputes the metadata's own checksum
        meta["meta_sha256"] = meta_checksum(meta)
    meta_file.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def made_up_tokens(meta):
    """Other words on screen: ids and pieces of another text of the same length (both in the vocabulary)."""
    meta["tokens"] = [t + 1 for t in meta["tokens"]]
    meta["pieces"] = [" Lies"] * len(meta["pieces"])


def swapped_pieces_only(meta):
    meta["pieces"] = list(reversed(meta["pieces"]))


def other_ids_same_pieces(meta):
    meta["tokens"] = [(t + 7) % 1000 for t in meta["tokens"]]


EDITS = {
    "tokens-edited": (made_up_tokens, False),
    "tokens-forged-with-checksum": (made_up_tokens, True),
    "pieces-reordered-with-checksum": (swapped_pieces_only, True),
    "display-name-with-checksum": (lambda m: m["model"].update(display_name="GPT-7"), True),
    "fingerprint-with-checksum": (lambda m: m["model"].update(fingerprint="0" * 64), True),
    "config-with-checksum": (lambda m: m["config"].update(vocab_size=5), True),
    "extra-token-with-checksum": (lambda m: (m["tokens"].append(1), m["pieces"].append("x")), True),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_trace_entry_never_puts_made_up_tokens_on_screen(edit, fresh_cache, smollm2):
    """The scene path (no model loaded): the trace a scene reads after any of these edits is the
    model's own, its tokens the tokenizer's."""
    from pipeline.render import scene_params
    from scenes.parts.data import SceneData

    first = untrusted.trusted_trace(PROMPT, loaded=smollm2)
    path = cache_path(smollm2.fingerprint, PROMPT)
    fn, keep = EDITS[edit]
    rewrite_meta(path, fn, keep)
    params = scene_params(prompt=PROMPT, model="smollm2-135m", device="cpu", layer="auto", head="auto", theme="dark",
                          seed=0, analogy="uncle-man+woman", voice="none", speed="1", burn_captions=False)
    trace = SceneData(params).trace
    ids, pieces = tokenizer_truth(smollm2, PROMPT)
    assert trace.tokens == ids and trace.pieces == pieces
    assert trace.meta["model"]["display_name"] == smollm2.source.display_name
    assert trace.hash == first.hash  # the same forward pass (one thread: bit for bit)
    assert untrusted.trace_problem(trace, PROMPT, smollm2.source, smollm2) is None


def test_a_valid_trace_of_another_prompt_in_this_entry_is_refused(fresh_cache, smollm2):
    untrusted.trusted_trace(PROMPT, loaded=smollm2)
    other = untrusted.trusted_trace("Paris is the capital of", loaded=smollm2)
    here, there = cache_path(smollm2.fingerprint, PROMPT), cache_path(smollm2.fingerprint, "Paris is the capital of")
    for a, b in ((there, here), (there.with_suffix(".json"), here.with_suffix(".json"))):
        b.write_bytes(a.read_bytes())  # whole, valid, checksummed: only the wrong prompt
    trace = untrusted.trusted_trace(PROMPT, "smollm2-135m", "cpu")
    assert trace.prompt == PROMPT and trace.tokens == tokenizer_truth(smollm2, PROMPT)[0]
    assert trace.hash != other.hash


def test_with_the_model_loaded_forged_ids_are_caught_by_the_tokenizer(fresh_cache, smollm2):
    """Ids changed but pieces kept, checksum recomputed: structure alone cannot see it; the
    tokenizer (predict, heads have it) can."""
    untrusted.trusted_trace(PROMPT, loaded=smollm2)
    path = cache_path(smollm2.fingerprint, PROMPT)
    rewrite_meta(path, other_ids_same_pieces, True)
    from model.trace import get_trace

    forged = get_trace(PROMPT, loaded=smollm2)  # get_trace alone believes it ...
    assert forged.tokens != tokenizer_truth(smollm2, PROMPT)[0]
    assert "tokenizer" in untrusted.trace_problem(forged, PROMPT, smollm2.source, smollm2)
    trace = untrusted.trusted_trace(PROMPT, loaded=smollm2)  # ... the checked path does not
    assert trace.tokens == tokenizer_truth(smollm2, PROMPT)[0]


@pytest.mark.parametrize("planted", ["json-link-to-dev-zero", "json-fifo", "json-folder", "tensors-folder", "tensors-link"])
def test_odd_files_at_a_trace_entry_are_removed_not_read(planted, fresh_cache, smollm2, tmp_path):
    path = cache_path(smollm2.fingerprint, PROMPT)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "outside" / "secret.safetensors"
    secret.write_bytes(b"not yours")
    target = path.with_suffix(".json") if planted.startswith("json") else path
    if planted == "json-link-to-dev-zero":
        path.write_bytes(b"x")
        target.symlink_to("/dev/zero")
    elif planted == "json-fifo":
        path.write_bytes(b"x")
        os.mkfifo(target)
    elif planted.endswith("folder"):
        target.mkdir()
        (target / "inside").write_text("planted")
    elif planted == "tensors-link":
        target.symlink_to(secret)
    trace = untrusted.trusted_trace(PROMPT, loaded=smollm2)
    assert trace.tokens == tokenizer_truth(smollm2, PROMPT)[0]
    for file in (path, path.with_suffix(".json")):
        assert stat.S_ISREG(file.lstat().st_mode)
    assert secret.read_bytes() == b"not yours"


# --------------------------------------------------------------------------- derived facts and bundles

@pytest.mark.parametrize("planted", ["link-to-dev-zero", "fifo", "folder", "link-outside", "huge"])
def test_a_derived_entry_that_is_not_a_plain_file_is_recomputed(planted, fresh_cache, tmp_path, monkeypatch):
    calls = []

    @cache.cached("unit-untrusted")
    def double(x):
        calls.append(x)
        return {"x": x, "twice": 2 * x}

    assert double(21) == {"x": 21, "twice": 42}
    (entry,) = (fresh_cache / "derived" / "unit-untrusted").iterdir()
    outside = tmp_path / "outside" / "value.json"
    cache.write_json(outside, {"x": 21, "twice": 43})  # a well-formed entry with a wrong value, elsewhere
    entry.unlink()
    if planted == "link-to-dev-zero":
        entry.symlink_to("/dev/zero")
    elif planted == "fifo":
        os.mkfifo(entry)
    elif planted == "folder":
        entry.mkdir()
    elif planted == "link-outside":
        entry.symlink_to(outside)
    elif planted == "huge":
        monkeypatch.setattr(cache, "MAX_ENTRY_BYTES", 10)
        cache.write_json(entry, {"x": 21, "twice": 44})
    cache._MEMORY.clear()
    assert double(21) == {"x": 21, "twice": 42}
    assert calls == [21, 21]
    assert json.loads(outside.read_text())["value"] == {"x": 21, "twice": 43}  # not written through the link


def test_read_plain_reads_only_small_regular_files(tmp_path):
    good = tmp_path / "good"
    good.write_bytes(b"12345")
    assert cache.read_plain(good, 5) == b"12345"
    with pytest.raises(OSError, match="more than 4"):
        cache.read_plain(good, 4)
    (tmp_path / "link").symlink_to(good)
    with pytest.raises(OSError):
        cache.read_plain(tmp_path / "link", 100)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        cache.read_plain(tmp_path / "fifo", 100)
    with pytest.raises(OSError, match="not a regular file"):
        cache.read_plain(tmp_path, 100)


def test_a_ray_bundle_cannot_write_outside_the_cache(fresh_cache, tmp_path):
    from pipeline.batch import install_bundle

    for rel in ("../outside/planted", str(tmp_path / "outside" / "planted"), "derived/../../outside/planted"):
        with pytest.raises(ValueError, match="outside the cache"):
            install_bundle({rel: b"evil"})
    assert everything_under(tmp_path / "outside") == set()
    assert install_bundle({"derived/x/ok.json": b"{}"}) == 1
    assert (fresh_cache / "derived" / "x" / "ok.json").read_bytes() == b"{}"


def test_pieces_spell_the_prompt_check():
    assert untrusted.spells(["The", " cap", "ital"], "The capital")
    assert untrusted.spells(["<bos>", "東", "京"], "東京")
    assert untrusted.spells(["<0xE6>", "<0x9D><0xB1>"], "東")  # a character split over tokens
    assert untrusted.spells(["<0x41>"], "<0x41>")  # the prompt's own text that looks like a byte
    assert not untrusted.spells(["The", " cap"], "The capital")
    assert not untrusted.spells(["<bos>", "<bos>", "x"], "x")
