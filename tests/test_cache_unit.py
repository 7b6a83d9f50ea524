"""model/cache.py's atomic writes, checksummed JSON entries and the `cached` decorator.

Fast unit tests in a temporary directory: no model, no real cache.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from model import cache
from conftest import ROOT


def fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask):
        os.umask(mask)

    yield set_mask
    os.umask(old)


# --------------------------------------------------------------------------- atomic_path


def test_atomic_write_creates_parents_and_leaves_only_the_file(tmp_path):
    path = tmp_path / "a" / "b" / "entry.txt"
    cache.atomic_write_text(path, "caf\u00e9\n")
    assert path.read_bytes() == "caf\u00e9\n".encode("utf-8")
    assert os.listdir(path.parent) == ["entry.txt"]
    cache.atomic_write_text(path, "second")  # the directory exists now: no error
    assert path.read_text() == "second"
    assert os.listdir(path.parent) == ["entry.txt"]


def test_atomic_path_temporary_is_hidden_beside_the_target(tmp_path):
    target = tmp_path / "value.json"
    before = fds()
    with cache.atomic_path(str(target)) as tmp:  # a str is accepted too
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".value.json.") and tmp.name.endswith(".tmp")
        assert tmp.exists() and not target.exists()
        tmp.write_text("x")
    assert fds() == before  # mkstemp's descriptor is closed
    assert target.read_text() == "x"
    assert os.listdir(tmp_path) == ["value.json"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_path_keeps_the_old_file_on_error(tmp_path, error):
    target = tmp_path / "value.txt"
    target.write_text("old")
    with pytest.raises(type(error)):
        with cache.atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise error
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["value.txt"]


def test_atomic_path_error_without_a_previous_file(tmp_path):
    target = tmp_path / "new.txt"
    with pytest.raises(ValueError, match="bad"):
        with cache.atomic_path(target):
            raise ValueError("bad")
    assert os.listdir(tmp_path) == []


def test_atomic_path_error_after_the_temporary_vanished(tmp_path):
    """The caller's error is what propagates, not a FileNotFoundError from the clean-up."""
    target = tmp_path / "new.txt"
    with pytest.raises(ValueError, match="bad"):
        with cache.atomic_path(target) as tmp:
            tmp.unlink()
            raise ValueError("bad")
    assert os.listdir(tmp_path) == []


def test_atomic_path_body_that_never_writes_gives_an_empty_file(tmp_path):
    target = tmp_path / "empty"
    with cache.atomic_path(target):
        pass
    assert target.read_bytes() == b""


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)])
def test_file_mode_follows_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = tmp_path / "f.txt"
    cache.atomic_write_text(path, "x")
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_current_umask_reads_without_changing(umask):
    umask(0o027)
    assert cache.current_umask() == 0o027
    assert cache.current_umask() == 0o027  # still set after the first read
    umask(0o002)
    assert cache.current_umask() == 0o002


# --------------------------------------------------------------------------- checksummed JSON


VALUES = [{"b": 1, "a": [1, 2.5, None]}, "caf\u00e9 \u2212", [], 0, None, {"z": {"y": 1, "x": 2}}]


@pytest.mark.parametrize("value", VALUES)
def test_json_round_trip(tmp_path, value):
    path = tmp_path / "e.json"
    cache.write_json(path, value)
    assert cache.read_json(path) == value
    assert os.listdir(tmp_path) == ["e.json"]


def test_json_entry_is_readable_utf8_with_its_hash(tmp_path):
    path = tmp_path / "e.json"
    cache.write_json(path, {"word": "caf\u00e9"})
    text = path.read_text(encoding="utf-8")
    assert "caf\u00e9" in text  # not escaped
    entry = json.loads(text)
    assert set(entry) == {"sha256", "value"}
    assert entry["sha256"] == cache.sha256_text('{"word": "caf\u00e9"}')
    cache.write_json(path, {"b": 1, "a": 2})  # hash of the canonical (sorted) JSON
    assert json.loads(path.read_text())["sha256"] == cache.sha256_text('{"a": 2, "b": 1}')


def write_entry(path, entry):
    path.write_text(json.dumps(entry), encoding="utf-8")


def test_read_json_rejects_an_edited_value(tmp_path):
    path = tmp_path / "e.json"
    cache.write_json(path, {"a": 1})
    entry = json.loads(path.read_text())
    entry["value"]["a"] = 2
    write_entry(path, entry)
    with pytest.raises(ValueError, match="e.json fails its checksum"):
        cache.read_json(path)


@pytest.mark.parametrize("entry", [
    [1, 2],
    ["sha256", "value"],
    {"value": 1},
    {"sha256": "0" * 64},
    "just a string",
    {"sha256": cache.sha256_text("1"), "value": 1, "extra": 0},
])
def test_read_json_rejects_what_is_not_an_entry(tmp_path, entry):
    path = tmp_path / "e.json"
    write_entry(path, entry)
    with pytest.raises(ValueError, match="e.json is not a cache entry"):
        cache.read_json(path)


def test_read_json_rejects_damaged_files(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(ValueError, match=r"^cache entry missing.json cannot be read \(.*No such file.*\)$"):
        cache.read_json(missing)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="binary.json cannot be read"):
        cache.read_json(binary)
    truncated = tmp_path / "truncated.json"
    cache.write_json(truncated, {"a": 1})
    truncated.write_text(truncated.read_text()[:-3])
    with pytest.raises(ValueError):  # json.JSONDecodeError is a ValueError
        cache.read_json(truncated)


# --------------------------------------------------------------------------- the cached decorator


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """cache_dir() in tmp_path, an empty memory, and a code version the test controls."""
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path))
    monkeypatch.setattr(cache, "_MEMORY", type(cache._MEMORY)())
    version = {"now": "v1", "asked": []}

    def code_version(*packages):
        version["asked"].append(packages)
        return version["now"] + ",".join(packages)

    monkeypatch.setattr(cache, "code_version", code_version)
    return version


def counting(kind="unit", **options):
    calls = []

    @cache.cached(kind, **options)
    def square(x, scale=1):
        calls.append((x, scale))
        return {"x": x, "sq": (x * x * scale,)}

    return square, calls


def test_cached_memory_disk_and_code_version(isolated, tmp_path):
    square, calls = counting()
    assert square(3) == {"x": 3, "sq": [9]}  # passed through JSON: the tuple is a list
    assert square(3) == {"x": 3, "sq": [9]}
    assert calls == [(3, 1)]
    assert square(3, scale=1) == {"x": 3, "sq": [9]}  # defaults are part of the key either way
    assert calls == [(3, 1)]
    files = list((tmp_path / "derived" / "unit").iterdir())
    assert len(files) == 1 and cache.read_json(files[0]) == {"x": 3, "sq": [9]}

    cache._MEMORY.clear()
    assert square(3) == {"x": 3, "sq": [9]}  # from disk
    assert calls == [(3, 1)]

    assert square(3, 2) == {"x": 3, "sq": [18]}
    assert calls == [(3, 1), (3, 2)]

    isolated["now"] = "v2"  # the code changed: every value is recomputed
    assert square(3) == {"x": 3, "sq": [9]}
    assert calls == [(3, 1), (3, 2), (3, 1)]
    assert len(list((tmp_path / "derived" / "unit").iterdir())) == 3
    assert square.uncached(4) == {"x": 4, "sq": (16,)}


def test_cached_key_includes_the_function_and_packages(isolated, tmp_path):
    square, calls = counting()
    other, other_calls = counting(packages=("model",))
    square(2)
    other(2)  # same module, same qualname, but other packages hash to another version
    assert isolated["asked"] == [("model", "facts"), ("model",)]  # by default, the code of model/ and facts/
    assert calls == [(2, 1)] and other_calls == [(2, 1)]


def test_cached_recomputes_a_damaged_entry(isolated, tmp_path):
    square, calls = counting()
    square(5)
    (entry,) = (tmp_path / "derived" / "unit").iterdir()
    entry.write_text(entry.read_text().replace("25", "26"))
    cache._MEMORY.clear()
    assert square(5) == {"x": 5, "sq": [25]}
    assert calls == [(5, 1), (5, 1)]
    assert cache.read_json(entry) == {"x": 5, "sq": [25]}  # rewritten


def test_cached_memory_is_a_bounded_lru(isolated, monkeypatch):
    monkeypatch.setattr(cache, "_MEMORY_SIZE", 3)
    square, calls = counting()
    for x in (1, 2, 3):
        square(x)
    square(1)  # 1 becomes the most recent
    square(4)  # evicts 2, the least recent
    assert [v["x"] for v in cache._MEMORY.values()] == [3, 1, 4]
    assert len(cache._MEMORY) == 3


def test_two_processes_missing_one_key_compute_it_once(tmp_path):
    """Under the key's lock, the second process waits and reads what the first wrote."""
    import subprocess
    import sys

    code = f"""
import os, sys, time
sys.path.insert(0, {str(ROOT)!r})
from model.cache import cached

@cached("race", packages=())
def slow(x):
    with open({str(tmp_path / 'calls')!r}, "a") as f:
        f.write(f"{{os.getpid()}}\\n")
    time.sleep(1.0)
    return {{"x": x, "pid": os.getpid()}}

print(slow(1)["pid"])
"""
    env = {**os.environ, "MANIM_TRANSFORMER_CACHE": str(tmp_path / "cache")}
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [r.communicate(timeout=60)[0].strip() for r in runs]
    assert all(r.returncode == 0 for r in runs)
    assert len((tmp_path / "calls").read_text().split()) == 1  # computed once
    assert outs[0] == outs[1]  # both got the first writer's value
