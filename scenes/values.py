"""values: how attention changes a vector.

Storyboard:
1. values: each token's vector (after the layer's norm) times W_V gives its value vector (red);
2. the story column: the values weighted by the real attention weights and summed (= the
   trace's hook_z), then through the head's slice of W_O: this head's change (hook_result);
3. E + delta E: the vector entering the layer plus what attention adds is the new vector
   (real numbers before and after);
4. every column at once: every token is updated in parallel.
"""

from __future__ import annotations

import numpy as np
from manim import DOWN, RIGHT, UP, FadeIn, LaggedStart, VGroup, config

from scenes.parts import narration
from scenes.parts.attention_parts import AttentionScene, fit_height, matrix_view, row_of_vectors, vector_with_length
from scenes.parts.components import TokenStrip, fit_width, label, number
from scenes.parts.theme import BODY, LABEL, SMALL

COLUMN_WIDTH = 1.3
MAX_TERMS = 3  # weighted values drawn in the sum; the rest are counted


def spoken_list(items: list[str]) -> str:
    """“a”, “a and b”, “a, b and c”."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class Values(AttentionScene):
    title_text = "Values: what attention adds"
    beats = ("beat_values", "beat_weighted_sum", "beat_update", "beat_every_column")

    def beat_values(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        q = self.query
        corners = self.data.weight_corners
        matrix = matrix_view("W_V", corners["W_V"], theme, "attn.W_V", (self.layer, self.head), color=theme.value)
        token = TokenStrip(trace.pieces, trace.tokens, theme, positions=[q], size=SMALL)
        x = vector_with_length(np.array(self.data.norm_outputs["ln1"][q]), theme,
                               f"norm_output:blocks.{self.layer}.ln1", (q,), "config.d_model", scale=0.3)
        token.next_to(x.column, UP, buff=0.15)
        v = vector_with_length(trace[self.hook("hook_v")][q, self.kv].numpy(), theme, self.hook("hook_v"), (q, self.kv),
                               "config.d_head", color=theme.value, scale=2, caption="value")
        row = VGroup(matrix, label("×", theme, BODY), VGroup(token, x), label("=", theme, BODY), v).arrange(RIGHT, buff=0.3)
        fit_width(row, config.frame_width - 1.0)
        fit_height(row, 3.3)
        row.next_to([0, self.stage_top(), 0], DOWN, buff=0.1)
        self.say(f"A third matrix, the value matrix, gives each token a value vector. Here it takes the "
                 f"{cfg.d_model} numbers of {self.piece(q)} down to {cfg.d_head}. "
                 "The value is what a token hands over to the tokens that attend to it.")
        self.play(FadeIn(row), run_time=1.5)
        room = int((config.frame_width - 1.6) // COLUMN_WIDTH)
        self.positions = self.grid_positions(room)
        values = row_of_vectors(trace, self.positions, self.hook("hook_v"), lambda p: (p, self.kv), theme, theme.value,
                                COLUMN_WIDTH, scale=2)
        fit_width(values, config.frame_width - 0.8)
        fit_height(values, row.get_bottom()[1] + config.frame_height / 2 - 0.7)
        values.next_to(row, DOWN, buff=0.35)
        n = len(trace.tokens)
        self.say(f"Every token gets one, from the same matrix: {n} value vectors of {cfg.d_head} numbers each."
                 if n > 1 else f"This prompt has one token, so there is one value vector of {cfg.d_head} numbers.")
        self.play(LaggedStart(*[FadeIn(c, shift=0.2 * DOWN) for c in [values.strip, *values.cols]], lag_ratio=0.08),
                  run_time=1.5)

    def beat_weighted_sum(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        H, q = self.head, self.query
        self.clear_stage()
        pattern = trace[self.hook("hook_pattern")][H, q]
        order = np.argsort(-pattern[: q + 1].numpy(), kind="stable")[:MAX_TERMS]
        terms_keys = sorted(int(k) for k in order)
        terms = []
        for k in terms_keys:
            w = number(float(pattern[k]), theme, self.hook("hook_pattern"), (H, q, k), scale=1, size=LABEL)
            w.set_color(theme.accent)
            col = vector_with_length(trace[self.hook("hook_v")][k, self.kv].numpy(), theme, self.hook("hook_v"),
                                     (k, self.kv), "config.d_head", color=theme.value, scale=2, head=3, tail=1)
            box = TokenStrip(trace.pieces, trace.tokens, theme, positions=[k], size=SMALL)
            box.next_to(col.column, UP, buff=0.15)
            terms.append(VGroup(w, label("×", theme, LABEL), VGroup(box, col)).arrange(RIGHT, buff=0.12))
        parts = []
        for i, t in enumerate(terms):
            if i:
                parts.append(label("+", theme, BODY))
            parts.append(t)
        rest = q + 1 - len(terms_keys)
        if rest:
            parts.append(label(f"+ {rest} more", theme, LABEL, color=theme.dim))
        z = vector_with_length(trace[self.hook("hook_z")][q, H].numpy(), theme, self.hook("hook_z"), (q, H),
                               "config.d_head", color=theme.value, scale=2, head=3, tail=1, caption="weighted sum")
        parts += [label("=", theme, BODY), z]
        top_row = VGroup(*parts).arrange(RIGHT, buff=0.2)
        fit_width(top_row, config.frame_width - 0.8)
        fit_height(top_row, 3.2)
        top_row.next_to([0, self.stage_top(), 0], DOWN, buff=0.15)
        self.say(f"Now {self.piece(q)} collects the values it attends to. "
                 "Each value is scaled by its attention weight, and the results are added up.")
        self.play(LaggedStart(*[FadeIn(p) for p in parts[:-2]], lag_ratio=0.2), run_time=2)
        shares = [f"{narration.spoken_percent(float(pattern[k]))} of {self.piece(k)}" for k in terms_keys]
        shares[0] = shares[0].replace(" of ", " of the value of ", 1)
        more = "" if not rest else ", plus one smaller term" if rest == 1 else f", plus {rest} smaller terms"
        self.say(f"Here that is {spoken_list(shares)}{more}. The total is the weighted sum.")
        self.play(FadeIn(parts[-2]), FadeIn(z), run_time=1)
        corners = self.data.weight_corners
        w_o = matrix_view("W_O", corners["W_O"], theme, "attn.W_O", (self.layer, H), size=SMALL)
        delta = vector_with_length(trace[self.hook("hook_result")][q, H].numpy(), theme, self.hook("hook_result"),
                                   (q, H), "config.d_model", scale=0.5, caption=f"head {H}'s ΔE")
        bottom_row = VGroup(w_o, label("×", theme, BODY), label("weighted sum", theme, LABEL, color=theme.value),
                            label("=", theme, BODY), delta).arrange(RIGHT, buff=0.3)
        fit_width(bottom_row, config.frame_width - 0.8)
        fit_height(bottom_row, top_row.get_bottom()[1] + config.frame_height / 2 - 0.8)
        bottom_row.next_to(top_row, DOWN, buff=0.35)
        self.say(f"The output matrix carries that sum of {cfg.d_head} numbers back up to {cfg.d_model}. "
                 f"That is the change this head proposes for {self.piece(q)}.")
        self.play(FadeIn(bottom_row), run_time=1.5)

    def beat_update(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        L, q = self.layer, self.query
        self.clear_stage()
        names = [(f"blocks.{L}.hook_resid_pre", "E"), (f"blocks.{L}.hook_attn_out", "ΔE"),
                 (f"blocks.{L}.hook_resid_mid", "E + ΔE")]
        cols = [vector_with_length(trace[n][q].numpy(), theme, n, (q,), "config.d_model", scale=2, head=5, tail=2,
                                   caption=c) for n, c in names]
        row = VGroup(cols[0], label("+", theme, BODY), cols[1], label("=", theme, BODY), cols[2]).arrange(RIGHT, buff=0.6)
        token = TokenStrip(trace.pieces, trace.tokens, theme, positions=[q])
        note = label(f"E: the vector entering layer {L}   ΔE: the changes of all {cfg.n_heads} heads, summed", theme, SMALL,
                     color=theme.dim)
        group = VGroup(token, row, note).arrange(DOWN, buff=0.35)
        fit_height(group, self.stage_top() + config.frame_height / 2 - 0.9)
        group.next_to([0, self.stage_top(), 0], DOWN, buff=0.1)
        e, d, new = (float(trace[n][q, 0]) for n, _ in names)
        self.say(f"Now the change is added to the vector of {self.piece(q)}. This change sums all "
                 f"{cfg.n_heads} heads of layer {L}, not just head {self.head}.")
        self.play(FadeIn(token), FadeIn(cols[0]), FadeIn(note), run_time=1)
        self.play(FadeIn(row[1]), FadeIn(cols[1]), run_time=1)
        plus = f"minus {narration.spoken_number(-d)}" if d < 0 else f"plus {narration.spoken_number(d)}"
        self.say(f"In the first entry, {narration.spoken_number(e)} {plus} makes {narration.spoken_number(new)}.")
        self.play(FadeIn(row[3]), FadeIn(cols[2]), run_time=1)

    def beat_every_column(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        L = self.layer
        self.clear_stage()
        deltas = row_of_vectors(trace, self.positions, f"blocks.{L}.hook_attn_out", lambda p: (p,), theme, theme.value,
                                COLUMN_WIDTH, scale=2)
        title = label("ΔE for every token, all computed at once", theme, LABEL)
        group = VGroup(title, deltas).arrange(DOWN, buff=0.4)
        fit_width(group, config.frame_width - 0.8)
        fit_height(group, self.stage_top() + config.frame_height / 2 - 1.0)
        group.move_to(DOWN * 0.2)
        n = len(trace.tokens)
        self.say(f"Every token gets the same treatment, in parallel. All {n} tokens get their own weighted sum "
                 "and their own change, in one pass." if n > 1 else
                 "Every token gets the same treatment, in parallel: its own weighted sum and its own change, "
                 "in one pass.")
        self.play(FadeIn(title), FadeIn(deltas.strip), run_time=0.8)
        self.play(LaggedStart(*[FadeIn(c, shift=0.3 * DOWN) for c in deltas.cols], lag_ratio=0.05), run_time=1.5)
