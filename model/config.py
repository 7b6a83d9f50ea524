"""The canonical description of a decoder-only transformer.

Every loader (GGUF, Hugging Face folder) produces one `ModelConfig` plus a dict of weights
named as in `model/transformer.py`, so the rest of the project never cares where a model
came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal


FAMILIES = ("gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3")
ACTIVATIONS = ("gelu", "gelu_new", "gelu_tanh", "silu")


@dataclass(frozen=True)
class ModelConfig:
    name: str  # human-readable, e.g. "SmolLM2-135M-Instruct"
    family: Literal["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"]
    n_layers: int
    d_model: int
    n_heads: int  # query heads
    n_kv_heads: int  # key/value heads (== n_heads unless grouped-query attention)
    d_head: int
    d_mlp: int
    vocab_size: int
    n_ctx: int  # longest context the model was trained for
    norm_eps: float
    rope_base: float = 10000.0  # only used when positional == "rotary"
    activation: Literal["gelu", "gelu_new", "gelu_tanh", "silu"] = "gelu_new"
    tied_embeddings: bool = False
    # Gemma 3's additions, read from the checkpoint's config; the defaults are GPT-2's and Llama's.
    embed_scale: float = 1.0  # the embedding row is multiplied by this (Gemma: sqrt(d_model))
    qk_norm: bool = False  # each head's query and key are RMS-normalised (own weights) before RoPE
    post_norms: bool = False  # "sandwich": attention's and the MLP's outputs are normalised again before they are added
    sliding_window: int = 0  # local layers: a query sees only the last sliding_window tokens, itself included (0: none)
    local_layers: tuple[int, ...] = ()  # the layers that use the sliding window; the others see every earlier token
    rope_base_local: float = 0.0  # local layers' rotary base (0: the same as rope_base)
    query_pre_attn_scalar: float = 0.0  # attention scores are divided by sqrt of this (0: sqrt(d_head))
    # Qwen2's addition: queries, keys and values each get a bias (GPT-2 has these and more: has_biases).
    qkv_bias: bool = False
    # Gemma 2's additions: scores and logits squashed smoothly into (-c, c) by c * tanh(x / c) (0: not at all).
    attn_softcap: float = 0.0  # attention scores, after the division and before the mask
    final_softcap: float = 0.0  # the output logits
    # A norm's weight is always stored as the factor it multiplies by. Gemma's checkpoints store w
    # and multiply by (1 + w); the loaders add the 1 (llama.cpp's GGUF converter already has), as
    # TransformerLens does, so "hook_normalized * w" is what the next sub-layer reads in every family.

    def __post_init__(self):
        object.__setattr__(self, "local_layers", tuple(int(L) for L in self.local_layers))  # JSON gives a list

    # The families differ in a few places; everything else is shared.
    @property
    def positional(self) -> str:
        return "learned" if self.family == "gpt2" else "rotary"

    @property
    def norm(self) -> str:
        return "layernorm" if self.family == "gpt2" else "rmsnorm"

    @property
    def gated_mlp(self) -> bool:
        return self.family != "gpt2"

    @property
    def has_biases(self) -> bool:
        """Every projection has a bias (GPT-2): Q, K, V, O and both MLP matrices."""
        return self.family == "gpt2"

    @property
    def qkv_biases(self) -> bool:
        """Do queries, keys and values get a bias added (hook_q = x @ W_Q + b_Q)?"""
        return self.has_biases or self.qkv_bias

    @property
    def heads_per_kv(self) -> int:
        return self.n_heads // self.n_kv_heads

    def is_local(self, layer: int) -> bool:
        """Does this layer attend only within the sliding window?"""
        return self.sliding_window > 0 and layer in self.local_layers

    def rope_base_for(self, layer: int) -> float:
        """The rotary base this layer's queries and keys are turned with."""
        return self.rope_base_local if self.is_local(layer) and self.rope_base_local else self.rope_base

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

    def validate(self) -> None:
        from .errors import UserError

        for field in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_head", "d_mlp", "vocab_size", "n_ctx"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0 or value > 1 << 24:
                raise UserError(f"model config has an impossible {field}: {value!r}")
        if self.n_heads % self.n_kv_heads:
            raise UserError(f"model config: {self.n_heads} query heads cannot share {self.n_kv_heads} key/value heads")
        if self.family not in FAMILIES:
            raise UserError(f"model config: unknown family {self.family!r} (this tool knows {', '.join(FAMILIES)})")
        if self.activation not in ACTIVATIONS:
            raise UserError(f"model config: unknown activation {self.activation!r} (this tool knows {', '.join(ACTIVATIONS)})")
        if not (isinstance(self.embed_scale, (int, float)) and 0 < self.embed_scale < 1e6):
            raise UserError(f"model config has an impossible embedding scale: {self.embed_scale!r}")
        if not (isinstance(self.sliding_window, int) and self.sliding_window >= 0):
            raise UserError(f"model config has an impossible sliding window: {self.sliding_window!r}")
        if any(not 0 <= L < self.n_layers for L in self.local_layers):
            raise UserError(f"model config: local layers {list(self.local_layers)} lie outside 0..{self.n_layers - 1}")
        if self.rope_base_local and not (isinstance(self.rope_base_local, (int, float)) and self.rope_base_local > 1):
            raise UserError(f"model config has an impossible local rotary base: {self.rope_base_local!r}")
        if not (isinstance(self.query_pre_attn_scalar, (int, float)) and self.query_pre_attn_scalar >= 0):
            raise UserError(f"model config has an impossible query_pre_attn_scalar: {self.query_pre_attn_scalar!r}")
        if not isinstance(self.qkv_bias, bool):
            raise UserError(f"model config: qkv_bias must be true or false, not {self.qkv_bias!r}")
        for field in ("attn_softcap", "final_softcap"):
            value = getattr(self, field)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value < 1e6):
                raise UserError(f"model config has an impossible {field}: {value!r} (0 for none, else the cap c > 0)")
        if not (isinstance(self.norm_eps, (int, float)) and 0 < self.norm_eps < 1):
            raise UserError(f"model config has an impossible norm epsilon: {self.norm_eps!r}")
        if self.positional == "rotary" and not (isinstance(self.rope_base, (int, float)) and self.rope_base > 1):
            raise UserError(f"model config has an impossible rotary base: {self.rope_base!r}")
        if self.positional == "rotary" and self.d_head % 2:
            raise UserError(f"model config: rotary embeddings need an even head size, not {self.d_head}")
