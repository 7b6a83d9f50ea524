"""layers: what the last vector says as it rises (beyond the talk).

Storyboard:
1. apply the final norm + unembedding to the residual stream after every layer ("logit
   lens"): the real top prediction per layer, as a column that settles; beside each layer the
   final answer's rank among all tokens, with the layer where it first enters the top 10 and
   the layer where it first becomes the top token marked and said with their numbers.
2. the final answer's probability, layer by layer, as a curve, with those layers marked; every
   label placed where it touches neither the curve nor another label.
"""

from __future__ import annotations

from manim import DOWN, LEFT, RIGHT, UP, Create, FadeIn, LaggedStart, Rectangle, SurroundingRectangle, VGroup, config

from facts.prediction import first_layer_within, settling_layer
from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import TokenStrip, count, fit_height, fit_width, label, token_label
from scenes.parts.plots import Plot, box_of, line_points, nice_ticks, place_clear
from scenes.parts.provenance import Shown
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_percent

ROWS_PER_COLUMN = 15
TOP_FEW = 10  # "enters the top 10"


class Layers(TransformerScene):
    title_text = "Reading the vector between layers"
    beats = ("beat_lens", "beat_answer")

    def setup(self):
        super().setup()
        self.rows = self.data.lens
        self.final = self.rows[-1]["top"][0]
        self.settled = settling_layer(self.rows)
        self.first_few = first_layer_within(self.rows, TOP_FEW)  # first layer with the answer in the top 10
        self.first_top = first_layer_within(self.rows, 1)  # ... as the top token

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
        fit_width(tok, 2.0)
        bar = Rectangle(width=max(0.02, 1.4 * top["probability"]), height=0.2, stroke_width=0,
                        fill_color=theme.accent if hit else theme.positive, fill_opacity=0.85)
        pct = self.percent(top["probability"], "lens.p", (r["layer"], 0))
        rank = r["answer_rank"]
        place = count(rank, theme, "lens.answer_rank", size=SMALL, index=(r["layer"],),
                      color=theme.accent if rank == 1 else theme.text if rank <= TOP_FEW else theme.dim)
        name.move_to([0, 0, 0], aligned_edge=RIGHT)
        tok.move_to([0.25, 0, 0], aligned_edge=LEFT)
        bar.move_to([2.4, 0, 0], aligned_edge=LEFT)
        pct.next_to(bar, RIGHT, buff=0.1)
        place.move_to([6.1, 0, 0], aligned_edge=RIGHT)
        return VGroup(name, tok, bar, pct, place)

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
            head = VGroup(label("layer", theme, SMALL, color=theme.dim), label("top token", theme, SMALL, color=theme.dim),
                          VGroup(label("rank of", theme, SMALL, color=theme.dim),
                                 token_label(self.final["token"], theme, SMALL, color=theme.accent, source="lens.piece",
                                             index=(len(self.rows) - 1, 0))).arrange(RIGHT, buff=0.1))
            head[0].move_to(col[0][0].get_right() + UP * 0.42, aligned_edge=RIGHT)
            head[1].move_to([col[0][1].get_left()[0], col[0][0].get_y() + 0.42, 0], aligned_edge=LEFT)
            head[2].move_to([col[0][4].get_right()[0], col[0][0].get_y() + 0.42, 0], aligned_edge=RIGHT)
            columns.add(VGroup(head, col))
        columns.arrange(RIGHT, buff=0.9, aligned_edge=UP)
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
        marks = [SurroundingRectangle(rows[layer][4], color=theme.accent, buff=0.06)
                 for layer in dict.fromkeys(x for x in (self.first_few, self.first_top) if x is not None)]
        self.say(self.rank_story())
        if marks:
            self.play(*[Create(m) for m in marks], run_time=0.8)
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

    def rank_story(self) -> str:
        """The answer's climb, said with its numbers: where it starts, when it first enters the top 10,
        when it first becomes the top token, and whether it slips back after that."""
        pct, cnt = narration.spoken_percent, narration.spoken_count
        ranks = [r["answer_rank"] for r in self.rows]
        answer = self.word(self.final["token"])
        few, top = self.first_few, self.first_top
        said = [f"Now follow the final answer, {answer}, in the last column: "
                f"its rank among all {cnt(self.trace.config.vocab_size)} tokens."]
        if ranks[0] == 1:
            said.append("It is already the top token at layer 0.")
        elif few == 0:
            said.append(f"It is already in the top {TOP_FEW} at layer 0, at rank {cnt(ranks[0])}.")
        else:
            said.append(f"It starts at rank {cnt(ranks[0])}. It first enters the top {TOP_FEW} at layer {few}, "
                        f"with {pct(self.rows[few]['answer_probability'])}.")
        if top is not None and 0 < top < self.settled:  # top == settled: the next sentence says that layer
            said.append(f"It first becomes the top token at layer {top}, "
                        f"with {pct(self.rows[top]['answer_probability'])}.")
        if top is not None and top < self.settled:
            said.append("It still slips back after that.")
        return " ".join(said)

    def beat_answer(self):
        theme = self.theme
        self.clear_stage()
        ps = [r["answer_probability"] for r in self.rows]
        n = len(ps)
        plot = Plot((0, n - 1), (0, 1.0), theme, width=9.5, height=4.0, x_ticks=nice_ticks(n - 1, 5),
                    y_ticks=[0, 0.25, 0.5, 0.75, 1.0], y_tick_text=lambda p: f"{100 * p:.0f}%", x_label="layer",
                    y_label="probability of the final answer")
        plot.move_to(DOWN * 0.6)
        xs = list(range(n))
        curve = self.curve = plot.polyline(xs, ps, theme.accent, 4)  # kept for the tests' overlap check
        dots = plot.dots(xs, ps, theme.accent, radius=0.05)
        # outside the data area: the answer, to the right of the axis name (the curve never goes there)
        word = token_label(self.final["token"], theme, BODY, color=theme.accent, source="lens.piece", index=(n - 1, 0))
        answer = VGroup(label("final answer", theme, LABEL, color=theme.dim),
                        VGroup(SurroundingRectangle(word, color=theme.accent, buff=0.12, corner_radius=0.06), word))
        answer.arrange(RIGHT, buff=0.2)
        fit_width(answer, plot.x_axis.get_right()[0] - plot.y_name.get_right()[0] - 0.6)
        answer.next_to(plot.y_name, RIGHT, buff=0.6).align_to(plot.y_name, DOWN)
        # inside it: every label where it touches neither the curve, the dots, the dashed lines nor another label
        origin, corner = plot.point(0, 0), plot.point(n - 1, 1.0)
        region = (origin[0] + 0.1, origin[1] + 0.05, config.frame_width / 2 - 0.2, corner[1])
        points = line_points(curve.get_anchors()) + [tuple(d.get_center()[:2]) for d in dots]
        events: dict[int, list[str]] = {}  # layer -> what happens there
        if self.first_few is not None:
            events.setdefault(self.first_few, []).append(f"in the top {TOP_FEW}")
        if self.first_top is not None and self.first_top != self.settled:
            events.setdefault(self.first_top, []).append("first on top")
        events.setdefault(self.settled, []).append("on top for good")
        lines = VGroup(*[plot.vline(layer, theme.dim) for layer in events])
        for line in lines:
            points += line_points([line.get_start(), line.get_end()])
        boxes = [box_of(m) for m in (*plot.tick_labels, plot.y_name, answer)]
        marks = VGroup()
        for layer in sorted({0, n // 2, n - 1}):
            p = self.percent(ps[layer], "lens.answer", (layer,), color=theme.accent)
            marks.add(place_clear(p, [plot.point(layer, ps[layer])], region, boxes, points))
        tags = VGroup()
        for layer, what in sorted(events.items()):  # beside its dashed line, as high as it finds room
            tag = label(", ".join(what), theme, SMALL, color=theme.dim)
            heights = [plot.point(layer, y) for y in (0.9, 0.7, 0.5, 0.3, 0.1)]
            tags.add(place_clear(tag, heights, region, boxes, points, sides=((1, 0), (-1, 0))))
        self.say(f"Here is the same story as a curve: the probability of {self.word(self.final['token'])} "
                 "after each layer.")
        self.play(FadeIn(plot), FadeIn(answer), run_time=0.8)
        self.play(Create(curve), FadeIn(dots), run_time=2)
        pct = narration.spoken_percent
        self.say(f"It is {pct(ps[0])} after layer 0, {pct(ps[n // 2])} after layer {n // 2}, "
                 f"and {pct(ps[-1])} after layer {n - 1}.")
        self.play(FadeIn(marks), run_time=0.8)
        said = {f"in the top {TOP_FEW}": f"where it first enters the top {TOP_FEW}", "first on top": "where it first gets on top",
                "on top for good": "where it stays on top"}
        marked = [said[w] for _, what in sorted(events.items()) for w in what]
        self.say(f"The dashed {'line marks' if len(lines) == 1 else 'lines mark'} {' and '.join(marked)}.")
        self.play(*[Create(line) for line in lines], FadeIn(tags), run_time=0.8)
        if ps[-1] > ps[0]:
            self.say("Each layer adds a little to the vector, and the guess sharpens.")
        else:
            self.say("Each layer adds a little to the vector, but here the guess does not sharpen.")
        self.wait(0.5)
