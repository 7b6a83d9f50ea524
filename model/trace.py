"""A Trace: everything one forward pass computed, for one model and one prompt.

Tensor names follow TransformerLens, without the batch dimension:

    hook_embed                       [pos, d_model]   token embeddings (rows of W_E; times embed_scale, sqrt(d_model), on Gemma)
    hook_pos_embed                   [pos, d_model]   learned position embeddings (GPT-2 only)
    blocks.L.hook_resid_pre          [pos, d_model]   residual stream entering block L
    blocks.L.ln1.hook_scale          [pos, 1]         the norm's divisor: sqrt(mean(x^2) + eps) (x centred first for LayerNorm)
    blocks.L.ln1.hook_normalized     [pos, d_model]   x / scale, before the norm's learned weight (and bias);
                                                      attention reads hook_normalized * w (+ b)
    blocks.L.attn.hook_q             [pos, n_heads, d_head]   queries, x @ W_Q (+ b_Q), before any rotation
    blocks.L.attn.hook_k / hook_v    [pos, n_kv, d_head]      keys and values
    blocks.L.attn.q_norm.hook_scale / hook_normalized        QK-norm models (Gemma): each head's query, as ln1,
    blocks.L.attn.k_norm.hook_scale / hook_normalized        over d_head; the same for keys
    blocks.L.attn.hook_q_normed      [pos, n_heads, d_head]   QK-norm models: q_norm.hook_normalized * q_norm.w, what RoPE turns
    blocks.L.attn.hook_k_normed      [pos, n_kv, d_head]      QK-norm models: the keys, likewise
    blocks.L.attn.hook_rot_q         [pos, n_heads, d_head]   rotary models: queries turned by RoPE (what q.k uses)
    blocks.L.attn.hook_rot_k         [pos, n_kv, d_head]      rotary models: keys turned by RoPE
    blocks.L.attn.hook_attn_scores   [n_heads, q_pos, k_pos]  q.k / sqrt(d_head), future = -inf (and, on a
                                                              sliding-window layer, keys >= window back);
                                                              Gemma divides by sqrt(query_pre_attn_scalar)
    blocks.L.attn.hook_pattern       [n_heads, q_pos, k_pos]  softmax over keys: rows sum to 1
    blocks.L.attn.hook_z             [pos, n_heads, d_head]   pattern-weighted sum of values
    blocks.L.attn.hook_result        [pos, n_heads, d_model]  each head's output, z @ W_O[h]
    blocks.L.ln1_post.hook_scale / hook_normalized     sandwich-norm models (Gemma): the norm of the summed heads
    blocks.L.hook_attn_out           [pos, d_model]   sum of hook_result over heads (+ b_O); with sandwich norms
                                                      that sum after ln1_post: what the residual stream receives
    blocks.L.hook_resid_mid          [pos, d_model]   resid_pre + attn_out
    blocks.L.ln2.hook_scale / hook_normalized          the MLP's norm, as ln1
    blocks.L.mlp.hook_pre            [pos, d_mlp]     what the nonlinearity reads: x @ W_in (+ b_in), or on
                                                      gated MLPs the gate x @ W_gate
    blocks.L.mlp.hook_pre_linear     [pos, d_mlp]     gated MLPs: the up-projection x @ W_in
    blocks.L.mlp.hook_post           [pos, d_mlp]     neuron values: act(pre), or act(pre) * pre_linear
    blocks.L.ln2_post.hook_scale / hook_normalized     sandwich-norm models: the norm of hook_post @ W_out
    blocks.L.hook_mlp_out            [pos, d_model]   hook_post @ W_out (+ b_out); with sandwich norms, after ln2_post
    blocks.L.hook_resid_post         [pos, d_model]   resid_mid + mlp_out
    ln_final.hook_scale / hook_normalized              the final norm, as ln1
    logits                           [pos, vocab]     next-token scores at every position

The names and their meanings are TransformerLens's (a norm's output after its weight has no
hook there, and none here: `facts.attention.norm_output` computes it from the weights).

With grouped-query attention, query head h reads key/value head h // (n_heads // n_kv).
A trace is saved as FILE.safetensors (tensors) + FILE.json (metadata) and cached on disk
under (model fingerprint, prompt, the code of model/), so a prompt seen once never runs the
model again, and a trace made by other code is never read back.
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .config import ModelConfig
from .errors import UserError
from .cache import atomic_path, atomic_write_text, cache_dir, code_version, computing, sha256_file, sha256_text
from .loading import DEFAULT_MODEL, LoadedModel, load, resolve
from .tokenizer import check_prompt, token_pieces, unencodable  # noqa: F401 (check_prompt: also imported from here)

TRACE_FORMAT = "1"
MAX_PROMPT_TOKENS = 256  # the most this tool traces and draws, whatever the model's context


@dataclass
class Trace:
    tensors: dict[str, torch.Tensor]
    meta: dict

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"trace has no tensor {name!r}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    @property
    def prompt(self) -> str:
        return self.meta["prompt"]

    @property
    def tokens(self) -> list[int]:
        return self.meta["tokens"]

    @property
    def pieces(self) -> list[str]:
        return self.meta["pieces"]

    @cached_property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.meta["config"])

    @property
    def hash(self) -> str:
        return self.meta["trace_hash"]

    def save(self, path: Path) -> None:
        """Write PATH (.safetensors) and PATH with .json; each appears whole or not at all."""
        path = Path(path)
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(tmp))
            self.meta["trace_hash"] = sha256_file(tmp)
        self.meta.pop("meta_sha256", None)
        self.meta["meta_sha256"] = meta_checksum(self.meta)
        atomic_write_text(path.with_suffix(".json"), json.dumps(self.meta, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> "Trace":
        """Read a saved trace; a file whose hash disagrees with its metadata is refused."""
        path = Path(path)
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("trace_format") != TRACE_FORMAT:
                raise ValueError("not a trace of this version")
            if meta.get("meta_sha256") != meta_checksum(meta) or sha256_file(path) != meta.get("trace_hash"):
                raise ValueError("hash mismatch: the tensors or the metadata were changed")
            return cls(load_file(path), meta)
        except (OSError, ValueError, TypeError) as e:
            raise UserError(f"trace {path} is damaged or from another version ({e})") from None


def meta_checksum(meta: dict) -> str:
    """sha256 of a trace's metadata (prompt, tokens, pieces, model ...) without its own checksum:
    an edited cached trace can never put made-up tokens on screen."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return sha256_text(json.dumps(body, sort_keys=True, ensure_ascii=False))


def encode_prompt(loaded: LoadedModel, prompt: str) -> list[int]:
    bad = unencodable(loaded.encoding, check_prompt(prompt))
    if bad is not None:
        raise UserError(f"the prompt contains U+{ord(bad):04X}, which this model's vocabulary cannot spell; remove it")
    ids = loaded.encoding.encode(check_prompt(prompt), allowed_special=set(), disallowed_special=())
    ids = list(getattr(loaded.encoding, "prefix", ())) + ids  # e.g. Gemma's <bos>, which every text starts with
    limit = min(loaded.config.n_ctx, MAX_PROMPT_TOKENS)
    if len(ids) > limit:
        raise UserError(f"the prompt is {len(ids)} tokens long; at most {limit} are accepted "
                        f"(model context {loaded.config.n_ctx}, tool limit {MAX_PROMPT_TOKENS})")
    return ids


@functools.cache
def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("manim-transformer", "torch", "numpy", "tiktoken", "gguf", "safetensors", "manim"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


@contextlib.contextmanager
def one_thread():
    """Run torch on one CPU thread inside: a matrix product split over more threads sums in
    another order, so its last bits (and a trace's hash) would depend on the machine's cores and
    on how many renders share them. One thread costs little at these sizes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_trace(loaded: LoadedModel, prompt: str) -> Trace:
    """One forward pass, recording every hook."""
    ids = encode_prompt(loaded, prompt)
    cache: dict[str, torch.Tensor] = {}
    with one_thread():
        loaded.model(torch.tensor(ids, device=loaded.device), cache)
    tensors, seen = {}, set()
    for name, t in cache.items():  # e.g. blocks.3.hook_resid_pre *is* blocks.2.hook_resid_post: give each its own storage
        t = t.to("cpu", torch.float32)
        tensors[name] = t.clone() if t.data_ptr() in seen else t
        seen.add(t.data_ptr())
    meta = {
        "trace_format": TRACE_FORMAT,
        "prompt": prompt,
        "tokens": ids,
        "pieces": token_pieces(loaded.encoding, ids),
        "model": {"name": loaded.source.name, "display_name": loaded.source.display_name,
                  "fingerprint": loaded.fingerprint, "path": str(loaded.source.path), "kind": loaded.source.kind},
        "config": loaded.config.to_dict(),
        "device": str(loaded.device),
        "dtype": "float32",
        "versions": library_versions(),
    }
    return Trace(tensors, meta)


def cache_path(fingerprint: str, prompt: str) -> Path:
    """Keyed by the checkpoint, the prompt and the code of model/: a trace made by other code is never read."""
    return cache_dir() / "traces" / f"{sha256_text(fingerprint, prompt, TRACE_FORMAT, code_version('model'))}.safetensors"


def get_trace(prompt: str, model: str = DEFAULT_MODEL, device: str = "auto", loaded: LoadedModel | None = None) -> Trace:
    """The trace for (model, prompt): from the cache when it is there, else from one forward pass."""
    check_prompt(prompt)
    source = loaded.source if loaded else resolve(model)
    path = cache_path(source.fingerprint, prompt)
    with computing(path):  # one process computes a missing trace; the others wait and read it
        if path.is_file() and path.with_suffix(".json").is_file():
            try:
                return Trace.load(path)
            except UserError:
                pass  # damaged entry: rebuilt below
        trace = run_trace(loaded or load(model, device), prompt)
        trace.save(path)
        return trace
