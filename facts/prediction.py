"""Prediction: the next-token distribution at several temperatures, the logit lens, and the
training cost, from a trace (and the final norm and unembedding, for the lens).

logit lens: apply the final norm and the unembedding to the residual stream after every
layer, as if the model stopped there, and see which token it would predict.
cost: how surprised the model is by each token that actually came next (-log p).
"""

from __future__ import annotations

import math

import torch

from model.cache import cached
from model.loading import LoadedModel, shared
from model.tokenizer import token_pieces
from model.trace import Trace

from .attention import TEMPERATURES
from .generation import softmax_with_temperature


def logit_lens(loaded: LoadedModel, trace: Trace, position: int = -1, top_k: int = 3) -> list[dict]:
    """For each layer L: the top-k tokens of unembed(ln_final(blocks.L.hook_resid_post[position]))."""
    model, rows = loaded.model, []
    final = trace["logits"][position].softmax(-1)
    answer = int(final.argmax())
    for layer in range(trace.config.n_layers):
        resid = trace[f"blocks.{layer}.hook_resid_post"][position].to(loaded.device)  # [d_model]
        with torch.no_grad():
            logits = model.unembed_logits(model.ln_final(resid[None])[0]).cpu()  # [vocab], soft-capped as the model's own
        probs = logits.softmax(-1)
        p, ids = probs.topk(top_k)
        rows.append({
            "layer": layer,
            "hook": f"blocks.{layer}.hook_resid_post",
            "top": [{"id": int(i), "token": t, "probability": float(v)}
                    for i, t, v in zip(ids, token_pieces(loaded.encoding, ids.tolist()), p)],
            "answer_probability": float(probs[answer]),  # the model's final choice, as seen at this layer
            "answer_rank": int((logits > logits[answer]).sum()) + 1,  # 1: this layer's top (logits never tie at p = 0)
        })
    return rows


def next_token_costs(trace: Trace) -> list[dict]:
    """Position i predicts token i+1: its probability p and the cost -log p (natural log)."""
    log_probs = trace["logits"][:-1].log_softmax(-1)  # [pos-1, vocab]
    rows = []
    for i, (context_piece, next_id, next_piece) in enumerate(zip(trace.pieces, trace.tokens[1:], trace.pieces[1:])):
        lp = float(log_probs[i, next_id])
        rows.append({"position": i, "after": context_piece, "next": next_piece, "next_id": next_id,
                     "probability": float(torch.tensor(lp).exp()), "cost": -lp})
    return rows


def mean_cost(trace: Trace) -> float:
    rows = next_token_costs(trace)
    return sum(r["cost"] for r in rows) / len(rows) if rows else float("nan")


@cached("temperatures")
def temperature_table(trace: Trace, model: str, temperatures=TEMPERATURES, top_k: int = 5, position: int = -1) -> dict:
    """The last position's real top_k tokens (by logit) and their probability at each temperature.

    Returns {"ids", "pieces", "logits", "probs": {T: [p per id]}} (T as repr(float), e.g. "0.5").
    """
    logits = trace["logits"][position]
    top_logits, ids = logits.topk(top_k)
    return {
        "ids": [int(i) for i in ids],
        "pieces": token_pieces(shared(model).encoding, ids.tolist()),
        "logits": [float(v) for v in top_logits],
        "probs": {repr(float(t)): [float(p) for p in softmax_with_temperature(logits, t)[ids]] for t in temperatures},
    }


@cached("lens")
def lens_rows(trace: Trace, model: str, position: int = -1, top_k: int = 3) -> list[dict]:
    """`logit_lens` on the model named `model`, cached."""
    return logit_lens(shared(model), trace, position, top_k)


def settling_layer(rows: list[dict]) -> int:
    """The first layer from which the top token is the model's final answer all the way up."""
    final = rows[-1]["top"][0]["id"]
    layer = len(rows) - 1
    while layer > 0 and rows[layer - 1]["top"][0]["id"] == final:
        layer -= 1
    return layer


def first_layer_within(rows: list[dict], top: int) -> int | None:
    """The first layer whose logit lens ranks the model's final answer among its `top` tokens
    (it may drop out again later); None if no layer does."""
    return next((r["layer"] for r in rows if r["answer_rank"] <= top), None)


# --------------------------------------------------------------------------- cost

def cost_summary(trace: Trace) -> dict:
    """Per position: p of the token that followed and -log p; their mean; the cheapest and dearest."""
    rows = next_token_costs(trace)
    if not rows:
        return {"rows": [], "mean": math.nan, "best": None, "worst": None}
    best = min(range(len(rows)), key=lambda i: rows[i]["cost"])
    worst = max(range(len(rows)), key=lambda i: rows[i]["cost"])
    return {"rows": rows, "mean": mean_cost(trace), "best": best, "worst": worst}
