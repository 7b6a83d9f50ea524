"""Generation: temperature, seeded sampling, the KV cache, and what the cache saves.

Sampling is reproducible: the same seed gives the same tokens. Temperature 0 means
"always the most likely token" (argmax), handled without dividing by zero.
"""

from __future__ import annotations

import json
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from .files import atomic_write_text, cache_dir, sha256_text
from .loading import LoadedModel
from .tokenizer import token_pieces
from .trace import encode_prompt
from .transformer import KVCache

GENERATION_FORMAT = "1"


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits: [..., vocab] -> probabilities. T < 1 sharpens, T > 1 flattens, T = 0 is argmax."""
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return (logits / temperature).softmax(-1)


def sample(probabilities: torch.Tensor, generator: torch.Generator) -> int:
    """One token id drawn from a [vocab] distribution."""
    return int(torch.multinomial(probabilities.cpu(), 1, generator=generator))


def generate(loaded: LoadedModel, prompt: str, n_new: int, temperature: float = 1.0, seed: int = 0, top_k: int = 5) -> list[dict]:
    """Sample n_new tokens one at a time, with a KV cache. Each step records its real top-k."""
    ids = encode_prompt(loaded, prompt)
    generator = torch.Generator().manual_seed(seed)
    past = KVCache()
    new_input = torch.tensor(ids, device=loaded.device)
    steps = []
    for _ in range(n_new):
        logits = loaded.model(new_input, past=past)[-1].float().cpu()  # [vocab], the last position's
        probs = softmax_with_temperature(logits, temperature)
        chosen = sample(probs, generator)
        top_p, top_ids = probs.topk(top_k)
        steps.append({
            "context": token_pieces(loaded.encoding, ids),
            "top": [{"id": int(i), "token": t, "probability": float(p)}
                    for i, t, p in zip(top_ids, token_pieces(loaded.encoding, top_ids.tolist()), top_p)],
            "chosen": {"id": chosen, "token": token_pieces(loaded.encoding, [chosen])[0], "probability": float(probs[chosen])},
        })
        ids = ids + [chosen]
        new_input = torch.tensor([chosen], device=loaded.device)
    return steps


def cached_generation(fingerprint: str, get_model: Callable[[], LoadedModel], prompt: str, n_new: int,
                      temperature: float, seed: int, top_k: int = 5) -> list[dict]:
    """`generate`, cached on disk by (model fingerprint, prompt, n_new, temperature, seed, top_k).

    `get_model` is called only on a cache miss, so a cached generation never loads the model."""
    key = sha256_text(fingerprint, prompt, str(n_new), repr(float(temperature)), str(seed), str(top_k), GENERATION_FORMAT)
    path = cache_dir() / "generations" / f"{key}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass
    steps = generate(get_model(), prompt, n_new, temperature, seed, top_k)
    atomic_write_text(path, json.dumps(steps, ensure_ascii=False))
    return steps


def multiply_adds(loaded: LoadedModel, ids: list[int], with_cache: bool) -> int:
    """Multiply-adds to get the next-token logits after `ids`, counted by torch as it runs.

    Without a cache the whole sequence is recomputed; with one, the earlier tokens' keys and
    values are already stored and only the last token is pushed through the model.
    """
    tokens = torch.tensor(ids, device=loaded.device)
    past = None
    if with_cache:
        past = KVCache()
        loaded.model(tokens[:-1], past=past)  # done earlier, while generating the previous tokens
        tokens = tokens[-1:]
    with FlopCounterMode(display=False) as counter:
        loaded.model(tokens, past=past)
    return counter.get_total_flops() // 2  # one multiply-add = two floating-point operations
