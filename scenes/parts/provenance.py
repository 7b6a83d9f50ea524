"""Where every shown value came from. Never imports manim.

A component that puts a value on screen attaches a `Shown` to the mobject that displays
it: the text as drawn, the value it stands for, and its source, e.g.
`Shown("+0.03", 0.0329..., "hook_embed", (3, 0))`. Tests walk a built scene's mobjects and
recompute every source from the trace or the weights.

Source names:
    any trace tensor name   value = trace[name][index]
    "probs"                 softmax(trace["logits"][pos]) [pos, token id]  (prompt: which trace)
    "tokens" / "pieces"     trace.tokens[i] / trace.pieces[i]
    "vocab"                 the text of token id i in the model's vocabulary
    "prompt"                text shown from the prompt (a window of it: value is the shown text)
    "config.FIELD"          trace.config.FIELD
    "count.chars" / "count.tokens"        len(prompt) / len(tokens); "count.chars^2" etc. squared
    "embed.W_E"             the embedding matrix, index (row, col)
    "analogy"               (a, b, c) words: index ("result", j) or ("nearest", rank, "piece"|"cosine")
    "neighbours"            index (token id, rank, "piece"|"cosine")
    "params.total"          number of parameters in the weights
    "rope.angle"            (pos, pair): the rotary angle in radians
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Shown:
    text: str  # exactly what is drawn
    value: object  # what it stands for (float, int or str)
    source: str
    index: tuple = ()
    prompt: str | None = None  # the trace it comes from when not the scene's own prompt
    kind: str = "number"  # number | percent | int | token | text | decimals
    decimals: int = 2
    extra: dict = field(default_factory=dict, compare=False)
