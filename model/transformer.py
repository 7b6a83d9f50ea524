"""One readable decoder-only transformer for the GPT-2, Llama, Mistral, Qwen2, Qwen3, Gemma 2,
Gemma 3 and Phi-3 families.

Read it top to bottom: Norm -> Attention -> MLP -> Block -> Transformer.

Llama is the base; the others add a few things, each one branch below, switched on by the
config (never the name):
- Gemma 3: embeddings scaled by sqrt(d_model), queries and keys RMS-normalised per head
  (QK-norm), a second norm on each sub-layer's output before it is added ("sandwich" norms), a
  sliding window on most layers (a query sees only the last few hundred tokens), and a
  different rotary base on those local layers;
- Gemma 2: the scaled embeddings, sandwich norms and sliding window (on every other layer),
  plus soft-capping: attention scores and the output logits pass through c * tanh(x / c);
- Qwen3: QK-norm; Qwen2: a bias on queries, keys and values; Mistral and Phi-3: a sliding
  window on every layer when the config sets one (Phi-3's fused weights are split by the loader).

The model works on one sequence at a time (no batch dimension), which keeps every shape
in the comments short:

    pos      number of tokens in the prompt
    d_model  width of the residual stream
    n_heads / n_kv  query heads / key-value heads (equal unless grouped-query attention)
    d_head   width of one head
    d_mlp    hidden width of the MLP
    vocab    vocabulary size

Parameter names follow TransformerLens (`blocks.3.attn.W_Q`, `unembed.W_U`, ...), and every
intermediate tensor can be recorded into a dict under TransformerLens hook names
(`blocks.3.attn.hook_pattern`, ...). Pass `cache={}` to `Transformer.forward` to fill it.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

Cache = dict[str, torch.Tensor] | None


def record(cache: Cache, name: str, x: torch.Tensor) -> torch.Tensor:
    """Save an intermediate tensor under its hook name (when recording) and pass it on."""
    if cache is not None:
        cache[name] = x.detach()
    return x


def parameter(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.zeros(*shape))


class Norm(nn.Module):
    """LayerNorm (GPT-2: centre, scale, bias) or RMSNorm (Llama, Gemma: scale only).

    It normalises the last dimension: d_model for the residual stream, d_head for Gemma's
    per-head query and key norms (width=d_head)."""

    def __init__(self, cfg: ModelConfig, name: str, width: int | None = None):
        super().__init__()
        self.cfg, self.name = cfg, name
        width = width or cfg.d_model
        self.w = nn.Parameter(torch.ones(width))
        self.b = parameter(width) if cfg.norm == "layernorm" else None

    def forward(self, x: torch.Tensor, cache: Cache = None) -> torch.Tensor:
        # x: [pos, d_model] (or [pos, heads, d_head] for QK-norm)
        if self.cfg.norm == "layernorm":
            x = x - x.mean(-1, keepdim=True)
        scale = record(cache, f"{self.name}.hook_scale", (x.pow(2).mean(-1, keepdim=True) + self.cfg.norm_eps).sqrt())  # [pos, 1]
        x = record(cache, f"{self.name}.hook_normalized", x / scale)  # [pos, d_model], before the learned scale
        x = x * self.w
        return x if self.b is None else x + self.b  # what the next sub-layer reads


@functools.lru_cache(maxsize=16)  # the same for every layer: compute once per (length, device, base)
def rotary_angles(cfg: ModelConfig, n_pos: int, device=None, base: float | None = None) -> torch.Tensor:
    """Angle by which position p turns the pair (2i, 2i+1) of a query or key: p * base^(-2i/d_head).

    base: the layer's rotary base, cfg.rope_base_for(layer); cfg.rope_base when not given.
    Returns [pos, d_head // 2].
    """
    base = cfg.rope_base if base is None else base
    i = torch.arange(0, cfg.d_head, 2, device=device, dtype=torch.float32)  # [d_head/2]
    frequency = base ** (-i / cfg.d_head)  # [d_head/2]
    positions = torch.arange(n_pos, device=device, dtype=torch.float32)  # [pos]
    return positions[:, None] * frequency[None, :]


def rotate_pairs(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """RoPE: rotate each adjacent pair (x[2i], x[2i+1]) of every head by its angle.

    x: [pos, heads, d_head], angles: [pos, d_head/2] -> [pos, heads, d_head]
    """
    even, odd = x[..., 0::2], x[..., 1::2]  # [pos, heads, d_head/2] each
    cos, sin = angles.cos()[:, None, :], angles.sin()[:, None, :]  # [pos, 1, d_head/2]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2)


@functools.lru_cache(maxsize=16)
def future_mask(n_pos: int, device=None) -> torch.Tensor:
    """[q_pos, k_pos] True where the key comes after the query: a token may not look ahead."""
    return torch.ones(n_pos, n_pos, dtype=torch.bool, device=device).triu(1)


@functools.lru_cache(maxsize=16)
def outside_window(n_pos: int, window: int, device=None) -> torch.Tensor:
    """[q_pos, k_pos] True where the key is `window` or more tokens before the query: a local
    layer's query sees itself and the window - 1 tokens before it, no further back."""
    q = torch.arange(n_pos, device=device)[:, None]
    k = torch.arange(n_pos, device=device)[None, :]
    return q - k >= window


class KVCache:
    """Keys and values of the tokens already processed, per layer.

    When generating, each new token only needs its own query, key and value: the keys and
    values of earlier tokens never change (a token cannot see later ones), so they are kept
    here and reused instead of recomputed.
    """

    def __init__(self):
        self.keys: dict[str, torch.Tensor] = {}  # layer name -> [cached_pos, n_kv, d_head]
        self.values: dict[str, torch.Tensor] = {}

    def length(self, layer: str = "blocks.0.attn") -> int:
        return self.keys[layer].shape[0] if layer in self.keys else 0

    def extend(self, layer: str, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new positions' keys/values; return all of them, old then new."""
        if layer in self.keys:
            k, v = torch.cat([self.keys[layer], k]), torch.cat([self.values[layer], v])
        self.keys[layer], self.values[layer] = k, v
        return k, v


class Attention(nn.Module):
    """Causal multi-head attention, with grouped-query sharing of keys and values.

    Gemma 3 and Qwen3: queries and keys are RMS-normalised per head before RoPE (QK-norm); Qwen2 and
    GPT-2 add a bias to each query, key and value. A local (sliding-window) layer masks keys outside its window, and on
    Gemma 3 turns q and k with its own rotary base; Gemma 2 soft-caps the scores before the mask."""

    def __init__(self, cfg: ModelConfig, name: str, layer: int = 0):
        super().__init__()
        self.cfg, self.name = cfg, name
        self.local = cfg.is_local(layer)  # sliding-window layer?
        self.rope_base = cfg.rope_base_for(layer)
        H, K, D, E = cfg.n_heads, cfg.n_kv_heads, cfg.d_model, cfg.d_head
        self.W_Q, self.W_K, self.W_V = parameter(H, D, E), parameter(K, D, E), parameter(K, D, E)
        self.W_O = parameter(H, E, D)
        self.b_Q = parameter(H, E) if cfg.qkv_biases else None  # GPT-2, Qwen2
        self.b_K = parameter(K, E) if cfg.qkv_biases else None
        self.b_V = parameter(K, E) if cfg.qkv_biases else None
        self.b_O = parameter(D) if cfg.has_biases else None  # GPT-2 only
        self.q_norm = Norm(cfg, f"{name}.q_norm", width=E) if cfg.qk_norm else None
        self.k_norm = Norm(cfg, f"{name}.k_norm", width=E) if cfg.qk_norm else None

    @staticmethod
    def project(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        # x: [pos, d_model], W: [heads, d_model, d_head] -> [pos, heads, d_head]
        y = torch.matmul(x, W).transpose(0, 1)  # one [pos, d_model] @ [d_model, d_head] per head
        return y if b is None else y + b

    def forward(self, x: torch.Tensor, cache: Cache = None, past: KVCache | None = None) -> torch.Tensor:
        # x: [pos, d_model], the normalised residual stream of the new tokens
        n = f"{self.name}.hook_"
        offset = past.length(self.name) if past is not None else 0  # tokens already cached
        q = record(cache, n + "q", self.project(x, self.W_Q, self.b_Q))  # [pos, n_heads, d_head]
        k = record(cache, n + "k", self.project(x, self.W_K, self.b_K))  # [pos, n_kv, d_head]
        v = record(cache, n + "v", self.project(x, self.W_V, self.b_V))  # [pos, n_kv, d_head]
        if self.q_norm is not None:  # QK-norm: each head's query and key scaled to RMS 1, times the norm's weight
            q = record(cache, n + "q_normed", self.q_norm(q, cache))  # [pos, n_heads, d_head], what RoPE turns
            k = record(cache, n + "k_normed", self.k_norm(k, cache))  # [pos, n_kv, d_head]

        if self.cfg.positional == "rotary":  # position enters here, by turning q and k
            angles = rotary_angles(self.cfg, offset + x.shape[0], x.device, self.rope_base)[offset:]
            q = record(cache, n + "rot_q", rotate_pairs(q, angles))  # [pos, n_heads, d_head]
            k = record(cache, n + "rot_k", rotate_pairs(k, angles))  # [pos, n_kv, d_head]
        if past is not None:
            k, v = past.extend(self.name, k, v)  # [offset + pos, n_kv, d_head]

        # Each key/value head serves heads_per_kv consecutive query heads.
        k = k.repeat_interleave(self.cfg.heads_per_kv, dim=1)  # [k_pos, n_heads, d_head]
        v = v.repeat_interleave(self.cfg.heads_per_kv, dim=1)  # [k_pos, n_heads, d_head]

        scale_dim = self.cfg.query_pre_attn_scalar or self.cfg.d_head  # Gemma names the divisor's square
        scores = q.transpose(0, 1) @ k.permute(1, 2, 0) / math.sqrt(scale_dim)  # [n_heads, pos, k_pos]: q . k
        if self.cfg.attn_softcap:  # Gemma 2: squash every score into (-c, c), smoothly, before the mask
            scores = self.cfg.attn_softcap * torch.tanh(scores / self.cfg.attn_softcap)
        hidden = future_mask(offset + x.shape[0], x.device)[offset:]  # rows of the new queries
        if self.local:  # sliding window: keys too far back are hidden as well
            hidden = hidden | outside_window(offset + x.shape[0], self.cfg.sliding_window, x.device)[offset:]
        scores = record(cache, n + "attn_scores", scores.masked_fill(hidden, float("-inf")))
        pattern = record(cache, n + "pattern", scores.softmax(dim=-1))  # rows sum to 1

        z = record(cache, n + "z", (pattern @ v.transpose(0, 1)).transpose(0, 1))  # [pos, n_heads, d_head]: weighted sum of values
        result = record(cache, n + "result", (z.transpose(0, 1) @ self.W_O).transpose(0, 1))  # [pos, n_heads, d_model]: z_h @ W_O[h]
        out = result.sum(dim=1)  # [pos, d_model]
        return out if self.b_O is None else out + self.b_O


ACTIVATIONS = {
    "silu": F.silu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's tanh approximation
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # the same curve, under Gemma's name (GeGLU's gate)
    "gelu": F.gelu,
}


def activation(cfg: ModelConfig, x: torch.Tensor) -> torch.Tensor:
    return ACTIVATIONS[cfg.activation](x)  # ModelConfig.validate refuses any other name


class MLP(nn.Module):
    """GPT-2: W_out(gelu(W_in x)). Llama: W_out(silu(W_gate x) * W_in x). Gemma: the same with gelu_tanh (GeGLU).

    Hooks as TransformerLens records them: hook_pre is what the nonlinearity reads (W_in x on
    GPT-2, the gate W_gate x on Llama); a gated MLP's up-projection W_in x is hook_pre_linear.
    """

    def __init__(self, cfg: ModelConfig, name: str):
        super().__init__()
        self.cfg, self.name = cfg, name
        self.W_in, self.W_out = parameter(cfg.d_model, cfg.d_mlp), parameter(cfg.d_mlp, cfg.d_model)
        self.W_gate = parameter(cfg.d_model, cfg.d_mlp) if cfg.gated_mlp else None
        self.b_in = parameter(cfg.d_mlp) if cfg.has_biases else None
        self.b_out = parameter(cfg.d_model) if cfg.has_biases else None

    def forward(self, x: torch.Tensor, cache: Cache = None) -> torch.Tensor:
        # x: [pos, d_model]
        n = f"{self.name}.hook_"
        up = x @ self.W_in  # [pos, d_mlp], the up-projection
        if self.b_in is not None:
            up = up + self.b_in
        if self.W_gate is None:
            post = activation(self.cfg, record(cache, n + "pre", up))
        else:
            gate = record(cache, n + "pre", x @ self.W_gate)  # [pos, d_mlp], what the nonlinearity reads
            post = activation(self.cfg, gate) * record(cache, n + "pre_linear", up)
        record(cache, n + "post", post)  # [pos, d_mlp], the neurons' values
        out = post @ self.W_out  # [pos, d_model]
        return out if self.b_out is None else out + self.b_out


class Block(nn.Module):
    """x + attention(norm(x)), then + mlp(norm(x)): each sub-layer adds to the residual stream.

    With sandwich norms (Gemma) each sub-layer's output is normalised once more (ln1_post,
    ln2_post) before it is added; hook_attn_out / hook_mlp_out are then after that norm, as
    in TransformerLens: what the residual stream receives."""

    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.name = f"blocks.{layer}"
        self.ln1, self.attn = Norm(cfg, f"{self.name}.ln1"), Attention(cfg, f"{self.name}.attn", layer)
        self.ln2, self.mlp = Norm(cfg, f"{self.name}.ln2"), MLP(cfg, f"{self.name}.mlp")
        self.ln1_post = Norm(cfg, f"{self.name}.ln1_post") if cfg.post_norms else None
        self.ln2_post = Norm(cfg, f"{self.name}.ln2_post") if cfg.post_norms else None

    def forward(self, x: torch.Tensor, cache: Cache = None, past: KVCache | None = None) -> torch.Tensor:
        n = f"{self.name}.hook_"
        record(cache, n + "resid_pre", x)  # [pos, d_model]
        attn_out = self.attn(self.ln1(x, cache), cache, past)  # [pos, d_model]
        if self.ln1_post is not None:  # sandwich: normalise the attention's output before adding it
            attn_out = self.ln1_post(attn_out, cache)
        x = record(cache, n + "resid_mid", x + record(cache, n + "attn_out", attn_out))
        mlp_out = self.mlp(self.ln2(x, cache), cache)  # [pos, d_model]
        if self.ln2_post is not None:  # sandwich: the MLP's output too
            mlp_out = self.ln2_post(mlp_out, cache)
        return record(cache, n + "resid_post", x + record(cache, n + "mlp_out", mlp_out))


class Embed(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_E = parameter(cfg.vocab_size, cfg.d_model)


class PosEmbed(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_pos = parameter(cfg.n_ctx, cfg.d_model)


class Unembed(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_U = parameter(cfg.d_model, cfg.vocab_size)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.pos_embed = PosEmbed(cfg) if cfg.positional == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg, layer) for layer in range(cfg.n_layers))
        self.ln_final = Norm(cfg, "ln_final")
        self.unembed = None if cfg.tied_embeddings else Unembed(cfg)

    def weight(self, name: str) -> torch.Tensor:
        """A weight by its TransformerLens name, e.g. "blocks.3.attn.W_Q" or "unembed.W_U"."""
        if name == "unembed.W_U" and self.unembed is None:
            return self.embed.W_E.T  # tied: unembedding is the embedding, transposed
        return self.get_parameter(name)

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor, cache: Cache = None, past: KVCache | None = None) -> torch.Tensor:
        """tokens: [pos] integer ids -> logits [pos, vocab].

        cache: a dict to record every intermediate into. past: a KVCache holding the keys and
        values of earlier tokens; `tokens` then continue that sequence, and past is extended.
        """
        x = self.embed.W_E[tokens]  # [pos, d_model]
        if self.cfg.embed_scale != 1.0:  # Gemma: the row times sqrt(d_model); hook_embed is after the scale
            x = x * self.cfg.embed_scale
        x = record(cache, "hook_embed", x)
        if self.pos_embed is not None:
            start = past.length() if past is not None else 0
            positions = torch.arange(start, start + tokens.shape[0], device=tokens.device)
            x = x + record(cache, "hook_pos_embed", self.pos_embed.W_pos[positions])
        for block in self.blocks:
            x = block(x, cache, past)  # [pos, d_model]
        x = self.ln_final(x, cache)
        return record(cache, "logits", self.unembed_logits(x))  # [pos, vocab]

    def unembed_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The final norm's output [..., d_model] -> logits [..., vocab]: x @ W_U, soft-capped
        where the config says so (Gemma 2: c * tanh(logits / c), as TransformerLens's logits)."""
        logits = x @ self.weight("unembed.W_U")
        if self.cfg.final_softcap:
            logits = self.cfg.final_softcap * torch.tanh(logits / self.cfg.final_softcap)
        return logits
