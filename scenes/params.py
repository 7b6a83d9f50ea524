"""Live parameters of a render, and the list of scenes. Never imports manim (the CLI's `list`
and option checks stay fast).

A scene reads its parameters from environment variables, so the same file renders from
`python render.py render ...` (which sets them for each worker) and from plain manim
(`manim -ql scenes/tokens.py Tokens`, defaults or variables you export):

    MT_PROMPT   the prompt                       (default: The fluffy blue creature roamed the verdant forest)
    MT_MODEL    smollm2-135m, a .gguf file or a Hugging Face folder   (default: smollm2-135m)
    MT_DEVICE   auto | cpu | cuda                (default: auto; only used when a trace is not cached)
    MT_LAYER    layer number or "auto"           (default: auto)
    MT_HEAD     head number or "auto"            (default: auto; see model.analysis.choose_head)
    MT_THEME    dark | light                     (default: dark)
    MT_SEED     integer seed for sampling        (default: 0)
    MT_ANALOGY  word-vectors' second analogy, "uncle-man+woman" or "uncle,man,woman"
                                                 (default: uncle-man+woman)
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

from model.errors import UserError

DEFAULT_PROMPT = "The fluffy blue creature roamed the verdant forest"
DEFAULT_ANALOGY = ("uncle", "man", "woman")
FIRST_ANALOGY = ("king", "man", "woman")

# name -> (module in scenes/, class, one line)
SCENES: dict[str, tuple[str, str, str]] = {
    "overview": ("overview", "Overview", "what the model does, end to end: prompt -> layers -> next-token probabilities, sampled in a loop"),
    "tokens": ("tokens", "Tokens", "text becomes tokens: real tokenizer boundaries, ids, vocabulary size, chars vs tokens"),
    "embeddings": ("embeddings", "Embeddings", "tokens become vectors: rows of W_E, position (learned or rotary), nearest neighbours"),
    "word-vectors": ("word_vectors", "WordVectors", "directions carry meaning: king - man + woman on the model's own embeddings"),
    "orthogonality": ("orthogonality", "Orthogonality", "how much fits in high dimensions: a real experiment packing nearly perpendicular directions"),
    "qkv": ("qkv", "Qkv", "queries and keys: one token's vector times the real W_Q / W_K, every token's q and k, a 2-D view"),
    "attention-pattern": ("attention_pattern", "AttentionPattern", "the grid of q.k, scaled by sqrt(d_head), softmax down each query's column"),
    "softmax": ("softmax", "Softmax", "softmax on the story query's real scores: exp, normalise; temperature 0 / 0.5 / 1 / 2"),
    "masking": ("masking", "Masking", "causal masking: later keys set to -inf, exactly 0 after softmax; the n^2 cost of context"),
    "values": ("values", "Values", "value vectors, the weighted sum (= hook_z), through W_O, and E + delta E for the story token"),
    "multi-head": ("multi_head", "MultiHead", "every head of the layer side by side, each head's real contribution, parameter counts, shared key/value heads"),
    "mlp": ("mlp", "Mlp", "the MLP: one token's vector up-projected, through the real nonlinearity, and back down; which neurons fire"),
    "prediction": ("prediction", "Prediction", "from the last vector to the next token: unembedding, logits, softmax with temperature, seeded samples"),
    "cost": ("cost", "Cost", "how training scores a prediction: p of each real next token, its cost -log p, the curve and the mean"),
    "layers": ("layers", "Layers", "logit lens: final norm + unembedding after every layer, the top token per layer settling on the answer"),
    "kv-cache": ("kv_cache", "KvCache", "the KV cache: earlier keys/values reused, one new column; real multiply-adds with and without it"),
}


def scene_info(name: str) -> tuple[str, str, str]:
    if name not in SCENES:
        raise UserError(f"unknown scene {name!r}: choose from {', '.join(SCENES)} (see `render.py list`)")
    return SCENES[name]


def parse_choice(value: str | None, what: str) -> int | None:
    """'auto' / None / '' -> None; a non-negative integer string -> int; else a UserError."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise UserError(f"--{what} must be a number or 'auto', not {value!r}") from None
    if n < 0:
        raise UserError(f"--{what} must not be negative, not {n}")
    return n


def parse_analogy(text: str) -> tuple[str, str, str]:
    """"uncle-man+woman" or "uncle,man,woman" -> ("uncle", "man", "woman")."""
    m = re.fullmatch(r"\s*([^\s,+\-]+)\s*-\s*([^\s,+\-]+)\s*\+\s*([^\s,+\-]+)\s*", text)
    parts = m.groups() if m else tuple(p.strip() for p in text.split(","))
    if len(parts) != 3 or not all(parts):
        raise UserError(f"an analogy is three words, e.g. uncle-man+woman or uncle,man,woman; not {text!r}")
    return parts  # type: ignore[return-value]


@dataclass(frozen=True)
class Params:
    prompt: str = DEFAULT_PROMPT
    model: str = "smollm2-135m"
    device: str = "auto"
    layer: int | None = None
    head: int | None = None
    theme: str = "dark"
    seed: int = 0
    analogy: tuple[str, str, str] = DEFAULT_ANALOGY

    @classmethod
    def from_env(cls, env=None) -> "Params":
        env = os.environ if env is None else env
        theme = env.get("MT_THEME", "dark") or "dark"
        if theme not in ("dark", "light"):
            raise UserError(f"theme must be dark or light, not {theme!r}")
        try:
            seed = int(env.get("MT_SEED", "0") or 0)
        except ValueError:
            raise UserError(f"seed must be an integer, not {env.get('MT_SEED')!r}") from None
        return cls(
            prompt=env.get("MT_PROMPT") or DEFAULT_PROMPT,
            model=env.get("MT_MODEL") or "smollm2-135m",
            device=env.get("MT_DEVICE") or "auto",
            layer=parse_choice(env.get("MT_LAYER"), "layer"),
            head=parse_choice(env.get("MT_HEAD"), "head"),
            theme=theme,
            seed=seed,
            analogy=parse_analogy(env["MT_ANALOGY"]) if env.get("MT_ANALOGY") else DEFAULT_ANALOGY,
        )

    def to_env(self) -> dict[str, str]:
        return {
            "MT_PROMPT": self.prompt,
            "MT_MODEL": self.model,
            "MT_DEVICE": self.device,
            "MT_LAYER": "auto" if self.layer is None else str(self.layer),
            "MT_HEAD": "auto" if self.head is None else str(self.head),
            "MT_THEME": self.theme,
            "MT_SEED": str(self.seed),
            "MT_ANALOGY": "{}-{}+{}".format(*self.analogy),
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["analogy"] = list(self.analogy)
        return d
