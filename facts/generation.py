"""Generation: temperature and the one sampler (seeded, with the KV cache).

Sampling is reproducible: the same seed gives the same tokens, in every scene that samples
(`samples` is the only way a scene gets sampled text). Temperature 0 means "always the most
likely token" (argmax), handled without dividing by zero.
"""

from __future__ import annotations

import torch

from model.cache import cached
from model.loading import LoadedModel, shared
from model.tokenizer import token_pieces
from model.trace import encode_prompt, one_thread
from model.transformer import KVCache

SAMPLE_STEPS = 5  # tokens sampled after the prompt, in every scene that samples
SAMPLE_TEMPERATURE = 1.0  # the model's own distribution


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
    """Sample n_new tokens one at a time, with a KV cache. Each step records its real top-k.

    Stops early at the model's context length (a learned-position model has no position past it)."""
    ids = encode_prompt(loaded, prompt)
    n_new = min(n_new, loaded.config.n_ctx - len(ids))
    if n_new <= 0:
        return []
    generator = torch.Generator().manual_seed(seed)
    logits, past = prefill(loaded, ids)  # [vocab] after the prompt's last token, and its keys/values
    steps = []
    for step in range(n_new):
        if step:  # only the token just chosen goes through the model; the rest is in the cache
            with one_thread():
                logits = loaded.model(torch.tensor([chosen], device=loaded.device), past=past)[-1].float().cpu()
        probs = softmax_with_temperature(logits, temperature)
        chosen = sample(probs, generator)
        top_p, top_ids = probs.topk(top_k)
        steps.append({
            "top": [{"id": int(i), "token": t, "probability": float(p)}
                    for i, t, p in zip(top_ids, token_pieces(loaded.encoding, top_ids.tolist()), top_p)],
            "chosen": {"id": chosen, "token": token_pieces(loaded.encoding, [chosen])[0], "probability": float(probs[chosen])},
        })
    return steps


PREFILLED: dict[tuple, tuple] = {}  # (model, prompt ids) -> last logits, keys/values, the model (kept alive: its id is in the key)


def prefill(loaded: LoadedModel, ids: list[int]) -> tuple[torch.Tensor, KVCache]:
    """The prompt through the model once: its last position's logits and a KV cache of its keys
    and values. Kept for the last few prompts of this process, so sampling the same prompt at
    several temperatures runs the (long) prompt once; each caller gets its own cache to extend
    (extend builds new tensors, so sharing the prompt's is safe)."""
    key = (id(loaded.model), tuple(ids))
    if key not in PREFILLED:
        past = KVCache()
        with one_thread():
            logits = loaded.model(torch.tensor(ids, device=loaded.device), past=past)[-1].float().cpu()  # [vocab]
        while len(PREFILLED) >= 4:
            PREFILLED.pop(next(iter(PREFILLED)))
        PREFILLED[key] = logits, past, loaded.model
    logits, past, _ = PREFILLED[key]
    copy = KVCache()
    copy.keys, copy.values = dict(past.keys), dict(past.values)
    return logits, copy


@cached("samples")
def samples(model: str, prompt: str, n_new: int = SAMPLE_STEPS, seed: int = 0,
            temperature: float = SAMPLE_TEMPERATURE, top_k: int = 5) -> list[dict]:
    """`generate` on the model named `model`, cached: the model is loaded only on a cache miss."""
    return generate(shared(model), prompt, n_new, temperature, seed, top_k)
