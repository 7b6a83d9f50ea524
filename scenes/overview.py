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
                   ReplacementTransform, RoundedRectangle, Text, VGroup, Write, config)

from facts.generation import SAMPLE_STEPS
from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import ProbabilityBars, PromptText, TokenStrip, count, drawable, fit_width, label, sample_rows
from scenes.parts.theme import BODY, FONT, LABEL, SMALL, visible_piece

MAX_SLABS = 32  # draw at most this many layer slabs; deeper models are elided
READ_PROMPT = 60  # the narration reads the prompt aloud when it is at most this long


class Overview(TransformerScene):
    title_text = "What a language model does"
    beats = ("beat_prompt", "beat_stack", "beat_prediction", "beat_loop")

    def beat_prompt(self):
        trace, theme = self.trace, self.theme
        self.prompt_mob = PromptText(trace.prompt, theme, size=36).move_to(UP * 0.6)
        ask = label("What comes next?", theme, BODY, color=theme.accent).next_to(self.prompt_mob, DOWN, buff=0.6)
        text = " ".join(trace.prompt.split())
        if text and len(text) <= READ_PROMPT:
            self.say(f"We give the model a piece of text: “{text}”.")
        else:
            self.say(f"We give the model a piece of text, {narration.spoken_count(len(trace.prompt))} characters long.")
        self.play(FadeIn(self.prompt_mob), run_time=1.2)
        self.say("Its one job is to guess what comes next.")
        self.play(FadeIn(ask, shift=0.2 * UP), run_time=0.8)
        self.ask = ask

    def beat_stack(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        strip = TokenStrip(trace.pieces, trace.tokens, theme, focus=[len(trace.tokens) - 1], max_width=8.5, size=LABEL * 0.9)
        strip.to_edge(DOWN, buff=0.75).set_x(-2.3)
        n = len(trace.tokens)
        self.say("First, the text is cut into a single token." if n == 1 else
                 f"First, the text is cut into {narration.spoken_count(n)} small pieces, called tokens.")
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
        self.say(f"The model here is {trace.meta['model']['display_name']}. "
                 f"It is a stack of {narration.spoken_count(cfg.n_layers)} layers, "
                 "each with an attention part and an MLP part.")
        self.play(LaggedStart(*[GrowFromEdge(s, DOWN) for s in slabs], lag_ratio=0.03), run_time=1.5)
        flow = [b.copy() for b in strip.boxes.values()]
        self.say(f"The tokens flow in at the bottom. Inside, each token is a list of "
                 f"{narration.spoken_count(cfg.d_model)} numbers. "
                 f"The model has {narration.spoken_count(self.data.parameter_counts['total'])} learned parameters in all.")
        self.play(*[f.animate.move_to(slabs[0]).scale(0.3).set_opacity(0) for f in flow],
                  FadeIn(info), run_time=1.5)
        self.remove(*flow)
        self.info = info

    def beat_prediction(self):
        trace, theme = self.trace, self.theme
        rows, _ = sample_rows(self.data.samples, 0)
        bars = ProbabilityBars(rows, theme, bar_width=2.6, size=LABEL * 0.9, source="sample.probs")
        title = label("next token", theme, LABEL, color=theme.dim)
        panel = VGroup(title, bars).arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        self.say(f"Out of the top comes a probability for each of the "
                 f"{narration.spoken_count(trace.config.vocab_size)} tokens it knows.")
        self.play(self.info.animate.scale(0.8).to_corner(UP + RIGHT, buff=0.5).shift(DOWN * 0.4), run_time=0.8)
        panel.next_to(self.stack, RIGHT, buff=0.6).align_to(self.stack, DOWN)
        fit_width(panel, config.frame_width / 2 - 0.3 - panel.get_left()[0])  # scales about its centre ...
        panel.next_to(self.stack, RIGHT, buff=0.6).align_to(self.stack, DOWN)  # ... so put it back beside the stack
        arrow = Arrow(self.stack.get_top(), self.stack.get_top() + UP * 0.6, color=theme.accent, buff=0.05)
        top_piece, top_p = rows[0][0], rows[0][1]
        self.play(FadeIn(arrow), FadeIn(title), run_time=0.5)
        sure = (" It is almost sure." if top_p >= 0.9 else " It is far from sure." if top_p < 0.25 else "")
        self.say(f"Its favourite is {self.word(top_piece)}, at {narration.spoken_percent(top_p)}. "
                 f"Next comes {self.word(rows[1][0])}, at {narration.spoken_percent(rows[1][1])}.{sure}")
        self.play(LaggedStart(*[FadeIn(line, shift=0.3 * RIGHT) for line in bars.lines], lag_ratio=0.15), run_time=1.5)
        self.bars, self.panel, self.arrow = bars, panel, arrow

    def beat_loop(self):
        trace, theme = self.trace, self.theme
        steps = self.data.samples
        self.clear_stage(self.panel)
        self.say("To write more, the model draws one token at random, with these odds. "
                 "It adds that token to the text and runs again.")
        text = self.generated_text(trace.prompt, "")
        text.to_edge(UP, buff=1.3)
        self.play(FadeIn(text), self.panel.animate.move_to(DOWN * 1.0), run_time=1)
        bars = self.bars
        appended = ""
        for k, step in enumerate(steps):
            chosen = step["chosen"]
            _, row = sample_rows(steps, k)
            self.say(self.step_text(k, chosen["token"], chosen["probability"]))
            self.play(Indicate(bars.lines[row], color=theme.accent, scale_factor=1.08), run_time=0.8)
            appended += chosen["token"]
            new_text = self.generated_text(trace.prompt, appended).move_to(text, aligned_edge=UP)
            self.play(ReplacementTransform(text, new_text), run_time=0.7)
            text = new_text
            if k + 1 < len(steps):
                new_bars = ProbabilityBars(sample_rows(steps, k + 1)[0], theme, bar_width=2.6, size=LABEL * 0.9,
                                           source="sample.probs")
                new_bars.move_to(bars, aligned_edge=LEFT)
                self.play(ReplacementTransform(bars, new_bars), run_time=0.8)
                bars = new_bars
        n = len(steps)
        if n < SAMPLE_STEPS:
            self.say(f"The model can read at most {narration.spoken_count(trace.config.n_ctx)} tokens at once. "
                     f"The prompt nearly fills that, so the loop stops after {'one step' if n == 1 else f'{n} steps'}.")
        written = appended.strip()  # the voice and the cue cutter ignore inner line breaks
        readable = written and "<0x" not in written
        if n == 1:
            self.say(f"So the model has written {f'“{written}”' if readable else 'one new token'}. "
                     "That took one full run of the model.")
        else:
            self.say(f"After {n} steps the model has written {f'“{written}”' if readable else f'{n} new tokens'}. "
                     "Each new token took one full run of the model.")

    def step_text(self, k: int, piece: str, p: float) -> str:
        """What one step of the loop says: the drawn token and its odds, a long shot called one."""
        odds = narration.spoken_percent(p)
        if p < 0.05:
            odds = odds if odds.startswith(("under", "almost")) else f"only {odds}"
            return f"{'It' if k == 0 else 'Then it'} draws {self.word(piece)}: {odds}, a long shot."
        if k == 0:
            return f"It draws {self.word(piece)}, at {odds}."
        return f"Then {self.word(piece)}, at {odds}."

    def generated_text(self, prompt: str, appended: str) -> Text:
        """The end of the prompt (dim) followed by what the loop appended (highlighted), as one
        line of text: the tokens carry their own spaces, so nothing is added between them, and
        both parts sit on one baseline."""
        theme = self.theme
        tail = prompt if len(prompt) <= 40 else "…" + prompt[-39:]
        visible = {"\n": "↵", "\r": "␍", "\t": "⇥"}
        old = drawable("".join(visible.get(ch, ch) for ch in tail))
        new = drawable(visible_piece(appended) if appended and appended.strip() == "" else
                       "".join(visible.get(ch, ch) for ch in appended))
        text = Text(old + new, font=FONT, font_size=BODY, color=theme.dim,
                    t2c={f"[{len(old)}:{len(old) + len(new)}]": theme.accent} if new else {})
        text.parts = (old, new)  # for tests: what was drawn, the prompt's part and the loop's part
        return fit_width(text, config.frame_width - 1.0)
