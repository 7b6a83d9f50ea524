"""Reading the residual stream: the logit lens and the training cost, from a trace.

logit lens: apply the final norm and the unembedding to the residual stream after every
layer, as if the model stopped there, and see which token it would predict.
cost: how surprised the model is by each token that actually came next (-log p).
"""

from __future__ import annotations

import torch

from .loading import LoadedModel
from .tokenizer import token_pieces
from .trace import Trace


def logit_lens(loaded: LoadedModel, trace: Trace, position: int = -1, top_k: int = 3) -> list[dict]:
    """For each layer L: the top-k tokens of unembed(ln_final(blocks.L.hook_resid_post[position]))."""
    model, rows = loaded.model, []
    W_U = model.weight("unembed.W_U")  # [d_model, vocab]
    final = trace["logits"][position].softmax(-1)
    answer = int(final.argmax())
    for layer in range(trace.config.n_layers):
        resid = trace[f"blocks.{layer}.hook_resid_post"][position].to(loaded.device)  # [d_model]
        with torch.no_grad():
            probs = (model.ln_final(resid[None])[0] @ W_U).softmax(-1).cpu()  # [vocab]
        p, ids = probs.topk(top_k)
        rows.append({
            "layer": layer,
            "hook": f"blocks.{layer}.hook_resid_post",
            "top": [{"id": int(i), "token": t, "probability": float(v)}
                    for i, t, v in zip(ids, token_pieces(loaded.encoding, ids.tolist()), p)],
            "answer_probability": float(probs[answer]),  # the model's final choice, as seen at this layer
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
