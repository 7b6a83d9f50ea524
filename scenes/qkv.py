"""qkv: queries and keys.

Storyboard:
1. one token's vector (as attention reads it, after the layer's norm) times W_Q (real,
   d_model -> d_head) gives its query; the same for a key with W_K. Query yellow, key teal.
   Where the model adds a bias (GPT-2, Qwen2), the real b_Q / b_K is drawn and added before "=";
2. every token gets a query and a key;
3. queries and keys live in one small space: a 2-D picture of the real keys, seen from the
   story query, where the story keys lie furthest along the query.
"""

from __future__ import annotations

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UL, UP, Arrow, DashedLine, Dot, FadeIn, GrowArrow, LaggedStart, Line,
                   Rectangle, VGroup, config)

from facts import attention as af
from scenes.parts import narration
from scenes.parts.attention_parts import AttentionScene, fit_height, matrix_view, row_of_vectors, vector_with_length
from scenes.parts.components import TokenStrip, count, fit_width, label, number, token_label
from scenes.parts.plots import box_of, line_points, place_clear
from scenes.parts.theme import BODY, LABEL, SMALL

COLUMN_WIDTH = 1.3


def spoken_list(items: list[str]) -> str:
    """“a”, “a and b”, “a, b and c”."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class Qkv(AttentionScene):
    title_text = "Queries and keys"
    beats = ("beat_one_token", "beat_every_token", "beat_shared_space")

    def projection_row(self, pos: int, which: str) -> VGroup:
        """W · x = (before the turn) -> turned by position = the vector attention uses."""
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        corners = self.data.weight_corners
        color = theme.query if which == "q" else theme.key
        name = "W_Q" if which == "q" else "W_K"
        head = self.head if which == "q" else self.kv
        matrix = matrix_view(name, corners[name], theme, f"attn.{name}", (self.layer, self.head), color=color)
        token = TokenStrip(trace.pieces, trace.tokens, theme, positions=[pos], size=SMALL)
        x = vector_with_length(np.array(self.data.norm_outputs["ln1"][pos]), theme,
                               f"norm_output:blocks.{self.layer}.ln1", (pos,), "config.d_model", scale=0.3)
        token.next_to(x.column, UP, buff=0.15)
        pre = vector_with_length(trace[self.hook(f"hook_{which}")][pos, head].numpy(), theme,
                                 self.hook(f"hook_{which}"), (pos, head), "config.d_head", scale=3)
        rows = [matrix, label("×", theme, BODY), VGroup(token, x)]
        self.bias = f"b_{which.upper()}" in corners  # the model adds a bias: hook_q = x @ W_Q + b_Q
        if self.bias:
            bias = vector_with_length(np.array(corners[f"b_{which.upper()}"]), theme, f"attn.b_{which.upper()}",
                                      (self.layer, self.head), "config.d_head", scale=3, caption="bias")
            rows += [label("+", theme, BODY), bias]
        rows += [label("=", theme, BODY), pre]
        self.qk_norm = cfg.qk_norm
        if self.qk_norm:  # QK-norm: each head's query and key scaled to RMS 1, times the norm's own weight
            normed = vector_with_length(trace[self.hook(f"hook_{which}_normed")][pos, head].numpy(), theme,
                                        self.hook(f"hook_{which}_normed"), (pos, head), "config.d_head", scale=3)
            step = VGroup(label("norm", theme, SMALL, color=theme.dim),
                          label("(÷ RMS, × w)", theme, SMALL, color=theme.dim),
                          Arrow(LEFT * 0.5, RIGHT * 0.5, color=theme.dim, buff=0)).arrange(DOWN, buff=0.08)
            rows += [step, normed]
        self.rotary = trace.config.positional == "rotary"
        if self.rotary:
            after = vector_with_length(trace[self.hook(f"hook_rot_{which}")][pos, head].numpy(), theme,
                                       self.hook(f"hook_rot_{which}"), (pos, head), "config.d_head", color=color, scale=3,
                                       caption="query" if which == "q" else "key")
            turn = VGroup(label("turn by", theme, SMALL, color=theme.dim),
                          label("position", theme, SMALL, color=theme.dim),
                          Arrow(LEFT * 0.5, RIGHT * 0.5, color=theme.dim, buff=0)).arrange(DOWN, buff=0.08)
            rows += [turn, after]
        else:
            pre.column.left.set_color(color)
            pre.column.right.set_color(color)
        row = VGroup(*rows).arrange(RIGHT, buff=0.3)
        return row

    def beat_one_token(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        q, keys = self.query, self.story_keys
        key_pos = max(keys, key=lambda k: float(trace[self.hook("hook_pattern")][self.head, q, k]))
        top, bottom = self.stage_top(), -config.frame_height / 2 + 0.55
        room = (top - bottom - 0.3) / 2
        qrow = self.projection_row(q, "q")
        krow = self.projection_row(key_pos, "k")
        for row, y in ((qrow, top - room / 2), (krow, bottom + room / 2)):
            fit_height(row, room)
            fit_width(row, config.frame_width - 0.6)
            row.move_to([0, y, 0])
        self.say(f"Take head {self.head} of layer {self.layer}, and the token {self.piece(q)}. "
                 "Its vector, as attention reads it after the layer's norm, is multiplied by the query matrix. "
                 f"That takes {cfg.d_model} numbers down to {cfg.d_head}.")
        self.play(FadeIn(qrow[:3]), run_time=1.2)
        turn_from = 5
        if self.bias:
            bias = np.array(self.data.weight_corners["b_Q"])
            self.say(f"This model also adds a bias: {cfg.d_head} learned numbers, the same for every token, "
                     f"here from {narration.spoken_number(float(bias.min()))} to "
                     f"{narration.spoken_number(float(bias.max()))}.")
            turn_from = 7
        self.play(FadeIn(qrow[3:turn_from]), run_time=1.0)
        if self.qk_norm:
            scale = float(trace[self.hook("q_norm.hook_scale")][q, self.head].reshape(-1)[0])
            self.say("This model then normalises each head's query on its own: it divides the "
                     f"{cfg.d_head} numbers by their root mean square, here {narration.spoken_number(scale)}, "
                     "and multiplies them by a learned weight. So a query's size cannot run away.")
            self.play(FadeIn(qrow[turn_from:turn_from + 2]), run_time=1.0)
            turn_from += 2
        if self.rotary:
            self.say("Then the model turns the query by an angle that depends on its position. "
                     "From here on, every query and key is the turned one.")
            self.play(FadeIn(qrow[turn_from:]), run_time=1.0)
        first = float(trace[self.qk("q")][q, self.head, 0])
        self.say(f"The result is the query of {self.piece(q)}: {cfg.d_head} numbers, starting with "
                 f"{narration.spoken_number(first)}. It says what this token is looking for.")
        normed = (" plus a bias of their own" if self.bias else "") + (", then a norm of their own" if self.qk_norm else "")
        self.say(f"Keys come the same way, from a second matrix: the key matrix{normed}. "
                 f"Here is the key of {self.piece(key_pos)}: what that token offers to be found by.")
        self.play(FadeIn(krow), run_time=1.5)

    def beat_every_token(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage()
        room = int((config.frame_width - 2.2) // COLUMN_WIDTH)
        positions = self.grid_positions(room)
        queries = row_of_vectors(trace, positions, self.qk("q"), lambda p: (p, self.head), theme, theme.query,
                                 COLUMN_WIDTH, scale=3)
        keys = row_of_vectors(trace, positions, self.qk("k"), lambda p: (p, self.kv), theme, theme.key,
                              COLUMN_WIDTH, scale=3, boxes=False)
        keys.next_to(queries, DOWN, buff=0.35).align_to(queries, LEFT)
        q_label = label("queries", theme, LABEL, color=theme.query).next_to(queries.cols, LEFT, buff=0.3)
        k_label = label("keys", theme, LABEL, color=theme.key).next_to(keys.cols, LEFT, buff=0.3)
        group = VGroup(queries, keys, q_label, k_label)
        note = VGroup(count(cfg.d_head, theme, "config.d_head", size=SMALL, color=theme.dim),
                      label("numbers each" + (", already turned by position" if self.rotary else ""), theme, SMALL,
                            color=theme.dim)).arrange(RIGHT, buff=0.1)
        group.add(note)
        fit_height(group, self.stage_top() + config.frame_height / 2 - 1.0)
        fit_width(group, config.frame_width - 0.6)
        group.move_to(DOWN * 0.2)
        note.next_to(VGroup(queries, keys), DOWN, buff=0.25)
        n = len(trace.tokens)
        if n == 1:
            self.say(f"Every token does the same. This prompt has one token, so there is one query and one key, "
                     f"of {cfg.d_head} numbers each.")
        else:
            self.say(f"Every token does the same, all at once. That gives {n} queries and {n} keys, "
                     f"of {cfg.d_head} numbers each.")
        self.play(FadeIn(queries.strip), FadeIn(q_label), run_time=0.8)
        self.play(LaggedStart(*[FadeIn(c, shift=0.2 * DOWN) for c in queries.cols], lag_ratio=0.08), run_time=1.5)
        self.play(FadeIn(k_label), LaggedStart(*[FadeIn(c, shift=0.2 * DOWN) for c in keys.cols], lag_ratio=0.08),
                  run_time=1.5)
        self.play(FadeIn(note), run_time=0.5)
        if cfg.n_kv_heads == 1 < cfg.n_heads:
            self.say(f"In this model, all {cfg.n_heads} query heads share one single key head. "
                     f"So head {self.head} reads the same keys as every other head.")
        elif cfg.n_kv_heads < cfg.n_heads:
            self.say(f"In this model, {cfg.heads_per_kv} query heads share one key head. "
                     f"Head {self.head} reads key head {self.kv}.")

    def beat_shared_space(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage()
        q, keys = self.query, self.story_keys
        plane = af.qk_plane(trace, self.layer, self.head, q, keys)
        coords = np.array(plane["keys"])[: q + 1]  # the keys this query can see
        qk = af.dot_products(trace, self.layer, self.head)[q, : q + 1].numpy()
        width, height = 6.6, 5.0
        middle = np.array([-2.9, -0.45, 0])
        lo = np.minimum(coords.min(0), 0)
        hi = np.maximum(coords.max(0), 0)
        span = np.maximum(hi - lo, 1e-9)
        inner = np.array([width - 0.9, height - 0.9])
        to_point = lambda c: middle + np.array([*(((np.asarray(c) - lo) / span - 0.5) * inner), 0])
        center = to_point([0, 0])  # the average key
        box = Rectangle(width=width, height=height, stroke_color=theme.faint, stroke_width=1.5).move_to(middle)
        axis = Line([box.get_left()[0], center[1], 0], [box.get_right()[0], center[1], 0], color=theme.faint, stroke_width=2)
        vaxis = Line([center[0], box.get_bottom()[1], 0], [center[0], box.get_top()[1], 0], color=theme.faint, stroke_width=1)
        arrow = Arrow(center, [box.get_right()[0] - 0.1, center[1], 0], buff=0, color=theme.query, stroke_width=6)
        legend = VGroup(Arrow(LEFT * 0.3, RIGHT * 0.3, buff=0, color=theme.query, stroke_width=5),
                        label("query of", theme, SMALL, color=theme.query),
                        token_label(trace.pieces[q], theme, SMALL, color=theme.query, index=(q,)),
                        Dot(radius=0.07, color=theme.key), label("keys it can see", theme, SMALL, color=theme.key))
        legend.arrange(RIGHT, buff=0.12)
        legend[3].shift(RIGHT * 0.3)
        legend[4].shift(RIGHT * 0.3)
        fit_width(legend, width)
        legend.next_to(box, DOWN, buff=0.15)
        dots, names, drops = VGroup(), VGroup(), VGroup()
        order = np.argsort(-qk)
        labelled = set(keys) | {q} | {int(i) for i in order[:4]}
        for k in range(q + 1):
            p = to_point(coords[k])
            story = k in keys
            dots.add(Dot(p, radius=0.09 if story else 0.06, color=theme.key, fill_opacity=1 if story else 0.6))
            if story:
                drops.add(DashedLine(p, [p[0], center[1], 0], color=theme.key, stroke_width=2))
        # names next to their dots, inside the box, clear of every dot, the arrow and each other
        region, placed = box_of(box, -0.05), []
        points = [tuple(d.get_center()[:2]) for d in dots] + line_points([arrow.get_start(), arrow.get_end()])
        for k in [k for k in range(q + 1) if k in labelled][:8]:
            name = token_label(trace.pieces[k], theme, SMALL * 0.9, color=theme.token_color(k), index=(k,))
            names.add(place_clear(name, [dots[k].get_center()], region, placed, points))
        title = label("keys as seen from one query", theme, LABEL)
        title.next_to(box, UP, buff=0.15)
        self.say(f"Queries and keys live in the same space of {cfg.d_head} numbers. "
                 f"This flat slice of it keeps what matters to the query of {self.piece(q)}.")
        self.play(FadeIn(box), FadeIn(axis), FadeIn(vaxis), FadeIn(title), run_time=0.8)
        self.play(GrowArrow(arrow), FadeIn(legend), run_time=0.8)
        self.play(LaggedStart(*[FadeIn(d) for d in dots], lag_ratio=0.05), FadeIn(names), run_time=1.5)
        # the side panel: real q . k of the story keys and the best of the rest
        rows = VGroup()
        for k in [*keys, *[int(i) for i in order if int(i) not in keys][:2]]:
            rows.add(VGroup(token_label(trace.pieces[k], theme, SMALL, color=theme.token_color(k), index=(k,)),
                            label("q·k", theme, SMALL, color=theme.dim),
                            number(qk[k], theme, "attn.qk", (self.layer, self.head, q, k), scale=float(np.abs(qk).max()),
                                   decimals=1, size=SMALL)))
        widths = [max(r[i].width for r in rows) for i in range(3)]
        for j, r in enumerate(rows):  # a table: names right-aligned, then "q·k", then the number right-aligned
            y = -j * 0.42
            r[0].move_to([widths[0], y, 0], aligned_edge=RIGHT)
            r[1].move_to([widths[0] + 0.2, y, 0], aligned_edge=LEFT)
            r[2].move_to([widths[0] + 0.4 + widths[1] + widths[2], y, 0], aligned_edge=RIGHT)
        explain = VGroup(label("further right = larger q·k", theme, SMALL),
                         label("across: along the query", theme, SMALL, color=theme.dim),
                         label("up: toward the story keys", theme, SMALL, color=theme.dim),
                         label("keys taken relative to their average,", theme, SMALL, color=theme.dim),
                         label("which shifts every score alike", theme, SMALL, color=theme.dim))
        explain.arrange(DOWN, aligned_edge=LEFT, buff=0.1)
        panel = VGroup(rows, explain).arrange(DOWN, aligned_edge=LEFT, buff=0.4)
        fit_width(panel, config.frame_width / 2 - 0.3 - (box.get_right()[0] + 0.5))
        panel.next_to(box, RIGHT, buff=0.5)
        products = spoken_list([f"{self.piece(k)} gets {narration.spoken_number(float(qk[k]))}" for k in keys])
        negative = any(qk[k] < 0 and qk[k] > qk.min() for k in keys)
        self.say("The further along the query a key lies, the larger their dot product. "
                 f"Here {products}. Larger products will mean more attention"
                 + (": even a negative product wins some, when the other keys score lower still." if negative else "."))
        self.play(FadeIn(drops), FadeIn(panel), run_time=1.0)
