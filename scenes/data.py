"""Everything a scene reads, fetched through `model/` (cache first). Never imports manim.

`prepare(names, params)` is what the CLI runs once in the parent process, so that each
scene's worker process finds its trace and derived facts in the cache.
"""

from __future__ import annotations

from functools import cached_property

from model import analysis, attention_facts, scene_facts
from model.trace import Trace, get_trace

from .params import FIRST_ANALOGY, Params, scene_info

GENERATE_STEPS = 5  # the prompt's own prediction + 4 more, each a real forward pass
TOP_K = 5
PREDICTION_STEPS = 4  # the prediction scene's sampled tokens


class SceneData:
    def __init__(self, params: Params):
        self.params = params

    @cached_property
    def trace(self) -> Trace:
        return get_trace(self.params.prompt, self.params.model, self.params.device)

    @cached_property
    def choice(self) -> analysis.HeadChoice:
        return analysis.choose_head(self.trace, self.params.layer, self.params.head)

    @cached_property
    def facts(self) -> dict:
        return analysis.model_facts(self.params.model)

    @cached_property
    def words(self) -> list[tuple[int, int]]:
        return analysis.word_spans(self.trace.pieces)

    @cached_property
    def generation(self) -> list[dict]:
        return analysis.generate(self.params.prompt, self.params.model, GENERATE_STEPS, self.params.seed, TOP_K)

    def neighbours(self, token_id: int) -> list[dict]:
        return analysis.neighbours(token_id, self.params.model, TOP_K)

    def analogy(self, words: tuple[str, str, str]) -> dict:
        return analysis.analogy(words, self.params.model, TOP_K)

    @cached_property
    def analogies(self) -> list[tuple[str, str, str]]:
        return [FIRST_ANALOGY, tuple(self.params.analogy)]

    @cached_property
    def projection(self) -> dict:
        return analysis.analogy_projection(self.analogies, self.params.model)

    # ---- the attention scenes: the story head's weights (model/attention_facts.py)
    @cached_property
    def weight_corners(self) -> dict:
        return attention_facts.weight_corners(self.params.model, self.choice.layer, self.choice.head)

    @cached_property
    def attention_parameters(self) -> dict:
        return attention_facts.parameter_counts(self.params.model, self.choice.layer)

    # ---- the story scenes: mlp, prediction, cost, orthogonality, layers, kv-cache (model/scene_facts.py)
    @cached_property
    def parameter_counts(self) -> dict:
        return scene_facts.parameter_counts(self.params.model)

    @cached_property
    def samples(self) -> list[dict]:
        return scene_facts.sampled_steps(self.params.model, self.params.prompt, PREDICTION_STEPS, self.params.seed)

    @cached_property
    def temperatures(self) -> dict:
        return scene_facts.temperature_table(self.trace, self.params.model)

    @cached_property
    def costs(self) -> dict:
        return scene_facts.cost_summary(self.trace)

    @cached_property
    def lens(self) -> list[dict]:
        return scene_facts.lens_rows(self.trace, self.params.model)

    @cached_property
    def kv_counts(self) -> dict:
        return scene_facts.kv_cache_counts(self.trace, self.params.model)

    @cached_property
    def orthogonality(self) -> dict:
        return scene_facts.orthogonality(self.trace.config.d_model, self.params.seed)

    @property
    def focus(self) -> int:
        """The token the scenes follow: the story head's query token."""
        return self.choice.query


NEEDS = {
    "overview": ("trace", "choice", "facts", "generation"),
    "tokens": ("trace", "choice", "words"),
    "embeddings": ("trace", "choice", "facts", "neighbours"),
    "word-vectors": ("trace", "choice", "analogies", "projection"),
    "qkv": ("trace", "choice", "weight_corners"), "attention-pattern": ("trace", "choice"),
    "softmax": ("trace", "choice"), "masking": ("trace", "choice"), "values": ("trace", "choice", "weight_corners"),
    "multi-head": ("trace", "choice", "attention_parameters"),
    "mlp": ("trace", "choice", "parameter_counts"),
    "prediction": ("trace", "choice", "samples", "temperatures"),
    "cost": ("trace", "choice", "costs"),
    "orthogonality": ("trace", "choice", "orthogonality"),
    "layers": ("trace", "choice", "lens"),
    "kv-cache": ("trace", "choice", "kv_counts"),
}


def prepare(names: list[str], params: Params) -> SceneData:
    """Compute (or find cached) everything the named scenes will read. Raises UserError early."""
    data = SceneData(params)
    for name in names:
        scene_info(name)
        for need in NEEDS[name]:
            if need == "neighbours":
                data.neighbours(data.trace.tokens[data.focus])
            elif need == "analogies":
                for words in data.analogies:
                    data.analogy(words)
            else:
                getattr(data, need)
    return data
