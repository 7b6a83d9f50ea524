"""Checks on what this tool reads but did not write: a checkpoint folder's config.json, a model's
weights and vocabulary, and a trace read back from the cache.

A checkpoint is refused with one UserError line when its config.json is not a JSON object of
plain values (a count that is a fraction, a flag, Infinity or a list; a settings table that is a
string), when a weight holds NaN or an infinity, or when the tokenizer makes ids the embedding has
no row for.

A cached trace is believed only when it is about what was asked (the prompt, the checkpoint's
fingerprint and names) and holds together (ids inside the vocabulary, one piece per token, the
pieces spelling the prompt, every per-position tensor as long as the token list, a valid config);
with the model's tokenizer at hand, its ids and pieces must be the tokenizer's own. Anything else is
removed and computed afresh (`trusted_trace`). The cache files themselves must be regular files of a
sane size: a link, a folder or a pipe planted at an entry's name is removed before the trace is read.

What this cannot catch: someone who rewrites a cache entry whole and consistently (new tensors,
recomputed checksums, token ids the tokenizer would also give). The cache is a store of this
user's own results, not a signed archive; anyone who can write it can also run the tool.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from .cache import computing, read_plain
from .errors import UserError

MAX_CONFIG_BYTES = 4 << 20  # the largest real config.json is a few kB
MAX_TRACE_JSON_BYTES = 16 << 20  # a trace's metadata: 256 tokens, their pieces, the config, versions

# config.json fields by the kind of value every family's reader expects (a field a family does not use
# is checked all the same: a wrong type there is a broken file either way). null means "the default".
WHOLE = ("n_embd", "n_layer", "n_head", "n_positions", "n_inner", "vocab_size", "hidden_size", "num_hidden_layers",
         "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size", "max_position_embeddings",
         "sliding_window", "sliding_window_pattern", "_sliding_window_pattern", "max_window_layers",
         "original_max_position_embeddings")
POSITIVE = ("n_embd", "n_layer", "n_head", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "vocab_size")  # sizes and counts that divide or index: at least 1
REAL = ("layer_norm_epsilon", "rms_norm_eps", "rope_theta", "rope_local_base_freq", "query_pre_attn_scalar",
        "partial_rotary_factor", "final_logit_softcapping", "attn_logit_softcapping")
TEXT = ("model_type", "hidden_act", "activation_function", "hidden_activation")
FLAG = ("tie_word_embeddings", "attention_bias", "mlp_bias", "use_sliding_window", "use_bidirectional_attention")
TABLE = ("rope_scaling", "rope_parameters")


def read_config_json(folder: Path) -> dict:
    """config.json of a checkpoint folder, as a dict of plain values, or a UserError saying what is wrong."""
    path = folder / "config.json"
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a file")
    try:
        text = read_plain(path.resolve(), MAX_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{folder} has no config.json (a Hugging Face model folder needs one)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    try:
        config = json.loads(text)
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} must hold a JSON object of settings, not a {type(config).__name__}")
    check_config_values(config, path)
    return config


def check_config_values(config: dict, where: Path | str) -> None:
    """Refuse a config.json value of the wrong kind, and any number that is not finite, anywhere in it."""
    def bad(key: str, value, wanted: str):
        raise UserError(f"{where}: {key} must be {wanted}, not {json.dumps(value)[:60]}")

    for key, value in config.items():
        if value is None:
            continue
        if key in WHOLE and (isinstance(value, bool) or not isinstance(value, int)):
            bad(key, value, "a whole number")
        if key in POSITIVE and value < 1:
            bad(key, value, "at least 1")
        if key in REAL and (isinstance(value, bool) or not isinstance(value, (int, float))):
            bad(key, value, "a number")
        if key in TEXT and not isinstance(value, str):
            bad(key, value, "a string")
        if key in FLAG and not isinstance(value, bool):
            bad(key, value, "true or false")
        if key in TABLE and not isinstance(value, dict):
            bad(key, value, "a table (JSON object)")
        if key == "layer_types" and not (isinstance(value, list) and all(isinstance(t, str) for t in value)):
            bad(key, value, "a list of strings")

    def finite(value, key: str):
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{where}: {key} is {value}, not a finite number")
        if isinstance(value, dict):
            for k, v in value.items():
                finite(v, f"{key}.{k}")
        if isinstance(value, list):
            for v in value:
                finite(v, key)

    finite(config, "config")


def check_finite(weights: dict, where: str) -> None:
    """Every weight is a finite number: a NaN or an infinity would poison every value drawn from it."""
    import torch

    for name in sorted(weights):
        t = weights[name]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise UserError(f"{where}: weight {name} holds {bad} NaN or infinite value(s): the checkpoint is damaged")


def check_vocabulary(encoding, vocab_size: int, where: str) -> None:
    """The tokenizer never makes an id the embedding has no row for."""
    largest = getattr(encoding, "max_token_value", None)
    if largest is None:
        largest = encoding.n_vocab - 1
    if largest >= vocab_size:
        raise UserError(f"{where}: the tokenizer has ids up to {largest}, but the model's vocabulary has only "
                        f"{vocab_size} rows: the tokenizer belongs to another model")


# --------------------------------------------------------------------------- traces read back from the cache

def entry_files(path: Path) -> list[Path]:
    return [path, path.with_suffix(".json")]


def clear_odd_entry(path: Path) -> bool:
    """Remove a trace entry's files when either is not a plain file (a link, a folder, a pipe) or its
    JSON is absurdly large. Returns True when something was removed."""
    removed = False
    for file in entry_files(path):
        try:
            info = file.lstat()
        except FileNotFoundError:
            continue
        import stat

        odd = not stat.S_ISREG(info.st_mode) or (file.suffix == ".json" and info.st_size > MAX_TRACE_JSON_BYTES)
        if odd:
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(file, ignore_errors=True)
            else:
                file.unlink(missing_ok=True)
            removed = True
    return removed


def trace_problem(trace, prompt: str, source, loaded=None) -> str | None:
    """What is wrong with a trace read back for (prompt, source), or None when it holds together."""
    from .config import ModelConfig
    from .tokenizer import token_pieces

    meta = trace.meta
    try:
        if meta.get("prompt") != prompt:
            return "it is the trace of another prompt"
        model = meta.get("model")
        if not isinstance(model, dict) or model.get("fingerprint") != source.fingerprint:
            return "it is the trace of another checkpoint"
        if model.get("display_name") != source.display_name or model.get("kind") != source.kind:
            return "its model names differ from the checkpoint's"
        config = ModelConfig.from_dict(meta["config"])
        config.validate()
        tokens, pieces = meta.get("tokens"), meta.get("pieces")
        if not (isinstance(tokens, list) and tokens and all(type(t) is int and 0 <= t < config.vocab_size for t in tokens)):
            return "its token ids are not ids of this vocabulary"
        if not (isinstance(pieces, list) and len(pieces) == len(tokens) and all(isinstance(p, str) for p in pieces)):
            return "its pieces do not match its tokens one to one"
        if not spells(pieces, prompt):
            return "its pieces do not spell the prompt"
        n = len(tokens)
        for name in ("hook_embed", "logits", f"blocks.{config.n_layers - 1}.hook_resid_post"):
            if name not in trace.tensors or trace.tensors[name].shape[0] != n:
                return f"its tensor {name} does not have one row per token"
        if tuple(trace.tensors["logits"].shape) != (n, config.vocab_size):
            return "its logits do not cover the vocabulary"
        if loaded is not None:
            from .trace import encode_prompt

            if json.loads(json.dumps(loaded.config.to_dict())) != json.loads(json.dumps(meta["config"])):
                return "its config differs from the checkpoint's"
            if tokens != encode_prompt(loaded, prompt):
                return "its token ids are not the tokenizer's for this prompt"
            if pieces != token_pieces(loaded.encoding, tokens):
                return "its pieces are not the tokenizer's"
    except UserError as e:
        return f"it is invalid ({e})"
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        return f"it is malformed ({type(e).__name__})"
    return None


def piece_bytes(piece: str) -> bytes:
    """A piece back to its bytes: <0xE2> spellings (part of a character) are bytes, the rest UTF-8."""
    out, i = bytearray(), 0
    while i < len(piece):
        if piece.startswith("<0x", i) and piece[i + 5:i + 6] == ">":
            try:
                out.append(int(piece[i + 3:i + 5], 16))
                i += 6
                continue
            except ValueError:
                pass
        out += piece[i].encode("utf-8", "surrogatepass")
        i += 1
    return bytes(out)


def spells(pieces: list[str], prompt: str) -> bool:
    """Do the pieces, joined, give the prompt (after at most one start token such as Gemma's <bos>)?
    A piece is read as its own text or, where it spells bytes like <0xE2>, as those bytes: a prompt
    may hold the text "<0x41>" itself."""
    target = prompt.encode("utf-8")

    def rest(i: int, at: int, seen: set) -> bool:
        if i == len(pieces):
            return at == len(target)
        if (i, at) in seen:
            return False
        seen.add((i, at))
        readings = {pieces[i].encode("utf-8", "surrogatepass"), piece_bytes(pieces[i])}
        return any(target.startswith(r, at) and rest(i + 1, at + len(r), seen) for r in readings)

    return any(rest(skip, 0, set()) for skip in (0, 1) if skip <= len(pieces))


def trusted_trace(prompt: str, model: str | None = None, device: str = "auto", loaded=None):
    """`model.trace.get_trace`, but a cached trace that fails `trace_problem` is removed and computed afresh."""
    from .loading import DEFAULT_MODEL, resolve
    from .trace import cache_path, check_prompt, get_trace

    model = model or DEFAULT_MODEL
    check_prompt(prompt)
    source = loaded.source if loaded else resolve(model)
    path = cache_path(source.fingerprint, prompt)
    if any(f.is_symlink() or f.exists() for f in entry_files(path)):
        with computing(path):
            clear_odd_entry(path)
    trace = get_trace(prompt, model, device, loaded)
    problem = trace_problem(trace, prompt, source, loaded)
    if problem is None:
        return trace
    with computing(path):  # not believed: removed, then made again from the model
        for file in entry_files(path):
            file.unlink(missing_ok=True)
    trace = get_trace(prompt, model, device, loaded)
    problem = trace_problem(trace, prompt, source, loaded)
    if problem is not None:  # a trace this process just computed: a bug here, not bad input
        raise RuntimeError(f"a freshly computed trace fails its own check: {problem}")
    return trace
