"""masking: later tokens must not leak.

Storyboard:
1. why: in training every position predicts its next token at the same time, so no position
   may see the token it is predicting (the model's real probabilities for the prompt's own
   next tokens);
2. cells where a later key would inform an earlier query are outlined and set to -inf before
   softmax; after softmax they are exactly 0 and each column still sums to 1 (real);
3. the cost of context: cells grow as n^2, for this prompt and for the model's full context.
"""

from __future__ import annotations

from manim import DOWN, LEFT, RIGHT, UL, UP, Arrow, FadeIn, Group, LaggedStart, VGroup, config

from facts.counts import causal_cells, window_cells
from scenes.parts import narration
from scenes.parts.attention_parts import AttentionScene, NumberGrid, fit_height
from scenes.parts.components import TokenStrip, cell_grid_image, count, fit_width, label, token_label
from scenes.parts.provenance import Shown
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_percent

LIMIT = 8
CELL_W, CELL_H = 0.95, 0.5
SIZE = SMALL * 0.85
MAX_DRAWN_CELLS = 240  # a grid image never has more cells a side than this (they would be sub-pixel anyway)


class Masking(AttentionScene):
    title_text = "No peeking at later tokens"
    beats = ("beat_why", "beat_mask", "beat_cost")

    def beat_why(self):
        trace, theme = self.trace, self.theme
        n = len(trace.tokens)
        strip = TokenStrip(trace.pieces, trace.tokens, theme, focus=[self.query], max_width=config.frame_width - 1.0)
        strip.move_to(UP * 1.2)
        probs = trace["logits"].softmax(-1)
        targets = VGroup()
        shown = strip.shown_positions
        for pos in shown:
            if pos + 1 >= n or pos + 1 not in strip.boxes:
                continue
            box, nxt = strip.boxes[pos], trace.tokens[pos + 1]
            p = float(probs[pos, nxt])
            text = fmt_percent(p)
            pct = label(text, theme, SMALL * 0.9, color=theme.accent, mono=True,
                        shown=Shown(text, p, "probs", (pos, nxt), kind="percent"))
            arrow = Arrow(box.get_bottom(), box.get_bottom() + DOWN * 0.7, buff=0.05, color=theme.dim,
                          stroke_width=3, max_tip_length_to_length_ratio=0.25)
            target = token_label(trace.pieces[pos + 1], theme, SMALL, color=theme.token_color(pos + 1), index=(pos + 1,))
            fit_width(target, box.width + 0.3)
            target.next_to(arrow, DOWN, buff=0.08)
            fit_width(pct, box.width + 0.3)
            pct.next_to(target, DOWN, buff=0.1)
            targets.add(VGroup(arrow, target, pct))
        legend = VGroup(label("each token's guess for the next one:", theme, LABEL),
                        label("the real next token and the probability the model gave it", theme, SMALL, color=theme.dim))
        legend.arrange(DOWN, aligned_edge=LEFT, buff=0.1).next_to(strip, UP, buff=0.5).to_edge(LEFT, buff=0.5)
        self.say("In training, every position guesses the token that comes next. "
                 "All positions guess at the same time, in one pass over the text.")
        self.play(FadeIn(strip), FadeIn(legend), run_time=1)
        if len(targets):
            self.play(LaggedStart(*[FadeIn(t, shift=0.2 * DOWN) for t in targets], lag_ratio=0.1), run_time=1.5)
            guessed = [pos for pos in shown if pos + 1 < n and pos + 1 in strip.boxes]
            pos = max(guessed, key=lambda i: float(probs[i, trace.tokens[i + 1]]))  # the best guess drawn
            said = narration.spoken_percent(float(probs[pos, trace.tokens[pos + 1]]))
            chance = "almost no chance" if said == "almost 0%" else f"a chance of {said}"
            self.say(f"For example, after {self.piece(pos)} the model gave {self.piece(pos + 1)} {chance}. "
                     "If a position could see the token it is guessing, it would simply copy it and learn nothing.")
        else:
            self.say("With one token there is nothing later to hide, but the rule is the same at any length.")
        rule = label("so a token may only look at itself and earlier tokens", theme, BODY, color=theme.accent)
        fit_width(rule, config.frame_width - 1)
        rule.to_edge(DOWN, buff=0.8)
        self.say("So a token may only look at itself and at earlier tokens.")
        self.play(FadeIn(rule), run_time=0.8)

    def grid(self, values, source, index, masked_decimals=None, weights: bool = False):
        grid = NumberGrid(values, self.positions, self.trace.pieces, self.theme, source, index, masked="number",
                          decimals=2, decimals_masked=masked_decimals, cell_w=CELL_W, cell_h=CELL_H, size=SIZE,
                          unsigned_values=weights)
        self.place_grid(grid)
        return grid

    def beat_mask(self):
        trace, theme = self.trace, self.theme
        L, H = self.layer, self.head
        self.clear_stage()
        self.positions = self.grid_positions(LIMIT)
        scores = self.grid(trace[self.hook("hook_attn_scores")][H].numpy(), self.hook("hook_attn_scores"),
                           lambda a, b: (H, a, b))
        side_x = scores.frame.get_right()[0] + 0.45
        notes = VGroup(label("outlined: key after query", theme, SMALL, color=theme.dim),
                       label("before softmax: set to −inf", theme, SMALL, color=theme.dim))
        notes.arrange(DOWN, aligned_edge=LEFT, buff=0.12)
        fit_width(notes, config.frame_width / 2 - 0.3 - side_x)
        notes.move_to([side_x, scores.frame.get_top()[1], 0], aligned_edge=UL)
        if len(trace.tokens) == 1:
            self.say(f"Here is the grid of head {H} in layer {L}. With one token, no key comes after its query, "
                     "so there is nothing to hide.")
        else:
            self.say(f"Here is the grid of head {H} in layer {L}. Every cell whose key comes after its query "
                     "is outlined. Before softmax, those cells are set to minus infinity.")
        self.play(FadeIn(scores), FadeIn(notes), run_time=1.5)
        weights = self.grid(trace[self.hook("hook_pattern")][H].numpy(), self.hook("hook_pattern"),
                            lambda a, b: (H, a, b), masked_decimals=0, weights=True)
        sums = self.column_sums(weights, SIZE)
        after = label("after softmax: exactly 0", theme, SMALL, color=theme.dim)
        fit_width(after, config.frame_width / 2 - 0.3 - side_x)
        after.next_to(notes, DOWN, buff=0.3, aligned_edge=LEFT)
        if len(trace.tokens) == 1:
            self.say("Softmax turns the one score into a weight of exactly 1.")
        else:
            self.say("e to the minus infinity is exactly 0. So after softmax, those keys get no weight at all.")
        self.play(*scores.retarget(weights), FadeIn(after), run_time=1.5)
        self.remove(scores)
        self.add(weights)
        self.say("And each column still adds up to 1.")
        self.play(FadeIn(sums), run_time=0.6)
        if trace.config.sliding_window:
            self.window_note(after, side_x)

    def window_note(self, above, side_x: float) -> None:
        """Sliding-window models: does this layer look back only a fixed number of tokens, and
        does that bite on this prompt?"""
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        n, w, L = len(trace.tokens), cfg.sliding_window, self.layer
        local = cfg.is_local(L)
        if local:
            lines = VGroup(label(f"layer {L}: a local layer", theme, SMALL, color=theme.accent),
                           VGroup(label("sees at most", theme, SMALL, color=theme.dim),
                                  count(w, theme, "config.sliding_window", size=SMALL, color=theme.dim),
                                  label("tokens back", theme, SMALL, color=theme.dim)).arrange(RIGHT, buff=0.14),
                           VGroup(label("this prompt:", theme, SMALL, color=theme.dim),
                                  count(n, theme, "count.tokens", size=SMALL, color=theme.dim),
                                  label("→ " + ("sees them all" if n <= w else "older keys hidden too"), theme, SMALL,
                                        color=theme.dim)).arrange(RIGHT, buff=0.14))
        else:
            lines = VGroup(label(f"layer {L}: a global layer", theme, SMALL, color=theme.accent),
                           label("sees every earlier token", theme, SMALL, color=theme.dim),
                           VGroup(label("local layers: at most", theme, SMALL, color=theme.dim),
                                  count(w, theme, "config.sliding_window", size=SMALL, color=theme.dim)
                                  ).arrange(RIGHT, buff=0.14))
        lines.arrange(DOWN, aligned_edge=LEFT, buff=0.1)
        fit_width(lines, config.frame_width / 2 - 0.3 - side_x)
        lines.next_to(above, DOWN, buff=0.45, aligned_edge=LEFT)
        n_local = len(cfg.local_layers)
        if local:
            fits = (f"Our prompt is only {narration.spoken_count(n)} {'token' if n == 1 else 'tokens'} long, "
                    "so here it still sees them all." if n <= w else
                    "Our prompt is longer than that, so keys further back are hidden as well.")
            self.say(f"This model adds a second limit. Layer {L} is one of its {n_local} local layers: a token "
                     f"there may look back at most {narration.spoken_count(w)} tokens, itself included. {fits}")
        else:
            self.say(f"This model adds a second limit on {n_local} of its {cfg.n_layers} layers: there, a token "
                     f"may look back at most {narration.spoken_count(w)} tokens. Layer {L} is not one of them: "
                     "it sees every earlier token.")
        self.play(FadeIn(lines), run_time=1)

    def beat_cost(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage()
        n, ctx = len(trace.tokens), cfg.n_ctx
        side = 3.2
        panels = Group()
        for m, name, which in ((n, "this prompt", "tokens"), (ctx, "the model's full context", "n_ctx")):
            img = cell_grid_image(min(m, MAX_DRAWN_CELLS), theme, side)
            head = VGroup(label(name + ":", theme, LABEL),
                          count(m, theme, "count.tokens" if which == "tokens" else "config.n_ctx", size=LABEL),
                          label("tokens", theme, LABEL)).arrange(RIGHT, buff=0.12)
            cells = VGroup(count(m * m, theme, "attn.cells", size=LABEL, index=(which, "all")),
                           label("cells,", theme, LABEL, color=theme.dim),
                           count(causal_cells(m), theme, "attn.cells", size=LABEL, index=(which, "causal")),
                           label("unmasked", theme, LABEL, color=theme.dim)).arrange(RIGHT, buff=0.12)
            panel = Group(head, img, cells).arrange(DOWN, buff=0.3)
            if m > MAX_DRAWN_CELLS:
                panel.add(label("(cells too small to draw)", theme, SMALL, color=theme.dim).next_to(img, DOWN, buff=0.1))
                cells.next_to(panel[-1], DOWN, buff=0.2)
            panels.add(panel)
        panels.arrange(RIGHT, buff=1.0, aligned_edge=UP)
        fit_width(panels, config.frame_width - 0.8)
        fit_height(panels, self.stage_top() + config.frame_height / 2 - 1.0)
        panels.move_to([0, self.stage_top() - 0.15, 0], aligned_edge=UP)
        if n == 1:
            size = "One token makes just 1 cell."
        else:
            size = (f"{narration.spoken_count(n)} tokens make {narration.spoken_count(n * n)} cells, "
                    f"and {narration.spoken_count(causal_cells(n))} of them are left after the mask.")
        self.say(f"Every query meets every key up to itself, so the grid grows with the square of the length. {size}")
        self.play(FadeIn(panels[0]), run_time=1)
        self.say(f"At the model's full context of {narration.spoken_count(ctx)} tokens, that is "
                 f"{narration.spoken_count(ctx * ctx)} cells, for every head in every layer. "
                 f"Just over half of them, {narration.spoken_count(causal_cells(ctx))}, are left after the mask.")
        self.play(FadeIn(panels[1]), run_time=1)
        if cfg.sliding_window and cfg.local_layers and cfg.sliding_window < ctx:
            self.window_cost(panels[1], ctx)

    def window_cost(self, full, ctx: int) -> None:
        """Sliding-window models: at full context a local layer fills only a band along the diagonal."""
        theme, cfg = self.theme, self.trace.config
        w = cfg.sliding_window
        drawn = min(ctx, MAX_DRAWN_CELLS)
        img = full[1]
        band = cell_grid_image(drawn, theme, img.height, band=w * drawn / ctx).move_to(img)
        kept = window_cells(ctx, w)
        note = VGroup(label("a local layer with a window of", theme, LABEL, color=theme.accent),
                      count(w, theme, "config.sliding_window", size=LABEL, color=theme.accent),
                      label("keeps only", theme, LABEL, color=theme.accent),
                      count(kept, theme, "attn.cells", size=LABEL, index=("n_ctx", "window"), color=theme.accent),
                      label("cells", theme, LABEL, color=theme.accent)).arrange(RIGHT, buff=0.15)
        fit_width(note, config.frame_width - 1.0)
        note.next_to(full, DOWN, buff=0.25)
        if note.get_bottom()[1] < -config.frame_height / 2 + 0.6:
            note.shift(UP * (-config.frame_height / 2 + 0.6 - note.get_bottom()[1]))
        if note.get_right()[0] > config.frame_width / 2 - 0.2:
            note.shift(LEFT * (note.get_right()[0] - config.frame_width / 2 + 0.2))
        share = kept / causal_cells(ctx)
        self.say(f"But {len(cfg.local_layers)} of this model's {cfg.n_layers} layers never fill that triangle. "
                 "A local layer looks back only "
                 f"{narration.spoken_count(w)} tokens, so it keeps just a narrow band along the diagonal: "
                 f"{narration.spoken_count(kept)} cells, about {narration.spoken_percent(share)} of the triangle.")
        self.play(FadeIn(band), FadeIn(note), run_time=1)
