"""word-vectors: directions carry meaning.

Storyboard:
1. king - man + woman on the model's own input embeddings: the arithmetic, then the real
   top-5 nearest tokens to the result (cosine, the three inputs excluded);
   the bars drawn on a 0-to-1 scale over the baseline: where 95% of random word pairs' |cosine|
   falls (shaded) and their average (dashed), so a cosine is read against chance;
2. a second analogy, from the CLI (default uncle - man + woman), on the same baseline;
3. a 2-D projection (PCA of the vectors involved) with the difference vectors as arrows.
"""

from __future__ import annotations

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, Arrow, DashedLine, Dot, FadeIn, GrowArrow, LaggedStart, Line, Rectangle, VGroup,
                   config)

from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import ProbabilityBars, VectorColumn, fit_height, fit_width, label, number, token_label
from scenes.parts.params import FIRST_ANALOGY
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_percent


def and_list(items: list[str]) -> str:
    """“a”, “a and b”, “a, b and c”."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def signed(x: float) -> str:
    """A term of a spoken sum after its first: "plus 0.13" or "minus 0.03"."""
    return f"{'minus' if x < 0 else 'plus'} {narration.spoken_number(abs(x))}"


class WordVectors(TransformerScene):
    title_text = "Directions carry meaning"
    beats = ("beat_first_analogy", "beat_second_analogy", "beat_projection")

    def beat_first_analogy(self):
        self.show_analogy(FIRST_ANALOGY, first=True)

    def beat_second_analogy(self):
        self.clear_stage()
        self.show_analogy(tuple(self.params.analogy), first=False)

    def show_analogy(self, words: tuple[str, str, str], first: bool):
        """E(a) - E(b) + E(c) = v, as columns of real numbers, then the tokens nearest to v."""
        theme, d = self.theme, self.trace.config.d_model
        result = self.data.analogy(words)
        a, b, c = result["pieces"]
        key = tuple(result["words"])
        columns = []
        for piece, vec, tid in zip(result["pieces"], result["vectors"], result["ids"]):
            col = VectorColumn(vec, theme, "embed.W_E", (tid,), head=3, tail=2, scale=0.1, size=SMALL,
                               show_length=False)
            columns.append(VGroup(token_label(piece, theme, LABEL, source="analogy.piece", index=key), col)
                           .arrange(DOWN, buff=0.2))
        out = VectorColumn(result["result"], theme, "analogy.result", key, head=3, tail=2, scale=0.1, size=SMALL,
                           color=theme.accent, show_length=False)
        columns.append(VGroup(label("result", theme, LABEL, color=theme.accent), out).arrange(DOWN, buff=0.2))
        ops = [label(s, theme, BODY) for s in ("−", "+", "=")]
        sum_row = VGroup(columns[0], ops[0], columns[1], ops[1], columns[2], ops[2], columns[3]).arrange(RIGHT, buff=0.3)
        for op in ops:
            op.set_y(columns[0][1].get_y())
        rows = [(n["piece"], n["cosine"], key + (k,), None) for k, n in enumerate(result["nearest"])]
        bars = ProbabilityBars(rows, theme, bar_width=2.2, size=LABEL * 0.9, highlight=0, source="analogy.cosine",
                               value_kind="number", token_source="analogy.nearest", top=1.0)
        bars_title = label("nearest tokens (cosine)", theme, SMALL, color=theme.dim)
        chance, chance_key = self.baseline(bars, 2.2)
        panel = VGroup(bars_title, VGroup(chance, bars), chance_key).arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        scene_row = VGroup(sum_row, panel).arrange(RIGHT, buff=0.8)
        fit_width(scene_row, config.frame_width - 0.6)
        fit_height(scene_row, self.stage_top() + config.frame_height / 2 - 1.2)
        scene_row.move_to(DOWN * 0.1)
        formula = label(f"E({a.strip()}) − E({b.strip()}) + E({c.strip()})", theme, BODY)
        formula.next_to([0, self.stage_top(), 0], DOWN, buff=0.2)
        note = label(f"each E is a row of W_E: {d} numbers", theme, SMALL, color=theme.dim).next_to(formula, DOWN, buff=0.12)
        wa, wb, wc = (self.word(p) for p in (a, b, c))
        if first:
            self.say(f"Take the model's own vectors for {wa}, {wb} and {wc}. "
                     f"Each is a row of the embedding matrix: {d} numbers.")
        else:
            self.say(f"Now another analogy, with the same recipe: {wa} minus {wb} plus {wc}.")
        self.play(FadeIn(formula), FadeIn(note), run_time=0.8)
        self.play(LaggedStart(*[FadeIn(m) for m in sum_row[:5]], lag_ratio=0.2), run_time=1.8)
        self.say(f"Subtract {wb} and add {wc}, entry by entry. {self.first_entry(result)}" if first
                 else self.first_entry(result))
        self.play(FadeIn(ops[2]), FadeIn(columns[3]), run_time=1)
        self.say(self.nearest_text(result))
        self.play(FadeIn(bars_title), LaggedStart(*[FadeIn(l, shift=0.3 * RIGHT) for l in bars.lines], lag_ratio=0.15),
                  run_time=1.5)
        self.say(self.chance_text(result["nearest"][0]["cosine"], first))
        self.play(FadeIn(chance), FadeIn(chance_key), run_time=1)

    def baseline(self, bars: ProbabilityBars, bar_width: float) -> tuple[VGroup, VGroup]:
        """Behind the bars (drawn on a 0-to-1 scale): the |cosine| of random word pairs, their
        95th percentile as a shaded zone and their mean as a dashed line; and its key."""
        theme, r = self.theme, self.data.random_pairs
        x0 = bars.bars[0].get_left()[0]  # cosine 0
        top, bottom = bars.get_top()[1] + 0.08, bars.get_bottom()[1] - 0.08
        zone = Rectangle(width=bar_width * r["p95_abs"], height=top - bottom, stroke_width=0, fill_color=theme.dim,
                         fill_opacity=0.25)
        zone.move_to([x0, bottom, 0], aligned_edge=LEFT + DOWN)
        x = x0 + bar_width * r["mean_abs"]
        mean = DashedLine([x, top, 0], [x, bottom, 0], color=theme.dim, stroke_width=2, dash_length=0.06)
        key = VGroup(
            VGroup(label("shaded: 95% of random word pairs,", theme, SMALL, color=theme.dim),
                   label("|cosine| up to", theme, SMALL, color=theme.dim),
                   number(r["p95_abs"], theme, "random_pairs.p95_abs", scale=1)).arrange(RIGHT, buff=0.12),
            VGroup(label("dashed: their average,", theme, SMALL, color=theme.dim),
                   number(r["mean_abs"], theme, "random_pairs.mean_abs", scale=1)).arrange(RIGHT, buff=0.12),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.1)
        return VGroup(zone, mean).set_z_index(-1), key  # behind the bars, though it fades in after them

    def chance_text(self, cosine: float, first: bool) -> str:
        """The top cosine read against random word pairs, said plainly; weak when it is."""
        r = self.data.random_pairs
        mean, p95 = (narration.spoken_number(r[k]) for k in ("mean_abs", "p95_abs"))
        said = narration.spoken_number(cosine)
        text = (f"For scale: two random words already have cosine {mean} on average, "
                f"and one pair in twenty goes above {p95}. " if first
                else f"Against random word pairs again: one in twenty goes above {p95}. ")
        if cosine <= r["mean_abs"]:
            return text + f"So {said} is no better than two random words: no real match."
        if cosine <= r["p95_abs"]:
            return text + f"So {said} is within what random words reach: a weak match."
        if cosine < r["p95_abs"] + (r["p95_abs"] - r["mean_abs"]):
            return text + f"So {said} is only a little above chance: a weak match."
        return text + f"So {said} is far above chance: a strong match."

    def nearest_text(self, result: dict) -> str:
        """Which token's vector points most nearly the way of the result, said with its cosine."""
        top = result["nearest"][0]
        return (f"Which of all {narration.spoken_count(self.trace.config.vocab_size)} tokens points most nearly "
                f"the same way? Leaving out the three inputs, it is {self.word(top['piece'])}, "
                f"with cosine {narration.spoken_number(top['cosine'])}.")

    @staticmethod
    def first_entry(result: dict) -> str:
        """The first entry's sum, said: subtracting a negative number is said as adding it."""
        a, b, c = (float(v[0]) for v in result["vectors"])
        return (f"The first entry: {narration.spoken_number(a)} {signed(-b)} {signed(c)} "
                f"makes {narration.spoken_number(float(result['result'][0]))}.")

    def beat_projection(self):
        theme = self.theme
        self.clear_stage()
        proj = self.data.projection
        pts = {p: np.array(xy) for p, xy in proj["points"].items()}
        xy = np.array(list(pts.values()))
        lo, hi = xy.min(0), xy.max(0)
        box_w, box_h = 7.0, 4.6
        scale = min(box_w / max(hi[0] - lo[0], 1e-6), box_h / max(hi[1] - lo[1], 1e-6))
        center = (lo + hi) / 2
        origin = np.array([-2.2, -0.55, 0])
        place = lambda p: origin + np.array([*(pts[p] - center) * scale, 0])
        arrows = VGroup()
        pairs = []
        for k, words in enumerate(self.data.analogies):
            res = self.data.analogy(words)
            a, b, c = res["pieces"]
            answer = res["nearest"][0]["piece"]
            if (b, c) not in pairs:
                pairs.append((b, c))
            pairs.append((a, answer))
        dots, labels = VGroup(), VGroup()
        placed = set()
        for s, e in pairs:  # label each point away from its arrow: start behind it, end beyond it
            d = place(e) - place(s)
            d = d / max(np.linalg.norm(d), 1e-6)
            for p, sign in ((s, -1), (e, 1)):
                if p in placed:
                    continue
                placed.add(p)
                dots.add(Dot(place(p), radius=0.07, color=theme.text))
                lab = token_label(p, theme, LABEL, source="projection.piece")
                lab.move_to(place(p) + sign * d * (lab.width / 2 + 0.2) + UP * 0.05)
                labels.add(lab)
        for k, (s, e) in enumerate(pairs):
            arrows.add(Arrow(place(s), place(e), buff=0.1, color=theme.accent if k == 0 else theme.value,
                             stroke_width=4, max_tip_length_to_length_ratio=0.12))
        ev = proj["explained"]
        legend = VGroup(
            label("2-D view (PCA) of the", theme, LABEL),
            label(f"{len(pts)} vectors involved", theme, LABEL),
            label(f"shows {fmt_percent(ev[0] + ev[1])} of their spread", theme, SMALL, color=theme.dim),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.12)
        own_pairs = [tuple(p.strip() for p in self.data.analogy(w)["pieces"][1:]) for w in self.data.analogies]
        one_pair = len(set(own_pairs)) == 1  # every analogy uses the same b -> c: one arrow to compare with
        if one_pair:
            cos_lines = VGroup(label("cosine with the", theme, SMALL, color=theme.dim),
                               label(f"{own_pairs[0][0]} → {own_pairs[0][1]} direction", theme, SMALL, color=theme.accent))
        else:  # each cosine is taken with its own analogy's b -> c
            cos_lines = VGroup(label("cosine of each answer arrow", theme, SMALL, color=theme.dim),
                               label("with its own analogy's arrow", theme, SMALL, color=theme.dim))
        cos_lines.arrange(DOWN, aligned_edge=LEFT, buff=0.08)
        rows = []
        for k, words in enumerate(self.data.analogies):
            res = self.data.analogy(words)
            answer = res["nearest"][0]["piece"]
            name = f"{res['pieces'][0].strip()} → {answer.strip()}"
            if not one_pair:
                name += f" vs {own_pairs[k][0]} → {own_pairs[k][1]}"
            rows.append(VGroup(label(name, theme, SMALL, color=theme.value),
                               number(proj["direction_cosines"][k], theme, "projection.cosine", (k,), scale=1))
                        .arrange(RIGHT, buff=0.2))
        info = VGroup(legend, cos_lines, *rows).arrange(DOWN, aligned_edge=LEFT, buff=0.25)
        info.to_edge(RIGHT, buff=0.4).set_y(0.3)
        fit_width(info, config.frame_width / 2 - 0.3 - 2.4)
        info.to_edge(RIGHT, buff=0.4)
        self.say(f"Now flatten these {len(pts)} vectors onto the two directions where they differ most. "
                 f"This flat view, called PCA, keeps {narration.spoken_percent(ev[0] + ev[1])} of their spread.")
        self.play(FadeIn(dots), FadeIn(labels), FadeIn(legend), run_time=1.2)
        self.say(f"This arrow goes from {self.word(pairs[0][0])} to {self.word(pairs[0][1])}.")
        self.play(GrowArrow(arrows[0]), run_time=0.8)
        answers = [f"from {self.word(res['pieces'][0])} to {self.word(res['nearest'][0]['piece'])}"
                   for res in (self.data.analogy(w) for w in self.data.analogies)]
        listed = answers[0] if len(answers) == 1 else ", ".join(answers[:-1]) + ", and " + answers[-1]
        self.say(f"The {'arrow' if len(answers) == 1 else 'arrows'} {listed}, "
                 f"{'points' if len(answers) == 1 else 'point'} roughly the same way.")
        self.play(LaggedStart(*[GrowArrow(a) for a in arrows[1:]], lag_ratio=0.3), FadeIn(cos_lines), FadeIn(*rows),
                  run_time=1.5)
        self.say(self.cosines_text(proj["direction_cosines"], one_pair))

    def cosines_text(self, cosines: list[float], one_pair: bool) -> str:
        """How well the answer arrows line up with their pair's arrow in all dimensions, said honestly."""
        d = self.trace.config.d_model
        said = and_list([narration.spoken_number(c) for c in cosines])
        which = "that arrow" if one_pair else "its own pair's arrow"
        chance = self.data.random_directions  # arrows between random word pairs, measured
        text = (f"But that is only the flat view. In all {d} dimensions, their cosines with {which} are {said}. "
                f"Arrows between random word pairs give {narration.spoken_number(chance['mean_abs'])} on average, "
                f"and one in twenty goes above {narration.spoken_number(chance['p95_abs'])}.")
        low = min(cosines)
        if low >= 0.5:
            return text + " So they really do line up."
        if low > chance["p95_abs"]:
            return text + " So they share part of a direction, not all of it."
        if max(cosines) > chance["p95_abs"]:
            return text + " Only some of them beat chance: a weak link."
        return text + " So they are within chance here: no shared direction to speak of."
