"""orthogonality: how much fits in high dimensions.

Storyboard:
1. exactly perpendicular: at most N directions in N dimensions;
2. nearly perpendicular (every pair within 88-92 degrees): a real torch experiment packs
   unit vectors in growing dimension, up to the model's own width (facts/geometry.py, run when
   the scene is built, cached, seeded); the counts plotted against N grow faster than N, and
   the first dimension where they pass 1.5 N is marked: where the slack starts to pay;
3. tie back: the model's d_model, what was measured and what theory (the Welch bound) allows;
   said honestly: at this angle the bound keeps the count a small multiple of N until
   1 / sin^2(tolerance) dimensions, so "exponentially many" needs more room than a small model has.
"""

from __future__ import annotations

import math

from manim import (DOWN, LEFT, ORIGIN, RIGHT, UP, Arc, Arrow, Create, DashedLine, FadeIn, GrowArrow, Line, VGroup, config)

from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import count, fit_width, label
from scenes.parts.plots import Plot, nice_ticks
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_int


class Orthogonality(TransformerScene):
    title_text = "How much fits in high dimensions"
    beats = ("beat_exact", "beat_experiment", "beat_model")

    def setup(self):
        super().setup()
        self.facts = self.data.orthogonality
        self.rows = self.facts["rows"]
        self.tol = self.facts["tolerance_deg"]

    def beat_exact(self):
        theme = self.theme
        origin = LEFT * 4.6 + DOWN * 1.4
        a = Arrow(origin, origin + RIGHT * 2.6, buff=0, color=theme.positive, stroke_width=6)
        b = Arrow(origin, origin + UP * 2.6, buff=0, color=theme.key, stroke_width=6)
        corner = VGroup(Line(origin + RIGHT * 0.3, origin + RIGHT * 0.3 + UP * 0.3, color=theme.dim),
                        Line(origin + UP * 0.3, origin + UP * 0.3 + RIGHT * 0.3, color=theme.dim))
        exact = label("exactly 90°", theme, LABEL)
        exact.next_to(VGroup(a, b), DOWN, buff=0.4)
        wedge_origin = RIGHT * 1.6 + DOWN * 1.4
        lo, hi = math.radians(90 - self.tol * 4), math.radians(90 + self.tol * 4)  # drawn 4x wider, to be visible
        band = Arc(radius=2.4, start_angle=lo, angle=hi - lo, arc_center=wedge_origin, color=theme.accent, stroke_width=14)
        base = Arrow(wedge_origin, wedge_origin + RIGHT * 2.6, buff=0, color=theme.positive, stroke_width=6)
        near = Arrow(wedge_origin, wedge_origin + 2.6 * (math.cos(lo) * RIGHT + math.sin(lo) * UP), buff=0,
                     color=theme.key, stroke_width=6)
        near_text = VGroup(label(f"nearly: anywhere from {90 - self.tol:g}° to {90 + self.tol:g}°", theme, LABEL, color=theme.accent),
                           label("(band drawn 4× wider)", theme, SMALL, color=theme.dim)).arrange(DOWN, buff=0.1)
        near_text.next_to(VGroup(base, band), DOWN, buff=0.4)
        rule = label("In N dimensions at most N directions are exactly perpendicular to each other.", theme, LABEL)
        fit_width(rule, config.frame_width - 1.0)
        rule.next_to([0, self.stage_top(), 0], DOWN, buff=0.3)
        self.say("Directions in a vector can stand for ideas. How many directions fit without getting "
                 "in each other's way? That means all at right angles to each other.")
        self.play(GrowArrow(a), GrowArrow(b), FadeIn(corner), FadeIn(exact), run_time=1.2)
        self.say("At exact right angles, no more than the number of dimensions fit. In two dimensions, just two.")
        self.play(FadeIn(rule), run_time=0.8)
        self.say(f"Now allow a little slack: every pair between {90 - self.tol:g} and {90 + self.tol:g} degrees. "
                 "The band is drawn four times wider, so you can see it.")
        self.play(GrowArrow(base), Create(band), GrowArrow(near), FadeIn(near_text), run_time=1.5)
        self.say("With that slack, the answer changes as the number of dimensions grows.")

    def beat_experiment(self):
        theme = self.theme
        self.clear_stage()
        rows = self.rows
        dims = [r["dim"] for r in rows]
        counts = [r["count"] for r in rows]
        d = self.facts["d_model"]
        on_chart = d <= 2 * max(dims)  # mark d_model on the x axis when it does not squash the measurements
        x_max = max(max(dims), d if on_chart else 0) * 1.08
        y_max = max(max(counts), max(r["welch_bound"] for r in rows if math.isfinite(r["welch_bound"]))) * 1.08
        plot = Plot((0, x_max), (0, y_max), theme, width=8.0, height=4.6, x_ticks=nice_ticks(max(dims), 4),
                    y_ticks=nice_ticks(y_max, 4), x_label="dimensions N (numbers in each vector)",
                    y_label=f"directions that fit (unit vectors, every pair {90 - self.tol:g}°–{90 + self.tol:g}°)")
        plot.move_to(LEFT * 1.8 + DOWN * 0.5)
        exact = plot.polyline([0, x_max], [0, x_max], theme.dim, 2)
        factor = self.facts["clear_factor"]
        clear = DashedLine(plot.point(0, 0), plot.point(min(x_max, y_max / factor), factor * min(x_max, y_max / factor)),
                           color=theme.dim, stroke_width=2, dash_length=0.08)
        welch_dims = [d for d in dims if math.isfinite(rows[dims.index(d)]["welch_bound"])]
        welch = plot.polyline(welch_dims, [rows[dims.index(d)]["welch_bound"] for d in welch_dims], theme.value, 2)
        measured = plot.polyline(dims, counts, theme.accent, 4)
        dots = plot.dots(dims, counts, theme.accent, radius=0.07)
        legend = VGroup(
            VGroup(Line(ORIGIN, ORIGIN + RIGHT * 0.5, color=theme.accent, stroke_width=4),
                   label(f"measured (within ±{self.tol:g}°)", theme, SMALL)).arrange(RIGHT, buff=0.15),
            VGroup(Line(ORIGIN, ORIGIN + RIGHT * 0.5, color=theme.dim, stroke_width=2),
                   label("exactly 90°: N", theme, SMALL)).arrange(RIGHT, buff=0.15),
            VGroup(DashedLine(ORIGIN, ORIGIN + RIGHT * 0.5, color=theme.dim, stroke_width=2, dash_length=0.08),
                   label("half again as many as N", theme, SMALL)).arrange(RIGHT, buff=0.15),
            VGroup(Line(ORIGIN, ORIGIN + RIGHT * 0.5, color=theme.value, stroke_width=2),
                   label("most possible (Welch bound)", theme, SMALL)).arrange(RIGHT, buff=0.15),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.2)
        last = rows[-1]
        big = VGroup(label(f"N = {last['dim']}:", theme, LABEL),
                     count(last["count"], theme, "ortho.count", size=LABEL, index=(last["dim"],)),
                     label("directions", theme, LABEL)).arrange(RIGHT, buff=0.12)
        first = self.facts["clearly_more"]
        if first is not None:
            big = VGroup(label("first above the dashed line:", theme, SMALL, color=theme.dim),
                         VGroup(label(f"N = {first['dim']}:", theme, SMALL, color=theme.dim),
                                count(first["count"], theme, "ortho.count", size=SMALL, color=theme.dim, index=(first["dim"],)),
                                label("directions", theme, SMALL, color=theme.dim)).arrange(RIGHT, buff=0.12),
                         big).arrange(DOWN, aligned_edge=LEFT, buff=0.12)
        how = VGroup(label("gradient descent pushes random", theme, SMALL, color=theme.dim),
                     label("unit vectors apart; the count grows", theme, SMALL, color=theme.dim),
                     label("until some pair leaves the band", theme, SMALL, color=theme.dim),
                     label(f"(seed {self.facts['seed']})", theme, SMALL, color=theme.dim)).arrange(DOWN, aligned_edge=LEFT, buff=0.08)
        marker = VGroup()
        if on_chart:  # a dotted line at d_model; its key in the side column (never over the curves)
            line = plot.vline(d, theme.key)
            name = VGroup(DashedLine(ORIGIN, ORIGIN + RIGHT * 0.5, color=theme.key, stroke_width=2),
                          label(f"{self.trace.config.name}", theme, SMALL, color=theme.key)).arrange(RIGHT, buff=0.15)
            width = VGroup(label("d_model", theme, SMALL, color=theme.key),
                           count(d, theme, "config.d_model", size=SMALL, color=theme.key)).arrange(RIGHT, buff=0.1)
            bound = self.facts["welch_at_d_model"]
            if math.isfinite(bound):
                cap = VGroup(label("bound there:", theme, SMALL, color=theme.value),
                             count(int(bound), theme, "ortho.welch", size=SMALL, color=theme.value, index=(d,)))
                if bound > y_max:
                    cap.add(label("(off the chart)", theme, SMALL, color=theme.dim))
                cap.arrange(RIGHT, buff=0.1)
            else:
                cap = label("no bound there", theme, SMALL, color=theme.value)
            marker = VGroup(line, VGroup(name, width, cap).arrange(DOWN, aligned_edge=LEFT, buff=0.1))
            for m in (width, cap):
                m.shift(RIGHT * (name[1].get_left()[0] - m.get_left()[0]))  # under the name, past the line sample
        side = VGroup(legend, big, *marker[1:], how).arrange(DOWN, aligned_edge=LEFT, buff=0.4)
        fit_width(side, config.frame_width / 2 - 0.3 - (plot.get_right()[0] + 0.5))
        side.next_to(plot, RIGHT, buff=0.5)
        if side.height > config.frame_height / 2 + self.stage_top() - 0.2:
            side.scale_to_fit_height(config.frame_height / 2 + self.stage_top() - 0.2).next_to(plot, RIGHT, buff=0.5)
        self.say("Here is a real experiment. For each number of dimensions, N, "
                 "we pack in as many unit vectors as we can. "
                 f"Every pair must stay within {self.tol:g} degrees of a right angle.")
        self.play(FadeIn(plot), FadeIn(how), run_time=1)
        self.say("The straight line is the exact limit: N directions in N dimensions.")
        self.play(Create(exact), FadeIn(legend[1]), run_time=0.8)
        self.say(self.early_text(rows))
        self.play(Create(measured), FadeIn(dots), FadeIn(legend[0]), run_time=1.5)
        self.say(self.late_text(rows))
        self.play(Create(clear), FadeIn(legend[2]), FadeIn(big), run_time=1)
        above = [r for r in rows if r["count"] > r["welch_bound"]]
        self.say("Theory caps how many could ever fit. This cap is called the Welch bound. "
                 + ("The measured counts stay below it." if not above else
                    f"Yet {'one count goes' if len(above) == 1 else 'some counts go'} above it: check the experiment."))
        self.play(Create(welch), FadeIn(legend[3]), run_time=1)
        if len(marker):
            bound = self.facts["welch_at_d_model"]
            where = ("past the end of this experiment" if d > last["dim"] else
                     "the last width measured" if d == last["dim"] else "inside the measured range")
            off = ": off the top of the chart" if bound > y_max else ""
            self.say(f"This model's vectors have {narration.spoken_count(d)} dimensions, {where}. "
                     + (f"There, the bound allows up to {narration.spoken_count(int(bound))}{off}."
                        if math.isfinite(bound) else "There, this bound sets no limit at all."))
            self.play(Create(marker[0]), FadeIn(marker[1]), run_time=1)

    def early_text(self, rows: list[dict]) -> str:
        """The small dimensions: up to where the slack buys (almost) nothing over N."""
        plain = 0  # how many of the smallest dimensions gain (almost) nothing from the slack
        while plain < len(rows) - 1 and rows[plain]["count"] <= rows[plain]["dim"] * 1.05:
            plain += 1
        if plain == 0:
            return f"Already in {rows[0]['dim']} dimensions, {rows[0]['count']} directions fit: more than N."
        upto = rows[plain - 1]
        gain = "nothing" if upto["count"] <= upto["dim"] else "little"
        return (f"Up to {upto['dim']} dimensions, the slack buys {gain}: "
                f"{upto['count']} directions in {upto['dim']} dimensions.")

    def late_text(self, rows: list[dict]) -> str:
        """Where the slack starts to pay (the first count past clear_factor times N), then the
        largest dimension measured: how many times N fit there."""
        last, first = rows[-1], self.facts["clearly_more"]
        ratio = last["count"] / last["dim"]
        if ratio <= 1.05:
            return f"Even at {last['dim']} dimensions, only {last['count']} fit: the slack buys little here."
        text = "The gain builds slowly. "
        if first is None:
            text += "The count never reaches one and a half times N here: a weak effect at this size. "
        elif first["dim"] != last["dim"]:
            text += (f"The count first passes one and a half times N at {first['dim']} dimensions, "
                     f"with {narration.spoken_count(first['count'])} directions. ")
        return text + (f"At {last['dim']} dimensions, {narration.spoken_count(last['count'])} fit: "
                       f"{narration.spoken_number(ratio)} times as many directions as dimensions.")

    def beat_model(self):
        theme, cfg = self.theme, self.trace.config
        self.clear_stage()
        f, last = self.facts, self.rows[-1]
        d = f["d_model"]
        lines = VGroup(
            VGroup(label(f"{cfg.name} works in", theme, BODY), count(d, theme, "config.d_model", size=BODY),
                   label("dimensions.", theme, BODY)).arrange(RIGHT, buff=0.15),
            VGroup(label("measured here:", theme, LABEL, color=theme.dim),
                   count(last["count"], theme, "ortho.count", size=LABEL, index=(last["dim"],)),
                   label("nearly perpendicular directions in", theme, LABEL, color=theme.dim),
                   count(last["dim"], theme, "axis", size=LABEL, color=theme.dim),
                   label("dimensions", theme, LABEL, color=theme.dim)).arrange(RIGHT, buff=0.12),
        )
        if math.isfinite(f["welch_at_d_model"]):
            lines.add(VGroup(label(f"theory allows at most", theme, LABEL, color=theme.dim),
                             count(int(f["welch_at_d_model"]), theme, "ortho.welch", size=LABEL, index=(d,)),
                             label(f"in {d} (within ±{self.tol:g}°)", theme, LABEL, color=theme.dim)).arrange(RIGHT, buff=0.12))
            lines.add(label(f"exponentially many? only past {fmt_int(f['welch_finite_until'])} dimensions, "
                            f"where this cap disappears", theme, LABEL, color=theme.dim))
        else:
            lines.add(label(f"past {fmt_int(f['welch_finite_until'])} dimensions this bound sets no limit at all", theme,
                            LABEL, color=theme.dim))
        lines.add(label("Features need not each get their own dimension: many can share the space,", theme, LABEL))
        lines.add(label("each almost independent of the others.", theme, LABEL))
        lines.arrange(DOWN, aligned_edge=LEFT, buff=0.35)
        fit_width(lines, config.frame_width - 1.0)
        lines.move_to(DOWN * 0.2)
        self.say(f"Back to our model: each of its token vectors has {narration.spoken_count(d)} dimensions.")
        self.play(FadeIn(lines[0]), run_time=0.8)
        self.say((f"The experiment went up to {last['dim']} dimensions, to keep the build short. " if d > last["dim"]
                  else "The experiment went up to this width. " if d == last["dim"]
                  else f"The experiment went past that, up to {last['dim']} dimensions. ")
                 + f"There, {narration.spoken_count(last['count'])} nearly perpendicular directions fit: "
                 f"{narration.spoken_number(last['count'] / last['dim'])} times as many as dimensions.")
        self.play(FadeIn(lines[1]), run_time=0.8)
        if math.isfinite(f["welch_at_d_model"]):
            self.say(f"At {narration.spoken_count(d)} dimensions, theory allows at most "
                     f"{narration.spoken_count(int(f['welch_at_d_model']))} directions within {self.tol:g} degrees of a right angle. "
                     f"That is only {narration.spoken_number(f['welch_at_d_model'] / d)} times N. "
                     f"So not exponentially many, not yet: at {self.tol:g} degrees, "
                     f"this cap only disappears past {narration.spoken_count(f['welch_finite_until'])} dimensions.")
        else:
            self.say(f"Past {narration.spoken_count(f['welch_finite_until'])} dimensions, this bound sets no limit "
                     "at all. The true count is not measured here.")
        self.play(FadeIn(lines[2:-2]), run_time=0.8)
        self.say("So features need not each get their own dimension. "
                 "Many can share the space, each almost independent of the others. "
                 + ("Here, with this little slack, the gain is modest." if last["count"] < 2 * last["dim"] else ""))
        self.play(FadeIn(lines[-2:]), run_time=0.8)


