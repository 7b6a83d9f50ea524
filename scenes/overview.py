"""overview: what the model does, end to end.

Storyboard:
1. the prompt as text: predict what comes next;
2. it splits into token boxes that flow into a stack with the model's real shape
   (layers, d_model, parameter count from the weights);
3. out of the top: the real top-k next-token probabilities;
4. one token is sampled (seeded) and appended; the loop runs a few more times, live: the same
   continuation as the prediction scene's (facts.generation.samples).
"""

from __future__ import annotations

from manim import (DOWN, LEFT, RIGHT, UP, Arrow, FadeIn, FadeOut, GrowFromEdge, Indicate, LaggedStart,
                   ReplacementTransform, RoundedRectangle, VGroup, Write, config)

from facts.generation import SAMPLE_STEPS
from scenes.parts.base import TransformerScene
from scenes.parts.components import ProbabilityBars, PromptText, TokenStrip, count, fit_width, label, sample_rows
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_int, fmt_percent, visible_piece

MAX_SLABS = 32  # draw at most this many layer slabs; deeper models are elided


class Overview(TransformerScene):
    title_text = "What a language model does"
    beats = ("beat_prompt", "beat_stack", "beat_prediction", "beat_loop")

    def beat_prompt(self):
        trace, theme = self.trace, self.theme
        self.prompt_mob = PromptText(trace.prompt, theme, size=36).move_to(UP * 0.6)
        ask = label("What comes next?", theme, BODY, color=theme.accent).next_to(self.prompt_mob, DOWN, buff=0.6)
        self.say(f"We give the model a piece of text: \"{trace.prompt}\".")
        self.play(FadeIn(self.prompt_mob), run_time=1.2)
        self.say("Its one job is to guess the text that comes next.")
        self.play(FadeIn(ask, shift=0.2 * UP), run_time=0.8)
        self.wait(1.5)
        self.ask = ask

    def beat_stack(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        strip = TokenStrip(trace.pieces, trace.tokens, theme, focus=[len(trace.tokens) - 1], max_width=8.5, size=LABEL * 0.9)
        strip.to_edge(DOWN, buff=0.75).set_x(-2.3)
        self.say(f"First the text is cut into {len(trace.tokens)} tokens.")
        self.play(FadeOut(self.ask), ReplacementTransform(self.prompt_mob, strip), run_time=1.5)
        self.strip = strip

        slabs = VGroup()
        n_draw = min(cfg.n_layers, MAX_SLABS)
        for _ in range(n_draw):
            slabs.add(RoundedRectangle(corner_radius=0.04, width=4.6, height=0.09, stroke_width=1,
                                       stroke_color=theme.dim, fill_color=theme.key, fill_opacity=0.35))
        slabs.arrange(UP, buff=0.03).next_to(strip, UP, buff=0.5).set_x(strip.get_x())
        self.stack = slabs
        layers = VGroup(count(cfg.n_layers, theme, "config.n_layers", size=LABEL),
                        label("layers, each attention + MLP", theme, LABEL)).arrange(RIGHT, buff=0.12)
        width = VGroup(label("every token is a vector of", theme, SMALL),
                       count(cfg.d_model, theme, "config.d_model", size=SMALL),
                       label("numbers", theme, SMALL)).arrange(RIGHT, buff=0.1)
        params = VGroup(count(self.data.parameter_counts["total"], theme, "params.total", size=SMALL),
                        label("learned parameters", theme, SMALL)).arrange(RIGHT, buff=0.1)
        name = label(trace.meta["model"]["display_name"], theme, LABEL, bold=True)
        info = VGroup(name, layers, width, params).arrange(DOWN, aligned_edge=LEFT, buff=0.22)
        fit_width(info, config.frame_width / 2 - 0.6 - (slabs.get_right()[0] - 0))
        info.next_to(slabs, RIGHT, buff=0.5)
        if n_draw < cfg.n_layers:
            info.add(label(f"(showing {n_draw} of {cfg.n_layers} layers)", theme, SMALL, color=theme.dim))
        self.say(f"{trace.meta['model']['display_name']}: {cfg.n_layers} layers of attention and MLP, "
                     f"{cfg.d_model} numbers per token, {fmt_int(self.data.parameter_counts['total'])} parameters.")
        self.play(LaggedStart(*[GrowFromEdge(s, DOWN) for s in slabs], lag_ratio=0.03), run_time=1.5)
        flow = [b.copy() for b in strip.boxes.values()]
        self.play(*[f.animate.move_to(slabs[0]).scale(0.3).set_opacity(0) for f in flow],
                  FadeIn(info), run_time=1.5)
        self.remove(*flow)
        self.wait(1.5)
        self.info = info

    def beat_prediction(self):
        trace, theme = self.trace, self.theme
        rows, _ = sample_rows(self.data.samples, 0)
        bars = ProbabilityBars(rows, theme, bar_width=2.6, size=LABEL * 0.9, source="sample.probs")
        title = label("next token", theme, LABEL, color=theme.dim)
        panel = VGroup(title, bars).arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        self.play(self.info.animate.scale(0.8).to_corner(UP + RIGHT, buff=0.5).shift(DOWN * 0.4), run_time=0.8)
        panel.next_to(self.stack, RIGHT, buff=0.6).align_to(self.stack, DOWN)
        fit_width(panel, config.frame_width / 2 - 0.3 - panel.get_left()[0])  # scales about its centre ...
        panel.next_to(self.stack, RIGHT, buff=0.6).align_to(self.stack, DOWN)  # ... so put it back beside the stack
        arrow = Arrow(self.stack.get_top(), self.stack.get_top() + UP * 0.6, color=theme.accent, buff=0.05)
        top_piece, top_p = rows[0][0], rows[0][1]
        self.say(f"Out of the top come probabilities for every one of the {fmt_int(trace.config.vocab_size)} tokens.")
        self.play(FadeIn(arrow), run_time=0.5)
        self.play(FadeIn(title), LaggedStart(*[FadeIn(line, shift=0.3 * RIGHT) for line in bars.lines], lag_ratio=0.15),
                  run_time=1.5)
        self.say(f"Its favourite is {top_piece!r} at {fmt_percent(top_p)}; "
                     f"then {rows[1][0]!r} at {fmt_percent(rows[1][1])}.")
        self.wait(3)
        self.bars, self.panel, self.arrow = bars, panel, arrow

    def beat_loop(self):
        trace, theme = self.trace, self.theme
        steps = self.data.samples
        self.clear_stage(self.panel)
        self.say(f"To write more, pick one token (sampled with seed {self.params.seed}), "
                     "append it, and run the whole model again.")
        text = self.generated_text(trace.prompt, "")
        text.to_edge(UP, buff=1.3)
        self.play(FadeIn(text), self.panel.animate.move_to(DOWN * 1.0), run_time=1)
        bars = self.bars
        appended = ""
        for k, step in enumerate(steps):
            chosen = step["chosen"]
            _, row = sample_rows(steps, k)
            self.play(Indicate(bars.lines[row], color=theme.accent, scale_factor=1.08), run_time=0.8)
            appended += chosen["token"]
            new_text = self.generated_text(trace.prompt, appended).move_to(text, aligned_edge=UP)
            self.say(f"Step {k + 1}: sampled {chosen['token']!r} ({fmt_percent(chosen['probability'])}).")
            self.play(ReplacementTransform(text, new_text), run_time=0.7)
            text = new_text
            if k + 1 < len(steps):
                new_bars = ProbabilityBars(sample_rows(steps, k + 1)[0], theme, bar_width=2.6, size=LABEL * 0.9,
                                           source="sample.probs")
                new_bars.move_to(bars, aligned_edge=LEFT)
                self.play(ReplacementTransform(bars, new_bars), run_time=0.8)
                bars = new_bars
        if len(steps) < SAMPLE_STEPS:
            self.say(f"The prompt nearly fills the model's {trace.config.n_ctx}-token context, "
                         f"so the loop stops after {len(steps)}.")
        self.say(f"{len(steps)} tokens later the model has written {appended!r}, one forward pass per token.")
        self.wait(2)

    def generated_text(self, prompt: str, appended: str) -> VGroup:
        """The end of the prompt (dim) followed by what the loop appended (highlighted)."""
        theme = self.theme
        tail = prompt if len(prompt) <= 40 else "…" + prompt[-39:]
        parts = [label(tail.replace("\n", "↵"), theme, BODY, color=theme.dim)]
        if appended:
            parts.append(label(visible_piece(appended) if appended.strip() == "" else appended.replace("\n", "↵"),
                               theme, BODY, color=theme.accent))
        group = VGroup(*parts).arrange(RIGHT, buff=0.12, aligned_edge=DOWN)
        return fit_width(group, config.frame_width - 1.0)
