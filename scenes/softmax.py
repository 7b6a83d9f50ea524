"""softmax: numbers to weights, and temperature.

Storyboard:
1. a real list of numbers (the story query's scores) as bars; exponentiate, then divide by
   the total: bars become weights that sum to 1;
2. temperature: the same scores at T = 0 (all weight on the largest, no division by zero),
   0.5, 1 and 2: the weights sharpen and flatten, real values.
"""

from __future__ import annotations

import math

import numpy as np
from manim import DOWN, LEFT, RIGHT, UP, FadeIn, MathTypst, ReplacementTransform, VGroup, config

from facts import attention as af
from facts.attention import TEMPERATURES
from scenes.parts import narration
from scenes.parts.attention_parts import AttentionScene, SignedBars, fit_height
from scenes.parts.components import fit_width, label, percent, token_label
from scenes.parts.theme import LABEL, SMALL

MAX_BARS = 6  # longer columns show their largest scores; the caption counts the rest


class Softmax(AttentionScene):
    title_text = "Softmax: scores become weights"
    beats = ("beat_exp_and_normalise", "beat_temperature")

    def shown_keys(self) -> list[int]:
        """The story query's keys drawn as bars: all, or the MAX_BARS with the largest scores (in order)."""
        scores = self.trace[self.hook("hook_attn_scores")][self.head, self.query, : self.query + 1]
        order = np.argsort(-scores.numpy(), kind="stable")[:MAX_BARS]
        return sorted(int(k) for k in order)

    def bars(self, values: dict[int, float], source: str, index, top: float | None = None, slot: float = 1.25,
             height: float = 2.0, color=None, size: float = SMALL, kind: str = "number") -> SignedBars:
        """kind: "percent" for weights (probabilities), else signed numbers (scores, exponentials)."""
        trace = self.trace
        items = [(token_label(trace.pieces[k], self.theme, size, color=self.theme.token_color(k), index=(k,)),
                  values[k], source, index(k)) for k in self.keys_shown]
        return SignedBars(items, self.theme, height=height, slot=slot, top=top, color=color, size=size, kind=kind)

    def beat_exp_and_normalise(self):
        trace, theme = self.trace, self.theme
        L, H, q = self.layer, self.head, self.query
        self.keys_shown = self.shown_keys()
        scores = trace[self.hook("hook_attn_scores")][H, q, : q + 1].double()
        pattern = trace[self.hook("hook_pattern")][H, q]
        formula = MathTypst(r'"weight"_i = e^(x_i) / (sum_j e^(x_j))', font_size=34, color=theme.text)
        formula.next_to([0, self.stage_top(), 0], DOWN, buff=0.1).to_edge(RIGHT, buff=0.5)
        area_top = formula.get_bottom()[1] - 0.1
        row_h = (area_top + config.frame_height / 2 - 0.6) / 3
        left_x = -config.frame_width / 2 + 0.5

        def place(bars: SignedBars, name: str, row: int) -> VGroup:
            """Stage `row` (0, 1, 2) of the pipeline: its name on the left, its bars to the right."""
            title = label(name, theme, LABEL, color=theme.dim)
            fit_width(title, 3.6)
            fit_height(bars, row_h - 0.35)
            fit_width(bars, config.frame_width - 5.0)
            y = area_top - row * row_h
            title.move_to([left_x, y - row_h / 2, 0], aligned_edge=LEFT)
            bars.move_to([left_x + 4.0, y - 0.05, 0], aligned_edge=UP + LEFT)
            return VGroup(title, bars)

        raw = self.bars({k: float(scores[k]) for k in self.keys_shown}, self.hook("hook_attn_scores"),
                        lambda k: (H, q, k), height=0.7 if float(scores.min()) < 0 < float(scores.max()) else 1.2)
        step1 = place(raw, "x: the scores", 0)
        listing = "the one score" if q == 0 else f"the {q + 1} scores"
        self.say(f"Softmax turns any list of numbers into weights. Here it gets {listing} in the column of "
                 f"{self.piece(q)}, from head {H} of layer {L}.")
        self.play(FadeIn(step1), FadeIn(formula), run_time=1.2)
        exps = {k: math.exp(float(scores[k])) for k in self.keys_shown}
        up = self.bars(exps, "attn.exp", lambda k: (L, H, q, k), height=1.2, kind="decimals")
        step2 = place(up, "e^x: all positive", 1)
        if float(scores.min()) < 0:
            self.say("First, raise e to the power of each score. Negative scores become small positive numbers, "
                     "and the largest pulls far ahead.")
        else:
            self.say("First, raise e to the power of each score. Every result is positive, "
                     "and the largest pulls far ahead.")
        self.play(ReplacementTransform(step1.copy(), step2), run_time=1.5)
        total = float(scores.exp().sum())
        weights = self.bars({k: float(pattern[k]) for k in self.keys_shown}, self.hook("hook_pattern"),
                            lambda k: (H, q, k), top=1.0, color=theme.accent, height=1.2, kind="percent")
        step3 = place(weights, "÷ their total", 2)
        col_sum = VGroup(label(f"sum of all {'weights' if q else 'the weight'}:", theme, LABEL),
                         percent(float(pattern.sum()), theme, "attn.colsum", (L, H, q), size=LABEL))
        col_sum.arrange(RIGHT, buff=0.15).next_to(formula, DOWN, buff=0.3).align_to(formula, RIGHT)
        self.say(f"Then divide each one by their total, here {narration.spoken_number(total)}. "
                 "Now the weights are all positive, and they add up to 1.")
        self.play(ReplacementTransform(step2.copy(), step3), run_time=1.5)
        self.play(FadeIn(col_sum), run_time=0.6)
        hidden = q + 1 - len(self.keys_shown)
        if hidden:
            rest = 1 - sum(float(pattern[k]) for k in self.keys_shown)
            self.say(f"{hidden} smaller {'score is' if hidden == 1 else 'scores are'} not drawn. "
                     f"Together {'it gets' if hidden == 1 else 'they get'} {narration.spoken_percent(rest)}.")
        best = max(self.keys_shown, key=lambda k: float(pattern[k]))
        self.say(f"{self.piece(best)} scored {narration.spoken_number(float(scores[best]))}, "
                 f"and gets {narration.spoken_percent(float(pattern[best]))} of the weight.")

    def beat_temperature(self):
        trace, theme = self.trace, self.theme
        L, H, q = self.layer, self.head, self.query
        self.clear_stage()
        scores = trace[self.hook("hook_attn_scores")][H, q, : q + 1]
        table = af.temperature_weights(scores)
        formula = MathTypst(r'"weight"_i = e^(x_i \/ T) / (sum_j e^(x_j \/ T))', font_size=34, color=theme.text)
        formula.next_to([0, self.stage_top(), 0], DOWN, buff=0.1).to_edge(RIGHT, buff=0.5)
        panels = VGroup()
        for T in TEMPERATURES:
            bars = self.bars({k: table[T][k] for k in self.keys_shown}, "attn.softmax_T", lambda k, T=T: (L, H, q, k, T),
                             top=1.0, slot=1.0, height=1.3, color=theme.accent, size=SMALL * 0.9, kind="percent")
            name = "T = 0: all on the largest" if T == 0 else f"T = {T:g}"
            title = label(name, theme, LABEL, color=theme.text if T == 1 else theme.dim)
            panels.add(VGroup(title, bars).arrange(DOWN, aligned_edge=LEFT, buff=0.25))
        panels.arrange_in_grid(rows=2, cols=2, buff=(0.8, 0.45), aligned_edge=LEFT)
        top = formula.get_bottom()[1] - 0.25
        fit_height(panels, top + config.frame_height / 2 - 0.6)
        fit_width(panels, config.frame_width - 1.0)
        panels.move_to([0, top, 0], aligned_edge=UP)
        self.say("Before softmax, the scores can be divided by a temperature, T. "
                 "It sets how decisive the weights are. T = 1 is what the model uses.")
        self.play(FadeIn(formula), FadeIn(panels[2]), run_time=1.0)
        best = max(self.keys_shown, key=lambda k: table[1.0][k])
        name = self.piece(best)
        at = {T: narration.spoken_percent(table[T][best]) for T in (0.5, 1.0, 2.0)}
        if q == 0:
            self.say("T = 0.5 would sharpen the weights, but a single score gets all the weight at any temperature.")
        elif at[0.5] == at[1.0]:
            self.say(f"T = 0.5 sharpens the weights, though {name} already has {at[1.0]}.")
        else:
            self.say(f"T = 0.5 sharpens the weights: {name} goes from {at[1.0]} to {at[0.5]}.")
        self.play(FadeIn(panels[1]), run_time=0.8)
        self.say("T = 0 is the limit: all the weight goes to the largest score. "
                 "It is picked directly, so nothing is divided by zero.")
        self.play(FadeIn(panels[0]), run_time=0.8)
        if q == 0:
            self.say("T = 2 would flatten them, but one score still keeps it all.")
        elif at[2.0] == at[1.0]:
            self.say(f"T = 2 flattens the weights, though {name} stays at {at[2.0]}.")
        else:
            self.say(f"T = 2 flattens the weights: {name} drops to {at[2.0]}, and the others gain.")
        self.play(FadeIn(panels[3]), run_time=0.8)
