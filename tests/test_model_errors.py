"""Bad input reaches the user as one clear line and exit code 2, never a traceback."""

import json
import pickle
import subprocess
import sys

import pytest

from conftest import ROOT
from model import loading
from model.errors import UserError


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


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt"])
def test_pickle_checkpoint_in_a_folder_is_refused_unopened(tmp_path, name):
    marker = tmp_path / "pwned"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 8, "vocab_size": 10}))
    (tmp_path / name).write_bytes(pickle.dumps(Exploit(marker)))
    with pytest.raises(UserError, match="pickle"):
        loading.load(str(tmp_path), "cpu")
    assert not marker.exists()


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


# The CLI's other bad-input cases (prompts, model files, a pickle via the CLI, options) are rows of
# tests/bad_input_cases.json, run by tests/test_reliability.py.
