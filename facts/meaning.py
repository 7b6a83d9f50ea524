"""What the numbers do, measured on the model for this prompt. Never imports manim.

- `head_behaviours`: each head of a layer labelled by what its pattern does on this prompt
  (previous token, first token, itself, spread broadly, or by content), with the score that
  decided the label and whether the effect is strong or weak.
- `direct_effects`: how much each layer's attention and MLP output push the answer token's
  logit, read through the final norm (its scale frozen at this position, as the forward pass
  used it) and the unembedding. These pushes plus the embedding's add up to the logit exactly
  (RMSNorm; a LayerNorm model's biases go to "rest").
- `neuron_promotes`: the tokens one MLP neuron's output row writes toward (W_out row, through
  the final norm's weight and the unembedding).
- `vector_meaning`: which vocabulary tokens a residual vector reads as (logit lens) before a
  head's update, after it, and after the whole layer; how the ranks of chosen tokens (and of the
  model's own final prediction there) move; the update's cosine with the chosen tokens' embeddings.
- `random_pair_cosines`: the cosine of random pairs of word embeddings, the baseline that
  says whether an analogy's cosine means anything.
- `random_direction_cosines`: the same for the arrows between two random word pairs, the
  baseline for "these two arrows point the same way".
"""

from __future__ import annotations

import math

import numpy as np
import torch

from model.cache import cached
from model.loading import shared
from model.tokenizer import token_pieces
from model.trace import Trace

STRONG = 0.5  # a positional score at least this: the head clearly does that
WEAK = 0.3  # at least this: it leans that way (called weak)
BROAD = 0.75  # mean normalised entropy at least this: the head spreads its attention


def head_behaviours(trace: Trace, layer: int) -> list[dict]:
    """For every head of `layer`: {"head", "label", "score", "strength", "scores"}.

    Scores are means over the queries after the first (the first can only look at itself):
    previous  weight on the token just before;   first  weight on the first token (a "sink");
    self      weight on itself;                   broad  entropy / log(number of keys), 0..1;
    content   the largest weight on any other key (what is left when position does not explain it).
    The label is the largest positional score if it reaches WEAK, else "broad" if broad >= BROAD,
    else "content". Prompts of one token have no query to measure: every head is "self", weak.
    """
    # numpy over whole arrays: a Python loop over queries and keys took seconds at 256 tokens
    pattern = trace[f"blocks.{layer}.attn.hook_pattern"].detach().double().numpy()  # [head, query, key]
    n_heads, n = pattern.shape[0], pattern.shape[1]
    q = np.arange(1, n)  # [n - 1]: the queries measured
    P = pattern[:, 1:, :]  # [head, n - 1, key]
    with np.errstate(divide="ignore", invalid="ignore"):
        nats = np.where(np.arange(n)[None, :] <= q[:, None], -P * np.log(np.clip(P, 1e-12, None)), 0.0).sum(-1)  # [head, n - 1]
    keys = np.arange(n)[None, :]  # [1, key]
    others = (keys >= 1) & (keys <= q[:, None] - 2)  # [n - 1, key]: neither the first, the previous nor itself
    out = []
    for h in range(n_heads):
        if n < 2:
            out.append({"head": h, "label": "self", "score": 1.0, "strength": "weak", "scores": {}})
            continue
        prev = float(P[h, q - 1, q - 1].mean())
        first = float(P[h, :, 0].mean())
        self_ = float(P[h, q - 1, q].mean())
        entropy = float((nats[h] / np.log(q + 1)).mean())
        content = float(np.where(others, P[h], -np.inf).max(-1).clip(0.0, None).mean())  # no other key: 0
        scores = {"previous": prev, "first": first, "self": self_, "broad": entropy, "content": content}
        label, score = max((("previous", prev), ("first", first), ("self", self_)), key=lambda kv: kv[1])
        if score < WEAK:
            label, score = ("broad", entropy) if entropy >= BROAD else ("content", content)
        strength = "strong" if (score >= STRONG if label in ("previous", "first", "self") else
                                (entropy >= BROAD if label == "broad" else content >= STRONG)) else "weak"
        out.append({"head": h, "label": label, "score": score, "strength": strength, "scores": scores})
    return out


def _readout(model: str, trace: Trace, position: int) -> tuple[torch.Tensor, float, bool]:
    """(final norm weight, the final norm's scale at `position`, whether the norm centres)."""
    loaded = shared(model)
    w = loaded.model.ln_final.w.detach().float().cpu()  # [d_model]
    scale = float(trace["ln_final.hook_scale"][position].reshape(-1)[0])
    return w, scale, trace.config.norm == "layernorm"


@cached("direct-effects")
def direct_effects(trace: Trace, model: str, position: int = -1, token: int | None = None) -> dict:
    """Each layer's attention and MLP output, pushed through the final norm and unembedding,
    as a share of the answer token's logit: {"token", "piece", "logit", "raw_logit", "embed", "layers": [
    {"layer", "attention", "mlp"}], "rest"}. token: the model's top prediction unless given.
    The pushes add up to raw_logit, the logit before any soft-capping (Gemma 2: logit =
    c * tanh(raw_logit / c)); "rest" is what they leave of it (LayerNorm's centring and bias)."""
    loaded = shared(model)
    logits = trace["logits"][position].double()
    token = int(logits.argmax()) if token is None else int(token)
    w, scale, centre = _readout(model, trace, position)
    direction = (w.double() * loaded.model.weight("unembed.W_U")[:, token].detach().double().cpu()) / scale  # [d_model]

    def push(vector: torch.Tensor) -> float:
        v = vector.double()
        if centre:
            v = v - v.mean()
        return float(v @ direction)

    embed = push(trace["hook_embed"][position])
    layers = [{"layer": L, "attention": push(trace[f"blocks.{L}.hook_attn_out"][position]),
               "mlp": push(trace[f"blocks.{L}.hook_mlp_out"][position])} for L in range(trace.config.n_layers)]
    total = embed + sum(r["attention"] + r["mlp"] for r in layers)
    final = trace["ln_final.hook_normalized"][position].double()
    if centre:
        final = final * w.double() + loaded.model.weight("ln_final.b").detach().double().cpu()
    else:
        final = final * w.double()
    raw = float(final @ loaded.model.weight("unembed.W_U")[:, token].detach().double().cpu())  # before any cap
    return {"token": token, "piece": token_pieces(loaded.encoding, [token])[0], "logit": float(logits[token]),
            "raw_logit": raw, "embed": embed, "layers": layers, "rest": raw - total}


@cached("neuron-promotes")
def neuron_promotes(model: str, layer: int, neuron: int, k: int = 5) -> list[dict]:
    """The k tokens whose logits one unit of this neuron's activation raises most (W_out row,
    through the final norm's weight and the unembedding; the norm's scale, the same for every
    token, left out)."""
    loaded = shared(model)
    row = loaded.model.weight(f"blocks.{layer}.mlp.W_out")[neuron].detach().float().cpu()  # [d_model]
    w = loaded.model.ln_final.w.detach().float().cpu()
    scores = (row * w) @ loaded.model.weight("unembed.W_U").detach().float().cpu()  # [vocab]
    values, ids = scores.topk(k)
    return [{"id": int(i), "piece": p, "push": float(v)}
            for i, p, v in zip(ids, token_pieces(loaded.encoding, ids.tolist()), values)]


def _lens(model: str, vector: torch.Tensor) -> torch.Tensor:
    """Log-probabilities over the vocabulary if the model stopped with this residual vector
    (float64: deep ranks compare values that a float32 probability would round to 0)."""
    loaded = shared(model)
    with torch.no_grad():
        x = loaded.model.ln_final(vector.float().to(loaded.device)[None])[0]
        return loaded.model.unembed_logits(x).double().log_softmax(-1).cpu()  # soft-capped as the model's own


@cached("vector-meaning")
def vector_meaning(trace: Trace, model: str, layer: int, head: int, position: int, watch: tuple[int, ...] = (),
                   k: int = 5) -> dict:
    """The token at `position` as the logit lens reads its vector: before layer `layer`
    (resid_pre), after head `head`'s output alone is added, and after the whole layer
    (resid_post); the ranks and probabilities of the `watch` token ids at each stage; the rank
    of the model's final prediction at `position` ("final") at each stage; the update's cosine
    with each watched token's embedding, against the whole vocabulary ("embedding_cosines")."""
    loaded = shared(model)
    before = trace[f"blocks.{layer}.hook_resid_pre"][position]
    head_out = head_contribution(trace, model, layer, head, position)
    stages = {"before": before, "after_head": before + head_out, "after_layer": trace[f"blocks.{layer}.hook_resid_post"][position]}
    out: dict = {"stages": {}, "watch": []}
    probs = {name: _lens(model, v) for name, v in stages.items()}  # log-probabilities: ranks never tie at 0
    for name, p in probs.items():
        values, ids = p.exp().topk(k)
        out["stages"][name] = [{"id": int(i), "piece": s, "probability": float(v)}
                               for i, s, v in zip(ids, token_pieces(loaded.encoding, ids.tolist()), values)]
    for t in watch:
        row = {"id": int(t), "piece": token_pieces(loaded.encoding, [int(t)])[0]}
        for name, p in probs.items():
            row[f"{name}_rank"] = int((p > p[int(t)]).sum()) + 1
            row[f"{name}_probability"] = float(p[int(t)].exp())
        out["watch"].append(row)
    cos = torch.nn.functional.cosine_similarity(head_out.double(), before.double(), dim=0)
    out["update_cosine"] = float(cos)  # the head's update against the vector it is added to
    out["update_share"] = float(head_out.double().norm() / before.double().norm())  # its length, relative
    final = int(trace["logits"][position].argmax())  # what the whole model predicts after this token
    out["final"] = {"id": final, "piece": token_pieces(loaded.encoding, [final])[0],
                    **{f"{name}_rank": int((p > p[final]).sum()) + 1 for name, p in probs.items()}}
    out["embedding_cosines"] = _embedding_cosines(model, head_out, watch)
    return out


def head_contribution(trace: Trace, model: str, layer: int, head: int, position: int) -> torch.Tensor:
    """What one head adds to the residual stream at `position`: its output (hook_result); with
    sandwich norms (Gemma) that output through the post-attention norm as the whole sum went
    through it, i.e. divided by the norm's scale for the summed heads and times its weight, so
    that the heads' contributions still add up to hook_attn_out. [d_model]"""
    out = trace[f"blocks.{layer}.attn.hook_result"][position, head]
    if not trace.config.post_norms:
        return out
    norm = shared(model).model.get_submodule(f"blocks.{layer}.ln1_post")
    scale = trace[f"blocks.{layer}.ln1_post.hook_scale"][position].reshape(-1)[0]
    return out / scale * norm.w.detach().float().cpu()


def _embedding_cosines(model: str, update: torch.Tensor, watch: tuple[int, ...]) -> dict:
    """The cosine of a head's update with the embedding of each `watch` token, its rank among
    every token's (1 = the token the update points at most), and the spread over the whole
    vocabulary (5th and 95th percentile): the yardstick for "points toward"."""
    W_E = shared(model).model.weight("embed.W_E").detach().double().cpu()  # [vocab, d_model]
    cos = torch.nn.functional.cosine_similarity(W_E, update.double().cpu()[None], dim=1)  # [vocab]
    return {"watch": [{"id": int(t), "cosine": float(cos[int(t)]), "rank": int((cos > cos[int(t)]).sum()) + 1}
                      for t in watch],
            "p05": float(cos.quantile(0.05)), "p95": float(cos.quantile(0.95)), "vocab": int(cos.numel())}


def word_ids(model: str) -> list[int]:
    """Ids of whole-word tokens: a space, then at least three lower-case letters."""
    loaded = shared(model)
    pieces = token_pieces(loaded.encoding, list(range(loaded.config.vocab_size)))
    return [i for i, p in enumerate(pieces) if len(p) > 3 and p[0] == " " and p[1:].isalpha() and p[1:].islower()]


@cached("random-pairs")
def random_pair_cosines(model: str, n: int = 2000, seed: int = 0) -> dict:
    """Cosines of `n` random pairs of whole-word tokens (a space then letters): their mean
    |cosine| and the 95th percentile, the yardstick for an analogy's cosine."""
    loaded = shared(model)
    words = word_ids(model)
    generator = torch.Generator().manual_seed(seed)
    W_E = loaded.model.weight("embed.W_E").detach().float().cpu()
    idx = torch.tensor(words)
    a = idx[torch.randint(len(words), (n,), generator=generator)]
    b = idx[torch.randint(len(words), (n,), generator=generator)]
    keep = a != b
    cos = torch.nn.functional.cosine_similarity(W_E[a[keep]], W_E[b[keep]], dim=1).double()
    return {"pairs": int(keep.sum()), "words": len(words), "mean": float(cos.mean()), "mean_abs": float(cos.abs().mean()),
            "p95_abs": float(cos.abs().quantile(0.95)), "max": float(cos.max())}


@cached("random-directions")
def random_direction_cosines(model: str, n: int = 2000, seed: int = 0) -> dict:
    """Cosines between the difference vectors of two random pairs of whole-word tokens
    (b - a against d - c): the yardstick for "these two arrows point the same way"."""
    loaded = shared(model)
    words = torch.tensor(word_ids(model))
    generator = torch.Generator().manual_seed(seed)
    W_E = loaded.model.weight("embed.W_E").detach().float().cpu()
    a, b, c, d = (words[torch.randint(len(words), (n,), generator=generator)] for _ in range(4))
    cos = torch.nn.functional.cosine_similarity(W_E[b] - W_E[a], W_E[d] - W_E[c], dim=1).double()
    cos = cos[torch.isfinite(cos)]
    return {"pairs": int(cos.numel()), "mean_abs": float(cos.abs().mean()), "p95_abs": float(cos.abs().quantile(0.95))}
