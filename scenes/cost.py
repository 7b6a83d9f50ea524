"""cost: how training scores a prediction.

Storyboard:
1. a real text (the prompt); at each position the probability the model gave to the token
   that actually came next, and its cost -log(p) (real values as bars);
2. the curve of -log(p) over the positions, each token's point on it; the mean cost.
"""

from __future__ import annotations

import math

from manim import (DOWN, LEFT, RIGHT, UP, Create, FadeIn, LaggedStart, MathTypst, Rectangle, VGroup, config)

from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import fit_height, fit_width, label, token_label, unsigned
from scenes.parts.plots import Plot, box_of, line_points, nice_ticks, place_clear
from scenes.parts.provenance import Shown
from scenes.parts.theme import LABEL, SMALL, fmt_percent

MAX_ROWS = 10  # positions listed in the first beat; longer texts show the start, "…", and the end
LABELLED = 3  # points named on the curve: the dearest, the cheapest, the last


def cost_text(value: float, theme, source: str, index: tuple = (), size: float = SMALL, color=None):
    return unsigned(value, theme, source, index, size, color)


class Cost(TransformerScene):
    title_text = "How training scores a prediction"
    beats = ("beat_each_position", "beat_curve")

    def setup(self):
        super().setup()
        self.summary = self.data.costs
        self.rows = self.summary["rows"]

    def listed(self) -> list[int | None]:
        n = len(self.rows)
        if n <= MAX_ROWS:
            return list(range(n))
        head = MAX_ROWS // 2
        return list(range(head)) + [None] + list(range(n - (MAX_ROWS - head - 1), n))

    def beat_each_position(self):
        trace, theme = self.trace, self.theme
        if not self.rows:
            note = label("A one-token text has no next token to score.", theme, LABEL).move_to(DOWN * 0.3)
            self.say(f"Training scores every guess of the next token. "
                     f"But {self.piece(0)} alone has nothing after it to guess.")
            self.play(FadeIn(note), run_time=0.8)
            return
        formula = MathTypst("\"cost\" = -log p", color=theme.text, font_size=36)
        top = max(r["cost"] for r in self.rows)
        table = VGroup()
        heads = VGroup(label("after", theme, SMALL, color=theme.dim), label("came", theme, SMALL, color=theme.dim),
                       label("model gave it", theme, SMALL, color=theme.dim), label("cost", theme, SMALL, color=theme.dim))
        cols_x = [0.0, 2.6, 5.6, 7.0]  # right edge of "after", left edges of the rest
        for k, pos in enumerate(self.listed()):
            y = -k * 0.48
            if pos is None:
                table.add(label("…", theme, LABEL, color=theme.dim).move_to([1.3, y, 0]))
                continue
            r = self.rows[pos]
            before = token_label(trace.pieces[pos], theme, SMALL, color=theme.token_color(pos), index=(pos,))
            after = token_label(trace.pieces[pos + 1], theme, SMALL, color=theme.token_color(pos + 1), index=(pos + 1,))
            ptext = fmt_percent(r["probability"])
            p = label(ptext, theme, SMALL, mono=True, shown=Shown(ptext, r["probability"], "probs", (pos, r["next_id"]), kind="percent"))
            bar = Rectangle(width=max(0.03, 3.0 * r["cost"] / top), height=0.24, stroke_width=0,
                            fill_color=theme.value, fill_opacity=0.85)
            c = cost_text(r["cost"], theme, "cost", (pos,))
            before.move_to([cols_x[0], y, 0], aligned_edge=RIGHT)
            arrow = label("→", theme, SMALL, color=theme.dim).move_to([0.35, y, 0])
            after.move_to([cols_x[1] - 1.9, y, 0], aligned_edge=LEFT)
            p.move_to([cols_x[2] - 0.4, y, 0], aligned_edge=RIGHT)
            bar.move_to([cols_x[2], y, 0], aligned_edge=LEFT)
            c.next_to(bar, RIGHT, buff=0.15)
            table.add(VGroup(before, arrow, after, p, bar, c))
        heads[0].move_to([cols_x[0], 0.5, 0], aligned_edge=RIGHT)
        heads[1].move_to([cols_x[1] - 1.9, 0.5, 0], aligned_edge=LEFT)
        heads[2].move_to([cols_x[2] - 0.4, 0.5, 0], aligned_edge=RIGHT)
        heads[3].move_to([cols_x[2], 0.5, 0], aligned_edge=LEFT)
        panel = VGroup(heads, table)
        fit_width(panel, config.frame_width - 1.0)
        fit_height(panel, self.stage_top() + config.frame_height / 2 - 1.6)
        formula.next_to([0, self.stage_top(), 0], DOWN, buff=0.2)
        panel.next_to(formula, DOWN, buff=0.35).set_x(0)
        worst = self.rows[self.summary["worst"]]
        best = self.rows[self.summary["best"]]
        n = len(self.rows)
        guesses = "just one guess" if n == 1 else f"{narration.spoken_count(n)} guesses"
        self.say("Training takes a real text. At every position, it asks one question: "
                 "how much probability did the model give the token that really came next? "
                 f"This text has {guesses}.")
        self.play(FadeIn(heads), LaggedStart(*[FadeIn(row, shift=0.1 * RIGHT) for row in table], lag_ratio=0.1),
                  run_time=2)
        self.say("The cost is minus the log of that probability. "
                 "It is near zero for a confident right guess, and large for a surprise.")
        self.play(FadeIn(formula), run_time=0.8)

        def guess(r: dict) -> str:
            return (f"{self.word(r['next'])} after {self.word(r['after'])}, "
                    f"with {narration.spoken_percent(r['probability'])}, a cost of {narration.spoken_number(r['cost'])}")

        if self.summary["best"] == self.summary["worst"]:
            self.say(f"The one guess here: {guess(best)}.")
        else:
            self.say(f"The least surprising: {guess(best)}.")
            self.say(f"The most surprising: {guess(worst)}.")
        self.wait(0.5)

    def beat_curve(self):
        trace, theme = self.trace, self.theme
        self.clear_stage()
        if not self.rows:
            note = label("No curve for a single token: give a longer text.", theme, LABEL).move_to(DOWN * 0.3)
            self.say("With one token, there is no cost curve and no mean to show.")
            self.play(FadeIn(note), run_time=0.8)
            return
        costs = [r["cost"] for r in self.rows]
        n = len(costs)
        top = max(costs) * 1.1 or 1.0
        x_max = max(n - 1, 1)
        plot = Plot((0, x_max), (0, top), theme, width=10.0, height=4.2, x_ticks=nice_ticks(x_max, 5),
                    y_ticks=nice_ticks(top, 4), x_label="position in the text", y_label="cost  (−log p)",
                    y_decimals=0 if top > 4 else 1)
        plot.move_to(DOWN * 0.55)
        xs = list(range(n))
        curve = plot.polyline(xs, costs, theme.value, 3)
        dots = plot.dots(xs, costs, theme.value, radius=0.06 if n <= 40 else 0.035)
        mean = self.summary["mean"]
        mean_line = plot.hline(mean, theme.accent)
        mean_label = VGroup(label("mean", theme, SMALL, color=theme.accent),
                            cost_text(mean, theme, "cost.mean", color=theme.accent)).arrange(RIGHT, buff=0.1)
        mean_label.next_to(plot.point(x_max, mean), RIGHT, buff=0.15)
        if mean_label.get_right()[0] > config.frame_width / 2 - 0.2:  # no room right of the plot: above the line's end
            mean_label.next_to(plot.point(x_max, mean), UP + LEFT, buff=0.1)
        # each named point's token keeps clear of the curve, the dots, the mean line and its label,
        # the axes and their labels, and the other names
        boxes = [box_of(m) for m in (*plot.tick_labels, plot.x_name, plot.y_name, mean_label) if m is not None]
        points = (line_points(curve.get_anchors()) + [tuple(d.get_center()[:2]) for d in dots]
                  + line_points([mean_line.get_start(), mean_line.get_end()])
                  + [p for axis in (plot.x_axis, plot.y_axis) for p in line_points([axis.get_start(), axis.get_end()])])
        half_w, half_h = config.frame_width / 2, config.frame_height / 2
        region = (-half_w + 0.2, -half_h + 0.45, half_w - 0.2, self.stage_top())
        names = VGroup()
        picks = list(dict.fromkeys([self.summary["worst"], self.summary["best"], n - 1]))[:LABELLED]
        for pos in picks:
            tag = token_label(trace.pieces[pos + 1], theme, SMALL, color=theme.token_color(pos + 1), index=(pos + 1,))
            names.add(place_clear(tag, [plot.point(pos, costs[pos])], region, boxes, points))
        points = "one position" if n == 1 else f"the {narration.spoken_count(n)} positions"
        self.say(f"Here are the same costs as a curve over {points}. Each point is one guess of the next token.")
        self.play(FadeIn(plot), run_time=0.8)
        self.play(Create(curve), FadeIn(dots), run_time=1.5)
        self.play(FadeIn(names), run_time=0.6)
        self.say("Training nudges every weight to lower the mean cost, over huge amounts of text.")
        typical = narration.spoken_percent(math.exp(-mean))
        typical = typical if typical.startswith(("under", "almost")) else f"about {typical}"
        self.say(f"For this text, the mean cost is {narration.spoken_number(mean)}. "
                 f"That is like giving the right token {typical} each time.")
        self.play(Create(mean_line), FadeIn(mean_label), run_time=1)
        self.wait(0.5)
