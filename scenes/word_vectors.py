"""word-vectors: directions carry meaning.

Storyboard:
1. king - man + woman on the model's own input embeddings: the arithmetic, then the real
   top-5 nearest tokens to the result (cosine, the three inputs excluded);
2. a second analogy, from the CLI (default uncle - man + woman);
3. a 2-D projection (PCA of the vectors involved) with the difference vectors as arrows.
"""

from __future__ import annotations

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, Arrow, Dot, FadeIn, GrowArrow, LaggedStart, Line, VGroup, config)

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
                               value_kind="number", token_source="analogy.nearest")
        bars_title = label("nearest tokens (cosine)", theme, SMALL, color=theme.dim)
        panel = VGroup(bars_title, bars).arrange(DOWN, aligned_edge=LEFT, buff=0.3)
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

    def nearest_text(self, result: dict) -> str:
        """Which token's vector points most nearly the way of the result, said with its cosine."""
        top = result["nearest"][0]
        text = (f"Which of all {narration.spoken_count(self.trace.config.vocab_size)} tokens points most nearly "
                f"the same way? Leaving out the three inputs, it is {self.word(top['piece'])}, "
                f"with cosine {narration.spoken_number(top['cosine'])}.")
        if top["cosine"] < 0.3:
            text += " That is low: a weak match."
        return text

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
        cos_lines = VGroup(label("cosine with the", theme, SMALL, color=theme.dim),
                           label(f"{pairs[0][0].strip()} → {pairs[0][1].strip()} direction", theme, SMALL, color=theme.accent))
        cos_lines.arrange(DOWN, aligned_edge=LEFT, buff=0.08)
        rows = []
        for k, words in enumerate(self.data.analogies):
            res = self.data.analogy(words)
            answer = res["nearest"][0]["piece"]
            rows.append(VGroup(label(f"{res['pieces'][0].strip()} → {answer.strip()}", theme, SMALL, color=theme.value),
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
        self.say(self.cosines_text(proj["direction_cosines"], len(pairs) == len(answers) + 1))

    def cosines_text(self, cosines: list[float], one_pair: bool) -> str:
        """How well the answer arrows line up with their pair's arrow in all dimensions, said honestly."""
        d = self.trace.config.d_model
        said = and_list([narration.spoken_number(c) for c in cosines])
        which = "that arrow" if one_pair else "its own pair's arrow"
        text = (f"But that is only the flat view. In all {d} dimensions, their cosines with {which} are {said}. "
                "Unrelated directions would give about 0.")
        low = min(cosines)
        if low >= 0.5:
            return text + " So they really do line up."
        if low >= 0.15:
            return text + " So they share part of a direction, not all of it."
        return text + " Some are close to 0: a weak link."
