"""tokens: text becomes tokens.

Storyboard:
1. the prompt as plain text splits into coloured token boxes at the tokenizer's real
   boundaries; words that split are pointed out;
2. every box shows its integer id; the tokenizer's vocabulary size;
3. characters vs tokens: both counts, and the attention grid's cells for each.
"""

from __future__ import annotations

from manim import DOWN, LEFT, RIGHT, UP, Brace, Group, config, FadeIn, FadeOut, GrowFromCenter, LaggedStart, Write, VGroup

from scenes.parts.base import TransformerScene
from scenes.parts.components import AttentionGrid, PromptText, TokenStrip, cell_grid_image, count, fit_height, label
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_int

MAX_GRID_TOKENS = 10


class Tokens(TransformerScene):
    title_text = "Text becomes tokens"
    beats = ("beat_split", "beat_ids", "beat_grid_cost")

    def split_word(self) -> tuple[int, int] | None:
        """The first word the tokenizer cuts into several tokens (prefer one near the story token)."""
        multi = [s for s in self.data.words if s[1] - s[0] > 1]
        return min(multi, key=lambda s: abs(s[0] - self.data.focus)) if multi else None

    def beat_split(self):
        trace, theme = self.trace, self.theme
        n = len(trace.tokens)
        prompt = PromptText(trace.prompt, theme, size=34).move_to(UP * 1.2)
        self.say(f"The model never reads letters. Our prompt is {len(trace.prompt)} characters of plain text.")
        self.play(FadeIn(prompt), run_time=1)
        self.wait(1.5)
        word = self.split_word()
        focus = [self.data.focus] + (list(range(*word)) if word else [])
        self.strip = TokenStrip(trace.pieces, trace.tokens, theme, focus=focus, show_ids=True).move_to(DOWN * 0.2)
        boxes = [self.strip.boxes[p] for p in self.strip.shown_positions]
        gaps = [m for m in self.strip.row if m not in boxes]
        self.say(f"The tokenizer cuts it into {n} tokens: pieces of words it learned from data.")
        self.play(prompt.animate.scale(0.8).to_edge(UP, buff=1.2),
                  LaggedStart(*[GrowFromCenter(b) for b in boxes], lag_ratio=0.08), *[FadeIn(g) for g in gaps],
                  run_time=2)
        self.prompt = prompt
        if len(self.strip.shown_positions) < n:
            self.say(f"Only {len(self.strip.shown_positions)} of the {n} tokens fit on screen; '…' stands for the rest.")
        if word:
            parts = [trace.pieces[i] for i in range(*word)]
            whole = "".join(parts)
            group = VGroup(*[self.strip.boxes[i] for i in range(*word) if i in self.strip.boxes])
            brace = Brace(group, UP, color=theme.accent, buff=0.08)
            note = label(f"one word, {len(parts)} tokens", theme, LABEL, color=theme.accent).next_to(brace, UP, buff=0.1)
            self.say(f"Rare words split: '{whole.strip()}' becomes {len(parts)} tokens, "
                         + " + ".join(repr(p) for p in parts) + ".")
            self.play(GrowFromCenter(brace), FadeIn(note), run_time=1)
            self.wait(2)
            self.play(FadeOut(brace), FadeOut(note), run_time=0.5)
        else:
            self.say("Here every word happens to be a single token; rarer words would split into pieces.")
            self.wait(2)
        space = label("␣ marks a space: it belongs to the token that follows it", theme, SMALL, color=theme.dim)
        space.next_to(self.strip, DOWN, buff=0.9)
        self.play(FadeIn(space), run_time=0.6)
        self.wait(1.5)
        self.space_note = space

    def beat_ids(self):
        trace, theme = self.trace, self.theme
        vocab = trace.config.vocab_size
        focus = self.data.focus
        ids = self.strip.id_group()
        self.say(f"To the model each token is just a number: {trace.pieces[focus]!r} is token {trace.tokens[focus]}.")
        self.play(FadeOut(self.space_note), LaggedStart(*[FadeIn(i, shift=0.2 * DOWN) for i in ids], lag_ratio=0.06),
                  run_time=1.5)
        vocab_line = VGroup(label("This tokenizer knows", theme, BODY),
                            count(vocab, theme, "config.vocab_size", size=BODY),
                            label("tokens", theme, BODY)).arrange(RIGHT, buff=0.18)
        vocab_line.next_to(self.strip, DOWN, buff=1.0)
        self.say(f"Its vocabulary has {fmt_int(vocab)} tokens, so every id is a whole number below {fmt_int(vocab)}.")
        self.play(Write(vocab_line), run_time=1.2)
        self.wait(2.5)
        self.vocab_line = vocab_line

    def beat_grid_cost(self):
        trace, theme = self.trace, self.theme
        chars, n = len(trace.prompt), len(trace.tokens)
        self.clear_stage()
        side = 3.0
        char_grid = cell_grid_image(chars, theme, side)
        window = self.grid_positions()
        choice = self.data.choice
        pattern = trace[f"blocks.{choice.layer}.attn.hook_pattern"][choice.head]
        token_grid = AttentionGrid(pattern.numpy(), trace.pieces, window, theme, cell=side / len(window), size=SMALL * 0.9)
        char_grid.move_to(LEFT * 3.4)
        token_grid.shift(RIGHT * 3.4 - token_grid.frame.get_center())
        char_grid.set_y(0)
        char_title = VGroup(count(chars, theme, "count.chars", size=LABEL), label("characters", theme, LABEL)).arrange(RIGHT, buff=0.12)
        tok_title = VGroup(count(n, theme, "count.tokens", size=LABEL), label("tokens", theme, LABEL)).arrange(RIGHT, buff=0.12)
        char_title.next_to(char_grid, UP, buff=0.3)
        tok_title.next_to(token_grid, UP, buff=0.2)
        tok_title.set_x(token_grid.frame.get_x())
        char_title.set_y(tok_title.get_y())
        char_cells = VGroup(count(chars * chars, theme, "count.chars^2", size=LABEL), label("cells", theme, LABEL)).arrange(RIGHT, buff=0.12)
        tok_cells = VGroup(count(n * n, theme, "count.tokens^2", size=LABEL), label("cells", theme, LABEL)).arrange(RIGHT, buff=0.12)
        char_cells.next_to(char_grid, DOWN, buff=0.3)
        tok_cells.next_to(token_grid.frame, DOWN, buff=0.3).set_y(char_cells.get_y())
        which = label(f"squares: real attention, layer {choice.layer} head {choice.head}", theme, SMALL * 0.9, color=theme.dim)
        which.next_to(tok_cells, DOWN, buff=0.12)
        char_note = label("(not a real model)", theme, SMALL * 0.9, color=theme.dim).next_to(char_cells, DOWN, buff=0.12)
        tok_cells.add(which)
        char_cells.add(char_note)
        explain = label("attention compares every position with every earlier one", theme, SMALL, color=theme.dim)
        explain.next_to(VGroup(char_title, tok_title), UP, buff=0.3)
        stage = Group(explain, char_title, tok_title, char_grid, token_grid, char_cells, tok_cells)
        fit_height(stage, self.stage_top() - (-config.frame_height / 2 + 0.55))
        stage.move_to([0, (self.stage_top() + (-config.frame_height / 2 + 0.55)) / 2, 0])
        self.say("Attention compares every position with every other one, so its grid grows with the square of the length.")
        self.play(FadeIn(explain), FadeIn(char_title), FadeIn(tok_title), run_time=1)
        self.say(f"By characters: {chars} x {chars} = {fmt_int(chars * chars)} cells. "
                     f"By tokens: {n} x {n} = {fmt_int(n * n)} cells.")
        self.play(FadeIn(char_grid), FadeIn(token_grid), run_time=1.5)
        self.play(FadeIn(char_cells), FadeIn(tok_cells), run_time=1)
        q, keys = choice.query, choice.keys
        self.say(f"The squares on the right are real attention weights (layer {choice.layer}, head {choice.head}): "
                     f"the column of {trace.pieces[q]!r} is filled by {' and '.join(repr(trace.pieces[k]) for k in keys)}.")
        self.wait(4)

    def grid_positions(self) -> list[int | None]:
        """Tokens for the small grid: all of them if few, else the story tokens and their neighbours."""
        n = len(self.trace.tokens)
        if n <= MAX_GRID_TOKENS:
            return list(range(n))
        choice = self.data.choice
        want = sorted(set([0, choice.query, *choice.keys, n - 1]))
        keep = set(want)
        for radius in range(1, n):
            for p in want:
                for c in (p - radius, p + radius):
                    if 0 <= c < n and len(keep) < MAX_GRID_TOKENS - 3:
                        keep.add(c)
            if len(keep) >= MAX_GRID_TOKENS - 3:
                break
        out: list[int | None] = []
        prev = -1
        for p in sorted(keep):
            if p > prev + 1:
                out.append(None)
            out.append(p)
            prev = p
        return out
