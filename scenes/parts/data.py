"""Everything a scene reads, fetched through facts/ (and so through the one cache). Never imports manim.

`prepare(names, params)` runs once in the CLI's process, before the scenes' worker processes
start, so that each worker finds its trace and facts in the cache: every attribute a registry
entry lists in `needs` is computed there.
"""

from __future__ import annotations

from functools import cached_property

from facts import attention, counts, generation, geometry, meaning, prediction
from model.cache import cache_dir
from model.trace import Trace
from model.untrusted import trusted_trace
from scenes.registry import scene_entry

from .params import FIRST_ANALOGY, Params

TOP_K = 5
TEMPERATURE_STEPS = 8  # tokens sampled at each temperature, side by side
_TRACES: dict[tuple, Trace] = {}  # (cache folder, prompt, model, device) -> its trace, the 4 latest
_CHOICES: dict[tuple, "attention.HeadChoice"] = {}  # (trace hash, layer, head, query, key) -> the story cells


class SceneData:
    def __init__(self, params: Params):
        self.params = params

    @cached_property
    def trace(self) -> Trace:
        """The cached trace, checked (model/untrusted.py), read once per process and prompt: a lecture
        whose scenes differ only in other options does not read and hash it once per scene."""
        key = (str(cache_dir()), self.params.prompt, self.params.model, self.params.device)
        if key not in _TRACES:
            while len(_TRACES) >= 4:
                _TRACES.pop(next(iter(_TRACES)))
            _TRACES[key] = trusted_trace(self.params.prompt, self.params.model, self.params.device)
        return _TRACES[key]

    @cached_property
    def choice(self) -> attention.HeadChoice:
        p = self.params
        key = (self.trace.hash, p.layer, p.head, p.query, p.key)
        if key not in _CHOICES:
            while len(_CHOICES) >= 64:
                _CHOICES.pop(next(iter(_CHOICES)))
            _CHOICES[key] = attention.choose_cells(self.trace, p.layer, p.head, p.query, p.key)
        return _CHOICES[key]

    @property
    def focus(self) -> int:
        """The token the scenes follow: the story head's query token."""
        return self.choice.query

    @cached_property
    def words(self) -> list[tuple[int, int]]:
        return attention.word_spans(self.trace.pieces)

    @cached_property
    def parameter_counts(self) -> dict:
        return counts.parameter_counts(self.params.model)

    @cached_property
    def samples(self) -> list[dict]:
        """The one seeded continuation of the prompt (every scene that samples shows this one)."""
        return generation.samples(self.params.model, self.params.prompt, generation.SAMPLE_STEPS, self.params.seed)

    @cached_property
    def temperature_samples(self) -> dict[float, list[dict]]:
        """The same seed's continuation at each of attention.TEMPERATURES (0: always the top token)."""
        return {T: generation.samples(self.params.model, self.params.prompt, TEMPERATURE_STEPS, self.params.seed, T)
                for T in attention.TEMPERATURES}

    # ---- what the numbers mean (facts/meaning.py)
    @cached_property
    def head_behaviours(self) -> list[dict]:
        """Every head of the story layer, labelled by what it does on this prompt."""
        return meaning.head_behaviours(self.trace, self.choice.layer)

    @cached_property
    def direct_effects(self) -> dict:
        """Each layer's attention and MLP push on the answer's logit (last position)."""
        return meaning.direct_effects(self.trace, self.params.model)

    def neuron_promotes(self, layer: int, neuron: int) -> list[dict]:
        return meaning.neuron_promotes(self.params.model, layer, neuron, TOP_K)

    @cached_property
    def story_neuron_promotes(self) -> dict:
        """The strongest MLP neuron of the story layer for the focus token, and the tokens its
        output row writes toward (computed before the render: it needs the weights)."""
        from facts.mlp import mlp_neurons

        neuron = mlp_neurons(self.trace, self.choice.layer, self.focus)["top"][0]["neuron"]
        return {"neuron": neuron, "tokens": self.neuron_promotes(self.choice.layer, neuron)}

    @cached_property
    def story_meaning(self) -> dict:
        """The story token's vector read through the logit lens before the story head's update,
        after it and after the layer; with the story keys' tokens watched."""
        c = self.choice
        watch = tuple(dict.fromkeys(self.trace.tokens[k] for k in c.keys))
        return meaning.vector_meaning(self.trace, self.params.model, c.layer, c.head, c.query, watch, TOP_K)

    @cached_property
    def random_directions(self) -> dict:
        """Cosines between the arrows of two random word pairs: the baseline for two analogies' arrows."""
        return meaning.random_direction_cosines(self.params.model)

    @cached_property
    def random_pairs(self) -> dict:
        """Cosines of random word pairs: the baseline for the analogies' cosines."""
        return meaning.random_pair_cosines(self.params.model)

    # ---- embeddings and word vectors
    @cached_property
    def embedding_corner(self) -> dict:
        return geometry.embedding_corner(self.params.model)

    @cached_property
    def focus_embedding_row(self) -> list[float]:
        """The focus token's whole row of W_E, as stored (before the model's embedding scale)."""
        return geometry.embedding_row(self.params.model, self.trace.tokens[self.focus])

    def neighbours(self, token_id: int) -> list[dict]:
        return geometry.neighbours(token_id, self.params.model, TOP_K)

    @cached_property
    def focus_neighbours(self) -> list[dict]:
        return self.neighbours(self.trace.tokens[self.focus])

    @cached_property
    def analogies(self) -> list[tuple[str, str, str]]:
        return [FIRST_ANALOGY, tuple(self.params.analogy)]

    def analogy(self, words: tuple[str, str, str]) -> dict:
        return geometry.analogy(tuple(words), self.params.model, TOP_K)

    @cached_property
    def analogy_results(self) -> list[dict]:
        return [self.analogy(words) for words in self.analogies]

    @cached_property
    def projection(self) -> dict:
        return geometry.analogy_projection(self.analogies, self.params.model)

    @cached_property
    def orthogonality(self) -> dict:
        return geometry.orthogonality(self.trace.config.d_model, self.params.seed)

    # ---- attention and the MLP: the story head's layer
    @cached_property
    def weight_corners(self) -> dict:
        return attention.weight_corners(self.params.model, self.choice.layer, self.choice.head)

    @cached_property
    def norm_outputs(self) -> dict[str, list[list[float]]]:
        """What the story layer's attention ("ln1") and MLP ("ln2") read, and the unembedding
        ("ln_final"): each norm's output after its learned weight, [pos][d_model]."""
        L = self.choice.layer
        return {short: attention.norm_output(self.trace, self.params.model, name)
                for short, name in (("ln1", f"blocks.{L}.ln1"), ("ln2", f"blocks.{L}.ln2"), ("ln_final", "ln_final"))}

    # ---- prediction, cost, layers, kv-cache
    @cached_property
    def temperatures(self) -> dict:
        return prediction.temperature_table(self.trace, self.params.model)

    @cached_property
    def costs(self) -> dict:
        return prediction.cost_summary(self.trace)

    @cached_property
    def lens(self) -> list[dict]:
        return prediction.lens_rows(self.trace, self.params.model)

    @cached_property
    def kv_counts(self) -> dict:
        return counts.kv_cache_counts(self.trace, self.params.model)


def prepare(names: list[str], params: Params) -> SceneData:
    """Compute (or find cached) everything the named scenes will read. Raises UserError early."""
    data = SceneData(params)
    data.choice  # noqa: B018  (the trace and the story head: every scene reads them)
    for name in names:
        for need in scene_entry(name).needs:
            getattr(data, need)
    return data
