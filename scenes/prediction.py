"""prediction: from the last vector to the next token.

Storyboard:
1. the final vector (real) times the unembedding matrix gives one logit per vocabulary
   entry; the top logits as bars with their tokens;
2. softmax with a temperature turns logits into probabilities (the real distribution at
   T = 0, 0.5, 1, 2); a token is sampled (seeded) and appended;
3. repeat for a few tokens: the text grows, each step's real distribution shown.

Same seed, same tokens, same video (facts/generation.py samples with a seeded generator), and
the same tokens as the overview's loop.
"""

from __future__ import annotations

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, Arrow, FadeIn, FadeOut, GrowArrow, Indicate, LaggedStart, MathTypst,
                   ReplacementTransform, SurroundingRectangle, VGroup, config)

from facts.attention import TEMPERATURES
from facts.generation import SAMPLE_TEMPERATURE
from scenes.parts.base import TransformerScene
from scenes.parts.components import ProbabilityBars, TokenStrip, VectorColumn, fit_width, label, sample_rows
from scenes.parts.plots import MatrixBox
from scenes.parts.provenance import Shown
from scenes.parts.theme import LABEL, SMALL, fmt, fmt_int, fmt_percent

CONTEXT_TOKENS = 7  # prompt tokens kept in view before the generated ones


def t_text(t: float) -> str:
    return f"{t:g}"


class Prediction(TransformerScene):
    title_text = "From the last vector to the next token"
    beats = ("beat_logits", "beat_temperature", "beat_sample", "beat_repeat")

    def setup(self):
        super().setup()
        self.last = len(self.trace.tokens) - 1
        self.steps = self.data.samples

    # ------------------------------------------------------------------ helpers
    def context_strip(self, n_new: int) -> TokenStrip:
        """The end of the prompt and the first n_new sampled tokens as token boxes; new ones outlined."""
        trace = self.trace
        new = self.steps[:n_new]
        pieces = list(trace.pieces) + [s["chosen"]["token"] for s in new]
        ids = list(trace.tokens) + [s["chosen"]["id"] for s in new]
        n = len(trace.tokens)
        start = max(0, n - CONTEXT_TOKENS)
        positions = ([None] if start > 0 else []) + list(range(start, len(pieces)))
        strip = TokenStrip(pieces, ids, self.theme, positions=positions, max_width=config.frame_width - 1.0)
        for k, pos in enumerate(range(n, len(pieces))):
            text = strip.texts[pos]
            text.shown = Shown(text.shown.text, pieces[pos], "vocab", (ids[pos],), kind="token")
            strip.boxes[pos][0].set_stroke(self.theme.accent, width=4)
        return strip

    def place_strip(self, strip: TokenStrip) -> TokenStrip:
        strip.next_to([0, self.stage_top(), 0], DOWN, buff=0.3)
        strip.set_x(0)
        return strip

    def step_bars(self, step: int) -> ProbabilityBars:
        rows, chosen = sample_rows(self.steps, step)
        return ProbabilityBars(rows, self.theme, bar_width=3.2, size=LABEL * 0.9, highlight=chosen, source="sample.probs")

    # ------------------------------------------------------------------ beats
    def beat_logits(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        pos = self.last
        vec = VectorColumn(np.array(self.data.norm_outputs["ln_final"][pos]), theme, "norm_output:ln_final", (pos,),
                           head=3, tail=2, size=SMALL, color=theme.token_color(pos))
        vec_title = VGroup(label("last token's final vector", theme, SMALL, color=theme.dim),
                           TokenStrip(trace.pieces, trace.tokens, theme, positions=[pos], size=SMALL)).arrange(DOWN, buff=0.15)
        left = VGroup(vec_title, vec).arrange(DOWN, buff=0.25)
        W_U = MatrixBox("W_U", (cfg.d_model, cfg.vocab_size), ("config.d_model", "config.vocab_size"), theme,
                        width=1.8, height=1.1, color=theme.positive)
        if cfg.tied_embeddings:
            tied = label("(W_E turned on its side)", theme, SMALL * 0.85, color=theme.dim).next_to(W_U, DOWN, buff=0.1)
            W_U.add(tied)
        table = self.data.temperatures
        rows = [(piece, v, (pos, i), None) for piece, i, v in zip(table["pieces"], table["ids"], table["logits"])]
        bars = ProbabilityBars(rows, theme, bar_width=2.6, size=LABEL * 0.9, source="logits", value_kind="number")
        bars_title = label(f"top 5 of {fmt_int(cfg.vocab_size)} logits", theme, SMALL, color=theme.dim)
        right = VGroup(bars_title, bars).arrange(DOWN, buff=0.3, aligned_edge=LEFT)
        row = VGroup(left, W_U, right).arrange(RIGHT, buff=1.0)
        fit_width(row, config.frame_width - 0.8)
        row.move_to(DOWN * 0.3)
        a1 = Arrow(left.get_right(), W_U.box.get_left(), buff=0.15, color=theme.dim, stroke_width=3)
        a2 = Arrow(W_U.box.get_right(), right.get_left(), buff=0.15, color=theme.dim, stroke_width=3)
        self.say(f"After the last layer, only the last token's vector matters for what comes next: "
                     f"{cfg.d_model} numbers.")
        self.play(FadeIn(left), run_time=1)
        self.say(f"Multiplying by the unembedding matrix gives one score, a logit, for each of the "
                     f"{fmt_int(cfg.vocab_size)} tokens.")
        self.play(GrowArrow(a1), FadeIn(W_U), run_time=0.8)
        self.play(GrowArrow(a2), FadeIn(bars_title),
                  LaggedStart(*[FadeIn(line, shift=0.2 * RIGHT) for line in bars.lines], lag_ratio=0.12), run_time=1.5)
        self.say(f"The highest: {rows[0][0]!r} with {fmt(rows[0][1])}, then {rows[1][0]!r} with {fmt(rows[1][1])}. "
                     "Logits are not yet probabilities.")
        self.wait(1.5)

    def beat_temperature(self):
        trace, theme = self.trace, self.theme
        self.clear_stage()
        pos, table = self.last, self.data.temperatures
        formula = MathTypst("p_i = e^(z_i \\/ T) / (sum_j e^(z_j \\/ T))", color=theme.text, font_size=36)
        formula.next_to([0, self.stage_top(), 0], DOWN, buff=0.2)
        panels = VGroup()
        for t in TEMPERATURES:
            rows = [(piece, p, (pos, t, i), None)
                    for piece, i, p in zip(table["pieces"], table["ids"], table["probs"][repr(float(t))])]
            bars = ProbabilityBars(rows, theme, bar_width=1.25, size=LABEL * 0.9, source="probs@T", top=1.0)
            head = VGroup(label(f"T = {t_text(t)}", theme, LABEL, color=theme.accent if t == SAMPLE_TEMPERATURE else theme.text),
                          label("always the top" if t == 0 else ("sharper" if t < 1 else ("as trained" if t == 1 else "flatter")),
                                theme, SMALL, color=theme.dim)).arrange(DOWN, buff=0.1)
            head.set_x(bars.bars[0].get_left()[0] + 0.6)
            panels.add(VGroup(head, bars))
            bars.next_to(head, DOWN, buff=0.3).align_to(head, LEFT).shift(LEFT * 0.6)
        panels.arrange(RIGHT, buff=0.45, aligned_edge=UP)
        for head, bars in panels[1:]:  # same baseline for every panel
            head.align_to(panels[0][0], UP)
            bars.align_to(panels[0][1], UP)
        fit_width(panels, config.frame_width - 0.6)
        if panels.height > formula.get_bottom()[1] + config.frame_height / 2 - 0.9:
            panels.scale_to_fit_height(formula.get_bottom()[1] + config.frame_height / 2 - 0.9)
        panels.next_to(formula, DOWN, buff=0.35)
        probs = {t: table["probs"][repr(float(t))][0] for t in TEMPERATURES}
        top = table["pieces"][0]
        self.say("Softmax turns logits into probabilities; dividing by a temperature T first "
                     "sharpens (T < 1) or flattens (T > 1) them.")
        self.play(FadeIn(formula), run_time=0.8)
        self.play(LaggedStart(*[FadeIn(p) for p in panels], lag_ratio=0.25), run_time=2)
        self.say(f"{top!r} gets {fmt_percent(probs[0.5])} at T = 0.5, {fmt_percent(probs[1.0])} at T = 1, "
                     f"{fmt_percent(probs[2.0])} at T = 2, where the rest spreads over thousands of unlikely tokens.")
        self.wait(2)

    def beat_sample(self):
        theme = self.theme
        self.clear_stage()
        strip = self.place_strip(self.context_strip(0))
        bars = self.step_bars(0)
        rows, chosen = sample_rows(self.steps, 0)
        note = VGroup(label(f"T = {t_text(SAMPLE_TEMPERATURE)}", theme, LABEL),
                      label(f"seed {self.params.seed}", theme, LABEL, color=theme.dim)).arrange(DOWN, aligned_edge=LEFT)
        panel = VGroup(bars, note).arrange(RIGHT, buff=1.0)
        fit_width(panel, config.frame_width - 1.0)
        panel.next_to(strip, DOWN, buff=0.8)
        s = self.steps[0]["chosen"]
        self.say(f"To write, draw one token at random from these probabilities (T = {t_text(SAMPLE_TEMPERATURE)}, "
                     f"seed {self.params.seed}: the same seed always draws the same tokens).")
        self.play(FadeIn(strip), FadeIn(panel), run_time=1.2)
        box = SurroundingRectangle(bars.lines[chosen], color=theme.accent, buff=0.08)
        self.say(f"This time the draw gives {s['token']!r} ({fmt_percent(s['probability'])}); it is appended to the text.")
        self.play(FadeIn(box), Indicate(bars.lines[chosen], color=theme.accent, scale_factor=1.05), run_time=1)
        grown = self.place_strip(self.context_strip(1))
        self.play(ReplacementTransform(strip, grown), FadeOut(box), run_time=1)
        self.wait(1)
        self.strip, self.bars, self.note = grown, bars, note

    def beat_repeat(self):
        theme = self.theme
        strip, bars = self.strip, self.bars
        self.say("Then the whole model runs again on the longer text, and the next token is drawn the same way.")
        for step in range(1, len(self.steps)):
            new_bars = self.step_bars(step).move_to(bars, aligned_edge=UP + LEFT)
            rows, chosen = sample_rows(self.steps, step)
            s = self.steps[step]
            self.play(ReplacementTransform(bars, new_bars), run_time=0.9)
            bars = new_bars
            box = SurroundingRectangle(bars.lines[chosen], color=theme.accent, buff=0.08)
            self.say(f"Step {step + 1}: {s['top'][0]['token']!r} leads with {fmt_percent(s['top'][0]['probability'])}; "
                         f"the draw gives {s['chosen']['token']!r} ({fmt_percent(s['chosen']['probability'])}).")
            self.play(FadeIn(box), run_time=0.5)
            grown = self.place_strip(self.context_strip(step + 1))
            self.play(ReplacementTransform(strip, grown), FadeOut(box), run_time=0.8)
            strip = grown
            self.wait(0.5)
        text = "".join(s["chosen"]["token"] for s in self.steps)
        self.say(f"{len(self.steps)} draws, {len(self.steps)} forward passes: the model added {text!r}.")
        self.wait(1.5)
