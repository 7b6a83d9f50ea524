"""layers: what the last vector says as it rises (beyond the talk).

Storyboard:
1. apply the final norm + unembedding to the residual stream after every layer ("logit
   lens"): the real top prediction per layer, as a column that settles.
Then the final answer's probability, layer by layer, as a curve.
"""

from __future__ import annotations

from manim import DOWN, LEFT, RIGHT, UP, Create, FadeIn, LaggedStart, Rectangle, SurroundingRectangle, VGroup, config

from facts.prediction import settling_layer
from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import TokenStrip, fit_height, fit_width, label, token_label
from scenes.parts.plots import Plot, nice_ticks
from scenes.parts.provenance import Shown
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_percent

ROWS_PER_COLUMN = 15


class Layers(TransformerScene):
    title_text = "Reading the vector between layers"
    beats = ("beat_lens", "beat_answer")

    def setup(self):
        super().setup()
        self.rows = self.data.lens
        self.final = self.rows[-1]["top"][0]
        self.settled = settling_layer(self.rows)

    def percent(self, p: float, source: str, index: tuple, color=None):
        text = fmt_percent(p)
        return label(text, self.theme, SMALL, color=color or self.theme.text, mono=True,
                     shown=Shown(text, float(p), source, index, kind="percent"))

    def lens_row(self, r: dict) -> VGroup:
        theme = self.theme
        top = r["top"][0]
        hit = top["id"] == self.final["id"]
        name = label(f"{r['layer']:>2}", theme, SMALL, color=theme.dim, mono=True,
                     shown=Shown(f"{r['layer']:>2}", r["layer"], "index", kind="text"))
        tok = token_label(top["token"], theme, LABEL, color=theme.accent if hit else theme.text,
                          source="lens.piece", index=(r["layer"], 0))
        bar = Rectangle(width=max(0.02, 1.4 * top["probability"]), height=0.2, stroke_width=0,
                        fill_color=theme.accent if hit else theme.positive, fill_opacity=0.85)
        pct = self.percent(top["probability"], "lens.p", (r["layer"], 0))
        name.move_to([0, 0, 0], aligned_edge=RIGHT)
        tok.move_to([0.25, 0, 0], aligned_edge=LEFT)
        bar.move_to([2.4, 0, 0], aligned_edge=LEFT)
        pct.next_to(bar, RIGHT, buff=0.1)
        return VGroup(name, tok, bar, pct)

    def beat_lens(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        last = len(trace.tokens) - 1
        chip = TokenStrip(trace.pieces, trace.tokens, theme, positions=[last], size=SMALL)
        intro = VGroup(label("the last token", theme, SMALL, color=theme.dim), chip,
                       label("read after each layer through the final norm + unembedding", theme, SMALL, color=theme.dim))
        intro.arrange(RIGHT, buff=0.15)
        columns = VGroup()
        for start in range(0, len(self.rows), ROWS_PER_COLUMN):
            col = VGroup(*[self.lens_row(r) for r in self.rows[start:start + ROWS_PER_COLUMN]])
            for k, row in enumerate(col):
                row.shift(DOWN * 0.36 * k)
            head = VGroup(label("layer", theme, SMALL, color=theme.dim), label("top token", theme, SMALL, color=theme.dim))
            head[0].move_to(col[0][0].get_right() + UP * 0.42, aligned_edge=RIGHT)
            head[1].move_to([col[0][1].get_left()[0], col[0][0].get_y() + 0.42, 0], aligned_edge=LEFT)
            columns.add(VGroup(head, col))
        columns.arrange(RIGHT, buff=1.2, aligned_edge=UP)
        layout = VGroup(intro, columns).arrange(DOWN, buff=0.3)
        fit_width(layout, config.frame_width - 0.8)
        fit_height(layout, self.stage_top() + config.frame_height / 2 - 0.55)
        layout.next_to([0, self.stage_top(), 0], DOWN, buff=0.1).set_x(0)
        rows = [row for _, col in columns for row in col]
        first = self.rows[0]["top"][0]
        self.say(f"What would the model say if it stopped early? "
                 f"We can ask after each of its {narration.spoken_count(cfg.n_layers)} layers. "
                 "We take the last token's vector there, and apply the model's final norm and unembedding. "
                 "This trick is called the logit lens.")
        self.play(FadeIn(intro), *[FadeIn(h) for h, _ in columns], run_time=1)
        self.say(f"After layer 0, it would say {self.word(first['token'])}, "
                 f"with {narration.spoken_percent(first['probability'])}. Then each layer has its own top guess.")
        self.play(LaggedStart(*[FadeIn(row, shift=0.1 * UP) for row in rows], lag_ratio=0.12), run_time=5.5)
        box = SurroundingRectangle(VGroup(*rows[self.settled:]), color=theme.accent, buff=0.06) \
            if self.settled >= len(rows) - ROWS_PER_COLUMN or len(rows) <= ROWS_PER_COLUMN else None
        answer, last = self.word(self.final["token"]), len(self.rows) - 1
        if self.settled == 0:
            settles = f"The top token is {answer} after every layer."
        elif self.settled == last:
            settles = f"The top guess keeps changing until the last layer, layer {last}, which picks {answer}."
        else:
            settles = f"From layer {self.settled} on, the top token stays {answer}."
        p = self.final["probability"]
        weak = ": the model is far from sure" if p < 0.2 else ""
        self.say(f"{settles} That is the model's real answer, with {narration.spoken_percent(p)} at the end{weak}.")
        if box is not None:
            self.play(Create(box), run_time=0.8)
        self.wait(0.5)

    def beat_answer(self):
        theme, cfg = self.theme, self.trace.config
        self.clear_stage()
        ps = [r["answer_probability"] for r in self.rows]
        n = len(ps)
        plot = Plot((0, n - 1), (0, 1.0), theme, width=9.5, height=4.0, x_ticks=nice_ticks(n - 1, 5),
                    y_ticks=[0, 0.25, 0.5, 0.75, 1.0], y_decimals=2, x_label="layer",
                    y_label="probability of the final answer")
        plot.move_to(DOWN * 0.5)
        xs = list(range(n))
        curve = plot.polyline(xs, ps, theme.accent, 4)
        dots = plot.dots(xs, ps, theme.accent, radius=0.05)
        word = token_label(self.final["token"], theme, BODY, color=theme.accent, source="lens.piece", index=(n - 1, 0))
        answer = VGroup(label("final answer", theme, LABEL, color=theme.dim),
                        VGroup(SurroundingRectangle(word, color=theme.accent, buff=0.12, corner_radius=0.06), word))
        answer.arrange(RIGHT, buff=0.2)
        answer.next_to(plot.point(0, 1.0), RIGHT, buff=0.4).shift(DOWN * 0.2)
        marks = VGroup()
        for layer in sorted({0, n // 2, n - 1}):
            p = self.percent(ps[layer], "lens.answer", (layer,), color=theme.accent)
            p.next_to(plot.point(layer, ps[layer]), UP + (LEFT if layer == n - 1 else RIGHT), buff=0.1)
            marks.add(p)
        settle = plot.vline(self.settled, theme.dim)
        settle_label = label(f"top from layer {self.settled}", theme, SMALL, color=theme.dim)
        settle_label.next_to(settle, DOWN, buff=0.05).shift(UP * 0.35 + RIGHT * (settle_label.width / 2 + 0.1))
        if settle_label.get_right()[0] > config.frame_width / 2 - 0.2:
            settle_label.shift(LEFT * (settle_label.width + 0.2))
        self.say(f"Here is the same story as a curve: the probability of {self.word(self.final['token'])} "
                 "after each layer.")
        self.play(FadeIn(plot), FadeIn(answer), run_time=0.8)
        self.play(Create(curve), FadeIn(dots), run_time=2)
        pct = narration.spoken_percent
        self.say(f"It is {pct(ps[0])} after layer 0, {pct(ps[n // 2])} after layer {n // 2}, "
                 f"and {pct(ps[-1])} after layer {n - 1}.")
        self.play(FadeIn(marks), Create(settle), FadeIn(settle_label), run_time=0.8)
        if ps[-1] > ps[0]:
            self.say("Each layer adds a little to the vector, and the guess sharpens.")
        else:
            self.say("Each layer adds a little to the vector, but here the guess does not sharpen.")
        self.wait(0.5)
