"""Every scene, once: its name on the command line, its file and class, one line, and the facts
it reads (SceneData attributes, computed by the CLI before the scene's own process starts).

Never imports manim: `render.py list` and option checks stay fast. Adding a scene is this
entry, the scene file, and (when the scene needs a new fact) that facts function + tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.errors import UserError


@dataclass(frozen=True)
class SceneEntry:
    name: str  # on the command line, e.g. "attention-pattern"
    module: str  # the file in scenes/, e.g. "attention_pattern"
    cls: str  # the class in it
    line: str  # one line for `render.py list`
    needs: tuple[str, ...] = ()  # SceneData attributes beyond the trace and the story head


ENTRIES = (
    SceneEntry("overview", "overview", "Overview", "what the model does, end to end: prompt -> layers -> next-token probabilities, sampled in a loop",
               ("parameter_counts", "samples")),
    SceneEntry("tokens", "tokens", "Tokens", "text becomes tokens: real tokenizer boundaries, ids, vocabulary size, chars vs tokens",
               ("words",)),
    SceneEntry("embeddings", "embeddings", "Embeddings", "tokens become vectors: rows of W_E, position (learned or rotary), nearest neighbours",
               ("embedding_corner", "focus_neighbours", "focus_embedding_row")),
    SceneEntry("word-vectors", "word_vectors", "WordVectors", "directions carry meaning: king - man + woman on the model's own embeddings",
               ("analogy_results", "projection", "random_pairs", "random_directions")),
    SceneEntry("orthogonality", "orthogonality", "Orthogonality", "how much fits in high dimensions: a real experiment packing nearly perpendicular directions",
               ("orthogonality",)),
    SceneEntry("qkv", "qkv", "Qkv", "queries and keys: one token's vector times the real W_Q / W_K, every token's q and k, a 2-D view",
               ("weight_corners", "norm_outputs")),
    SceneEntry("attention-pattern", "attention_pattern", "AttentionPattern", "the grid of q.k, scaled by sqrt(d_head), softmax down each query's column"),
    SceneEntry("softmax", "softmax", "Softmax", "softmax on the story query's real scores: exp, normalise; temperature 0 / 0.5 / 1 / 2"),
    SceneEntry("masking", "masking", "Masking", "causal masking: later keys set to -inf, exactly 0 after softmax; the n^2 cost of context"),
    SceneEntry("values", "values", "Values", "value vectors, the weighted sum (= hook_z), through W_O, and E + delta E for the story token",
               ("weight_corners", "norm_outputs", "story_meaning")),
    SceneEntry("multi-head", "multi_head", "MultiHead", "every head of the layer side by side, each head's real contribution, parameter counts, shared key/value heads",
               ("parameter_counts", "head_behaviours")),
    SceneEntry("mlp", "mlp", "Mlp", "the MLP: one token's vector up-projected, through the real nonlinearity, and back down; which neurons fire",
               ("parameter_counts", "norm_outputs", "direct_effects", "story_neuron_promotes")),
    SceneEntry("prediction", "prediction", "Prediction", "from the last vector to the next token: unembedding, logits, softmax with temperature, seeded samples",
               ("samples", "temperatures", "norm_outputs", "temperature_samples")),
    SceneEntry("cost", "cost", "Cost", "how training scores a prediction: p of each real next token, its cost -log p, the curve and the mean",
               ("costs",)),
    SceneEntry("layers", "layers", "Layers", "logit lens: final norm + unembedding after every layer, the top token per layer settling on the answer",
               ("lens",)),
    SceneEntry("kv-cache", "kv_cache", "KvCache", "the KV cache: earlier keys/values reused, one new column; real multiply-adds with and without it",
               ("kv_counts",)),
)
SCENES: dict[str, SceneEntry] = {e.name: e for e in ENTRIES}  # in storyboard order


def scene_entry(name: str) -> SceneEntry:
    if name not in SCENES:
        raise UserError(f"unknown scene {name!r}: choose from {', '.join(SCENES)} (see `render.py list`)")
    return SCENES[name]
