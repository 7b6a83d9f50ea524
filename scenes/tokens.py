"""tokens: text becomes tokens.

Storyboard:
1. the prompt as plain text splits into coloured token boxes at the tokenizer's real
   boundaries; words that split are pointed out;
2. every box shows its integer id; the tokenizer's vocabulary size;
3. characters vs tokens: both counts, and the attention grid's cells for each.
"""

from __future__ import annotations

from manim import (DOWN, LEFT, RIGHT, UP, Brace, Group, FadeIn, FadeOut, GrowFromCenter, Indicate, LaggedStart, VGroup,
                   Write, config)

from facts import counts
from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import AttentionGrid, PromptText, TokenStrip, cell_grid_image, count, fit_height, label
from scenes.parts.theme import BODY, LABEL, SMALL

MAX_GRID_TOKENS = 10


def and_list(items: list[str]) -> str:
    """“a”, “a and b”, “a, b and c”."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def tokens_word(n: int) -> str:
    return "one token" if n == 1 else f"{narration.spoken_count(n)} tokens"


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
        chars = len(trace.prompt)
        self.say("The model never reads letters. "
                 f"Our prompt is {'one character' if chars == 1 else f'{narration.spoken_count(chars)} characters'} "
                 "of plain text.")
        self.play(FadeIn(prompt), run_time=1)
        word = self.split_word()
        focus = [self.data.focus] + (list(range(*word)) if word else [])
        self.strip = TokenStrip(trace.pieces, trace.tokens, theme, focus=focus, show_ids=True).move_to(DOWN * 0.2)
        boxes = [self.strip.boxes[p] for p in self.strip.shown_positions]
        gaps = [m for m in self.strip.row if m not in boxes]
        added = counts.added_tokens(trace)
        if n == 1:
            self.say("The tokenizer turns it into a single token. Tokens are pieces of text it learned from data.")
        else:
            more = (" That is more tokens than characters: some characters become several raw bytes."
                    if n - added > len(trace.prompt) else "")
            self.say(f"The tokenizer cuts it into {tokens_word(n)}. These are pieces of words, learned from data.{more}")
        self.play(prompt.animate.scale(0.8).to_edge(UP, buff=1.2),
                  LaggedStart(*[GrowFromCenter(b) for b in boxes], lag_ratio=0.08), *[FadeIn(g) for g in gaps],
                  run_time=2)
        self.prompt = prompt
        if added:
            self.start_token(added)
        if len(self.strip.shown_positions) < n:
            self.say(f"Only {narration.spoken_count(len(self.strip.shown_positions))} of them fit on screen. "
                     "The dots stand for the rest.")
        if word:
            parts = [trace.pieces[i] for i in range(*word)]
            group = VGroup(*[self.strip.boxes[i] for i in range(*word) if i in self.strip.boxes])
            brace = Brace(group, UP, color=theme.accent, buff=0.08)
            note = label(f"one word, {len(parts)} tokens", theme, LABEL, color=theme.accent).next_to(brace, UP, buff=0.1)
            self.say(self.split_text(parts))
            start_note = getattr(self, "start_note", None)
            self.play(GrowFromCenter(brace), FadeIn(note), *([FadeOut(start_note)] if start_note else []), run_time=1)
            self.start_note = None
            gone = [FadeOut(brace), FadeOut(note)]
        else:
            self.say("Here every word is a single token. A rarer word would split into pieces.")
            gone = []
        space = label("␣ marks a space: it belongs to the token that follows it", theme, SMALL, color=theme.dim)
        space.next_to(self.strip, DOWN, buff=0.9)
        self.say("The ␣ sign marks a space. A space belongs to the token that follows it.")
        self.play(*gone, FadeIn(space), run_time=0.6)
        self.space_note = space

    def start_token(self, added: int) -> None:
        """The token(s) the tokenizer puts before every prompt (Gemma's <bos>): shown, and how
        many heads of the model rest their last token's attention on it."""
        trace, theme = self.trace, self.theme
        first = [self.strip.boxes[p] for p in range(added) if p in self.strip.boxes]
        if not first:
            return
        heads = counts.start_token_heads(trace)
        start = VGroup(*first)
        note = VGroup(label("added before every prompt", theme, SMALL, color=theme.accent),
                      VGroup(count(heads["heads"], theme, "count.start_heads", size=SMALL, color=theme.accent),
                             label("of", theme, SMALL, color=theme.accent),
                             count(heads["total"], theme, "count.heads", size=SMALL, color=theme.accent),
                             label("heads: the last token gives it half or more", theme, SMALL, color=theme.accent)
                             ).arrange(RIGHT, buff=0.1)).arrange(DOWN, buff=0.1, aligned_edge=LEFT)
        note.next_to(start, UP, buff=0.35).align_to(start, LEFT)
        if note.get_right()[0] > config.frame_width / 2 - 0.2:
            note.shift(LEFT * (note.get_right()[0] - config.frame_width / 2 + 0.2))
        name = self.piece(0)
        self.say(f"The first token, {name}, is not from our text. The tokenizer puts it in front of every prompt, "
                 "to mark where a text begins. It is token number "
                 f"{trace.tokens[0]}, the same every time.")
        self.play(Indicate(start, color=theme.accent, scale_factor=1.15), FadeIn(note[0]), run_time=1)
        if heads["heads"]:
            self.say(f"It also gives attention a place to rest. In {heads['heads']} of the model's {heads['total']} "
                     f"heads, the last token puts at least half its attention on {name}: "
                     "a head with nothing useful to find looks there.")
        else:
            self.say("Attention can rest on it, though here no head gives it half of the last token's attention.")
        self.play(FadeIn(note[1]), run_time=0.8)
        self.start_note = note

    def split_text(self, parts: list[str]) -> str:
        """What the narration says about a word the tokenizer cut into `parts`."""
        k = len(parts)
        whole = "".join(parts).strip()
        if any("<0x" in p for p in parts):  # raw bytes: the pieces have no readable names
            return f"Some text splits into raw bytes: here {k} tokens make up one word."
        return (f"A rarer word splits into pieces: “{whole}” becomes {k} tokens, "
                f"{and_list([self.word(p) for p in parts])}.")

    def beat_ids(self):
        trace, theme = self.trace, self.theme
        vocab = trace.config.vocab_size
        focus = self.data.focus
        ids = self.strip.id_group()
        self.say(f"To the model, each token is just a number. Here, {self.piece(focus)} is token {trace.tokens[focus]}.")
        start_note = [FadeOut(self.start_note)] if getattr(self, "start_note", None) else []
        self.play(FadeOut(self.space_note), *start_note, LaggedStart(*[FadeIn(i, shift=0.2 * DOWN) for i in ids], lag_ratio=0.06),
                  run_time=1.5)
        vocab_line = VGroup(label("This tokenizer knows", theme, BODY),
                            count(vocab, theme, "config.vocab_size", size=BODY),
                            label("tokens", theme, BODY)).arrange(RIGHT, buff=0.18)
        vocab_line.next_to(self.strip, DOWN, buff=1.0)
        big = (" A vocabulary this large has room for whole words of many languages, so fewer words are cut."
               if vocab >= 200_000 else "")
        self.say(f"The tokenizer knows {narration.spoken_count(vocab)} tokens. "
                 f"So every token number is a whole number below {narration.spoken_count(vocab)}.{big}")
        self.play(Write(vocab_line), run_time=1.2)
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
        self.say("Attention compares every position with every earlier one. "
                 "So its grid grows with the square of the length.")
        self.play(FadeIn(explain), FadeIn(char_title), FadeIn(tok_title), run_time=1)
        self.say(f"Counted in characters, that is {chars} times {chars}: {self.cells(chars)}. "
                 "This grid is only a sketch.")
        self.play(FadeIn(char_grid), FadeIn(char_cells), run_time=1.5)
        added = counts.added_tokens(trace)
        bigger = ((" For this prompt, tokens make the grid bigger, not smaller"
                   + (": the start token counts too." if n - added <= chars else ".")) if n > chars else "")
        self.say(f"Counted in tokens, it is {n} times {n}: {self.cells(n)}.{bigger}")
        self.play(FadeIn(token_grid), FadeIn(tok_cells), run_time=1.5)
        q, keys = choice.query, choice.keys
        self.say(f"These squares are real attention weights, from layer {choice.layer}, head {choice.head}. "
                 + self.story_text(q, keys, choice.score))
        story = VGroup(*[token_grid.cells[(q, k)] for k in keys if (q, k) in token_grid.cells])
        if len(story):
            self.play(Indicate(story, color=theme.accent, scale_factor=1.3), run_time=1)

    @staticmethod
    def cells(side: int) -> str:
        return "1 cell" if side == 1 else f"{narration.spoken_count(side * side)} cells"

    def names(self, positions) -> str:
        """Prompt tokens named for the ear; byte pieces, which have no readable name, counted together."""
        named = [self.piece(p) for p in positions if self.piece(p) != narration.spoken_token("<0x00>")]
        raw = len(positions) - len(named)
        if raw:
            named.append("a byte piece" if raw == 1 else f"{raw} byte pieces")
        return and_list(named)

    def story_text(self, q: int, keys: tuple[int, ...], score: float) -> str:
        """What the story head's column shows: how much of the query's attention its key tokens get."""
        if len(self.trace.tokens) == 1:
            return "With a single token, it can only attend to itself."
        share = narration.spoken_percent(score)
        who = self.names([q])
        who = who[:1].upper() + who[1:]
        if score < 0.3:
            return f"{who} gives only {share} of its attention to {self.names(keys)}: a weak link."
        return f"{who} gives {share} of its attention to {self.names(keys)}."

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
