"""The canonical description of a decoder-only transformer.

Every loader (GGUF, Hugging Face folder) produces one `ModelConfig` plus a dict of weights
named as in `model/transformer.py`, so the rest of the project never cares where a model
came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    name: str  # human-readable, e.g. "SmolLM2-135M-Instruct"
    family: Literal["gpt2", "llama"]
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
    activation: Literal["gelu", "gelu_new", "silu"] = "gelu_new"
    tied_embeddings: bool = False

    # The two families differ in four places; everything else is shared.
    @property
    def positional(self) -> str:
        return "learned" if self.family == "gpt2" else "rotary"

    @property
    def norm(self) -> str:
        return "layernorm" if self.family == "gpt2" else "rmsnorm"

    @property
    def gated_mlp(self) -> bool:
        return self.family == "llama"

    @property
    def has_biases(self) -> bool:
        return self.family == "gpt2"

    @property
    def heads_per_kv(self) -> int:
        return self.n_heads // self.n_kv_heads

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
        if self.family not in ("gpt2", "llama"):
            raise UserError(f"model config: unknown family {self.family!r} (this tool knows gpt2 and llama)")
        if self.activation not in ("gelu", "gelu_new", "silu"):
            raise UserError(f"model config: unknown activation {self.activation!r} (this tool knows gelu, gelu_new and silu)")
        if not (isinstance(self.norm_eps, (int, float)) and 0 < self.norm_eps < 1):
            raise UserError(f"model config has an impossible norm epsilon: {self.norm_eps!r}")
        if self.positional == "rotary" and not (isinstance(self.rope_base, (int, float)) and self.rope_base > 1):
            raise UserError(f"model config has an impossible rotary base: {self.rope_base!r}")
        if self.family == "llama" and self.d_head % 2:
            raise UserError(f"model config: rotary embeddings need an even head size, not {self.d_head}")
