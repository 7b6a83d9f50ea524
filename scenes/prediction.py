"""prediction: from the last vector to the next token.

Storyboard:
1. the final vector (real) times the unembedding matrix gives one logit per vocabulary
   entry; the top logits as bars with their tokens;
2. softmax with a temperature turns logits into probabilities (the real distribution at
   T = 0, 0.5, 1, 2); a token is sampled (seeded) and appended;
3. repeat for a few tokens: the text grows, each step's real distribution shown;
4. the same seed at T = 0, 0.5, 1 and 2, side by side as text: how many draws were the top
   pick at each temperature, and how many were long shots (under 1%) at the hottest.

Same seed, same tokens, same video (facts/generation.py samples with a seeded generator), and
the same tokens as the overview's loop.
"""

from __future__ import annotations

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, Arrow, FadeIn, FadeOut, GrowArrow, Indicate, LaggedStart, MathTypst,
                   ReplacementTransform, SurroundingRectangle, VGroup, config)

from facts.attention import TEMPERATURES
from facts.generation import SAMPLE_TEMPERATURE
from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import ProbabilityBars, TokenStrip, VectorColumn, count, fit_width, label, sample_rows
from scenes.parts.plots import MatrixBox
from scenes.parts.provenance import Shown
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_int

CONTEXT_TOKENS = 7  # prompt tokens kept in view before the generated ones


LONG_SHOT = 0.01  # a draw with less than this probability (at its own temperature) is a long shot


def t_text(t: float) -> str:
    return f"{t:g}"


def running_text(text: str) -> str:
    """A sampled continuation as drawn: line breaks and tabs made visible, outer spaces dropped
    (a continuation of spaces only shows them as ␣)."""
    shown = text.replace("\r", "\u240d").replace("\n", "\u21b5").replace("\t", "\u21e5").strip(" ")
    return shown or "\u2423" * len(text)


def quotable(text: str) -> str | None:
    """A continuation as narration quotes it (inner line breaks read as spaces), or None when
    it would not read as text (byte pieces, replacement characters, nothing but marks)."""
    words = " ".join(text.split())
    if not any(ch.isalnum() for ch in words) or "<0x" in words or "\ufffd" in words:
        return None
    return words


class Prediction(TransformerScene):
    title_text = "From the last vector to the next token"
    beats = ("beat_logits", "beat_temperature", "beat_sample", "beat_repeat", "beat_temperature_text")

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
        n = narration.spoken_count
        self.say(f"After the last layer, only the last token's vector decides what comes next. "
                 f"It has {n(cfg.d_model)} numbers.")
        self.play(FadeIn(left), run_time=1)
        self.say("The unembedding matrix turns it into one score for every token in the vocabulary."
                 + (" This model reuses its embedding matrix for this, turned on its side." if cfg.tied_embeddings else ""))
        self.play(GrowArrow(a1), FadeIn(W_U), run_time=0.8)
        self.say(f"That makes {n(cfg.vocab_size)} scores, called logits. Here are the top five.")
        self.play(GrowArrow(a2), FadeIn(bars_title),
                  LaggedStart(*[FadeIn(line, shift=0.2 * RIGHT) for line in bars.lines], lag_ratio=0.12), run_time=1.5)
        say = narration.spoken_number
        first, second = say(rows[0][1]), say(rows[1][1])
        close = ", almost tied," if first == second else ""
        self.say(f"The highest is {self.word(rows[0][0])}, at {first}. "
                 f"Next{close} is {self.word(rows[1][0])}, at {second}. Logits are not probabilities yet.")

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
        self.say("Softmax turns logits into probabilities. "
                 "First, every logit is divided by a number called the temperature, T.")
        self.play(FadeIn(formula), run_time=0.8)
        self.say("A T below 1 sharpens the odds, and a T above 1 flattens them. "
                 "At T = 0, the top token always wins.")
        self.play(LaggedStart(*[FadeIn(p) for p in panels], lag_ratio=0.25), run_time=2)
        said = [f"{narration.spoken_percent(probs[t])} at T = {t_text(t)}" for t in TEMPERATURES if t > 0]
        hottest = t_text(max(TEMPERATURES))
        self.say(f"{self.word(top)} gets {', '.join(said[:-1])}, and {said[-1]}. "
                 f"At T = {hottest}, the rest spreads over thousands of unlikely tokens.")
        self.wait(0.5)

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
        self.say(f"To write, the model draws one token at random from these probabilities. "
                 f"Here T = {t_text(SAMPLE_TEMPERATURE)} and the seed is {self.params.seed}. "
                 "The same seed always draws the same tokens.")
        self.play(FadeIn(strip), FadeIn(panel), run_time=1.2)
        box = SurroundingRectangle(bars.lines[chosen], color=theme.accent, buff=0.08)
        self.say(f"This time the draw picks {self.draw(0)}")
        self.play(FadeIn(box), Indicate(bars.lines[chosen], color=theme.accent, scale_factor=1.05), run_time=1)
        self.say("It is added to the end of the text.")
        grown = self.place_strip(self.context_strip(1))
        self.play(ReplacementTransform(strip, grown), FadeOut(box), run_time=1)
        self.strip, self.bars, self.note = grown, bars, note

    def beat_repeat(self):
        theme = self.theme
        strip, bars = self.strip, self.bars
        self.say("Then the whole model runs again on the longer text. The next token is drawn the same way.")
        for step in range(1, len(self.steps)):
            new_bars = self.step_bars(step).move_to(bars, aligned_edge=UP + LEFT)
            rows, chosen = sample_rows(self.steps, step)
            self.say(f"Step {step + 1}: the draw picks {self.draw(step)}")
            self.play(ReplacementTransform(bars, new_bars), run_time=0.9)
            bars = new_bars
            box = SurroundingRectangle(bars.lines[chosen], color=theme.accent, buff=0.08)
            self.play(FadeIn(box), run_time=0.5)
            grown = self.place_strip(self.context_strip(step + 1))
            self.play(ReplacementTransform(strip, grown), FadeOut(box), run_time=0.8)
            strip = grown
        words = [self.word(s["chosen"]["token"]) for s in self.steps]
        listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
        n = len(self.steps)
        self.say(f"{narration.spoken_count(n)} {'draw' if n == 1 else 'draws'}, one run of the model each. "
                 f"Together they added {listed}.")
        self.wait(0.5)

    def beat_temperature_text(self):
        trace, theme = self.trace, self.theme
        self.clear_stage()
        runs = self.data.temperature_samples
        temps = list(runs)
        n = max(len(steps) for steps in runs.values())
        tail = trace.prompt.replace("\r", "").split("\n")[-1].strip() or trace.prompt.strip()
        tail = tail if len(tail) <= 40 else tail[-39:].lstrip()
        cut = [label("…", theme, LABEL, color=theme.dim)] if tail != trace.prompt.strip() else []  # only when text is left out
        prompt = VGroup(*cut, label(tail, theme, LABEL, color=theme.dim,
                                    shown=Shown(tail, tail, "prompt", kind="text"))).arrange(RIGHT, buff=0.1)
        prompt.next_to([0, self.stage_top(), 0], DOWN, buff=0.35)
        favourites = {t: sum(s["chosen"]["id"] == s["top"][0]["id"] for s in runs[t]) for t in temps}
        rows = VGroup()
        for t in temps:
            steps = runs[t]
            text = "".join(s["chosen"]["token"] for s in steps)
            shown = running_text(text)
            line = label(shown, theme, BODY, color=theme.accent if t == SAMPLE_TEMPERATURE else theme.text,
                         shown=Shown(shown, text, "temperature.text", (t,), kind="text"))
            tag = VGroup(label(f"T = {t_text(t)}", theme, LABEL, color=theme.accent if t == SAMPLE_TEMPERATURE else theme.text),
                         VGroup(count(favourites[t], theme, "temperature.top_picks", size=SMALL, color=theme.dim, index=(t,)),
                                label("of", theme, SMALL, color=theme.dim),
                                count(len(steps), theme, "temperature.steps", size=SMALL, color=theme.dim, index=(t,)),
                                label("top picks", theme, SMALL, color=theme.dim)).arrange(RIGHT, buff=0.1)
                         ).arrange(DOWN, aligned_edge=LEFT, buff=0.1)
            rows.add(VGroup(tag, line))
        tag_w = max(r[0].width for r in rows)
        text_w = config.frame_width - 1.0 - tag_w - 0.5
        for k, (tag, line) in enumerate(rows):
            fit_width(line, text_w)
            tag.move_to([0, -k * 1.15, 0], aligned_edge=LEFT)
            line.next_to([tag_w + 0.5, tag.get_y(), 0], RIGHT, buff=0)
        rows.next_to(prompt, DOWN, buff=0.5)
        rows.align_to([-config.frame_width / 2 + 0.5, 0, 0], LEFT)
        pct = narration.spoken_percent
        self.say(f"Temperature changes what gets written. Here the same seed writes {narration.spoken_count(n)} "
                 f"tokens at each of {narration.spoken_count(len(temps))} temperatures.")
        self.play(FadeIn(prompt), *[FadeIn(r[0]) for r in rows], run_time=1)
        texts = {t: "".join(s["chosen"]["token"] for s in runs[t]) for t in temps}
        for k, t in enumerate(temps):
            m, total = favourites[t], len(runs[t])
            picks = ("every token is the top pick" if m == total else
                     "none of the tokens is the top pick" if m == 0 else
                     f"{narration.spoken_count(m)} of {narration.spoken_count(total)} tokens are the top pick")
            said = quotable(texts[t])
            same = next((u for u in temps[:k] if texts[u] == texts[t]), None)
            what = (f"the same text as at T = {t_text(same)}" if same is not None else
                    f"“{said}”" if said else "no readable words")
            self.say(f"At T = {t_text(t)}, {picks}: {what}.")
            self.play(FadeIn(rows[k][1], shift=0.2 * RIGHT), run_time=0.8)
        hot, cold = temps[-1], temps[0]
        long_shots = sum(s["chosen"]["probability"] < LONG_SHOT for s in runs[hot])
        fewer = all(favourites[a] >= favourites[b] for a, b in zip(temps, temps[1:])) and favourites[hot] < favourites[cold]
        if fewer and long_shots * 2 >= len(runs[hot]):
            self.say(f"Low temperature is predictable: the top pick, again and again. High temperature is chaotic. "
                     f"At T = {t_text(hot)}, {self.how_many(long_shots, len(runs[hot]))} draws "
                     f"had under {pct(LONG_SHOT)} chance each.")
        elif fewer:
            self.say("The hotter, the fewer top picks. "
                     f"But at T = {t_text(hot)} only {narration.spoken_count(long_shots)} of the draws were long shots, "
                     "so the text still mostly holds together here.")
        else:
            self.say("Here the order is not clean: a hotter run picked the top token more often than a cooler one. "
                     f"{narration.spoken_count(n).capitalize()} draws are few, and chance plays its part.")
        self.wait(0.5)

    @staticmethod
    def how_many(k: int, n: int) -> str:
        """ "all 8", "5 of the 8" """
        return f"all {narration.spoken_count(n)}" if k == n else f"{narration.spoken_count(k)} of the {narration.spoken_count(n)}"

    def draw(self, step: int) -> str:
        """What narration says about one draw: the token picked, and how it compares with the leader."""
        s = self.steps[step]
        chosen, top = s["chosen"], s["top"][0]
        pct = narration.spoken_percent
        if chosen["id"] == top["id"]:
            return f"{self.word(chosen['token'])}, the most likely token, at {pct(chosen['probability'])}."
        return (f"{self.word(chosen['token'])}, at {pct(chosen['probability'])}. "
                f"It is not the leader: {self.word(top['token'])} had {pct(top['probability'])}.")
