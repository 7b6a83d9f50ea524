"""kv-cache: why generation need not be quadratic (beyond the talk).

Storyboard:
1. generating token t+1 reuses the keys and values of tokens 1..t: the cached K/V columns
   and the one new column computed; the real multiply-adds with and without the cache for
   this prompt (counted by torch as the model runs).

The cached computation gives the same logits as the full one: tests/test_model_generate.py.
"""

from __future__ import annotations

from manim import DOWN, LEFT, RIGHT, UP, Brace, FadeIn, GrowFromEdge, Indicate, LaggedStart, Square, VGroup, config

from scenes.parts.base import TransformerScene
from scenes.parts.components import TokenStrip, count, fit_width, label
from scenes.parts.plots import CountBars
from scenes.parts.theme import LABEL, SMALL, fmt_int

CELL = 0.42


class KvCache(TransformerScene):
    title_text = "Generating without starting over"
    beats = ("beat_cache", "beat_counts")

    def setup(self):
        super().setup()
        self.counts = self.data.kv_counts
        self.new = len(self.trace.tokens) - 1  # the token whose step is counted: everything before it is cached

    def beat_cache(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        strip = TokenStrip(trace.pieces, trace.tokens, theme, focus=[self.new], max_width=config.frame_width - 2.0,
                           size=LABEL * 0.85)
        strip.move_to(UP * 1.6).set_x(0.7)
        keys, values, gaps = VGroup(), VGroup(), VGroup()
        cached_cells, new_cells = VGroup(), VGroup()
        for cell in strip.row:
            x = cell.get_x()
            pos = next((p for p, b in strip.boxes.items() if b is cell), None)
            if pos is None:
                gaps.add(label("…", theme, LABEL, color=theme.dim).move_to([x, strip.get_bottom()[1] - 0.9, 0]))
                continue
            fresh = pos == self.new
            k = Square(CELL, stroke_color=theme.key, stroke_width=2.5, fill_color=theme.key, fill_opacity=0.85 if fresh else 0.25)
            v = Square(CELL, stroke_color=theme.value, stroke_width=2.5, fill_color=theme.value, fill_opacity=0.85 if fresh else 0.25)
            k.move_to([x, strip.get_bottom()[1] - 0.55, 0])
            v.next_to(k, DOWN, buff=0.15)
            keys.add(k)
            values.add(v)
            (new_cells if fresh else cached_cells).add(VGroup(k, v))
        query = Square(CELL, stroke_color=theme.query, stroke_width=2.5, fill_color=theme.query, fill_opacity=0.85)
        query.next_to(strip.boxes[self.new], UP, buff=0.15)
        new_cells.add(query)
        row_names = VGroup(label("keys", theme, SMALL, color=theme.key), label("values", theme, SMALL, color=theme.value),
                           label("query", theme, SMALL, color=theme.query))
        row_names[0].next_to(keys, LEFT, buff=0.3)
        row_names[1].next_to(values, LEFT, buff=0.3).align_to(row_names[0], RIGHT)
        row_names[2].next_to(query, LEFT, buff=0.2)
        n_cached = len(trace.tokens) - 1
        notes = VGroup()
        if len(cached_cells):
            brace = Brace(VGroup(cached_cells, gaps), DOWN, color=theme.dim)
            note = VGroup(label("cached:", theme, SMALL, color=theme.dim), count(n_cached, theme, "count.tokens - 1", size=SMALL),
                          label("earlier tokens, computed once and kept", theme, SMALL, color=theme.dim)).arrange(RIGHT, buff=0.1)
            note.next_to(brace, DOWN, buff=0.1)
            notes.add(brace, note)
        new_brace = Brace(new_cells[:-1], DOWN, color=theme.accent)
        new_note = label("new", theme, SMALL, color=theme.accent).next_to(new_brace, DOWN, buff=0.1)
        notes.add(new_brace, new_note)
        size = VGroup(label("the cache holds", theme, SMALL, color=theme.dim),
                      count(self.counts["cache_per_token"], theme, "kv.per_token", size=SMALL),
                      label(f"numbers per token ({cfg.n_layers} layers × {cfg.n_kv_heads} key/value heads × "
                            f"{cfg.d_head} × 2)", theme, SMALL, color=theme.dim)).arrange(RIGHT, buff=0.1)
        fit_width(size, config.frame_width - 1.0)
        group = VGroup(strip, keys, values, gaps, row_names, notes)
        fit_width(group, config.frame_width - 0.6)
        size.next_to(group, DOWN, buff=0.6).set_x(0)
        piece = trace.pieces[self.new]
        self.say("To write token after token, the model runs once per new token. Attention needs every earlier "
                     "token's key and value.")
        self.play(FadeIn(strip), FadeIn(row_names[:2]), run_time=0.8)
        if len(cached_cells):
            self.play(LaggedStart(*[FadeIn(c) for c in cached_cells], lag_ratio=0.08), FadeIn(gaps), run_time=1.5)
            self.say(f"Those never change once computed, so they are kept: {n_cached} tokens' keys and values in every layer.")
            self.play(FadeIn(notes[:-2]), run_time=0.8)
        else:
            self.say("With a one-token text there is nothing earlier to keep yet.")
            self.wait(1)
        self.say(f"Only the newest token, {piece!r}, goes through the model: one new key and value column; "
                     "its query reads all the cached keys.")
        self.play(GrowFromEdge(new_cells, UP), FadeIn(notes[-2:]), FadeIn(row_names[2]), run_time=1)
        self.play(Indicate(new_cells, color=theme.accent), run_time=0.8)
        self.say(f"The price is memory: {fmt_int(self.counts['cache_per_token'])} numbers per token for {cfg.name}.")
        self.play(FadeIn(size), run_time=0.8)
        self.wait(1.5)

    def beat_counts(self):
        theme, c = self.theme, self.counts
        self.clear_stage()
        head = VGroup(label("multiply-adds for the next token after these", theme, LABEL),
                      count(c["tokens"], theme, "count.tokens", size=LABEL), label("tokens", theme, LABEL)).arrange(RIGHT, buff=0.12)
        sub = label("counted by torch while the model ran", theme, SMALL, color=theme.dim)
        rows = CountBars([("recompute everything", c["full"], "kv.full", theme.negative),
                          ("with the KV cache", c["cached"], "kv.cached", theme.key)], theme, width=7.5, bar_height=0.5,
                         spacing=0.9).lines
        name_w = max(r[0].width for r in rows)
        panel = VGroup(head, sub, rows).arrange(DOWN, buff=0.45)
        rows.shift(RIGHT * name_w / 2)
        fit_width(panel, config.frame_width - 0.8)
        panel.move_to(DOWN * 0.2)
        self.say(f"How much work is that? For the next token after these {c['tokens']} tokens, recomputing everything "
                     f"costs {fmt_int(c['full'])} multiply-adds.")
        self.play(FadeIn(head), FadeIn(sub), run_time=0.8)
        self.play(GrowFromEdge(rows[0][1], LEFT), FadeIn(rows[0][0]), FadeIn(rows[0][2]), run_time=1)
        if c["tokens"] > 1:
            self.say(f"With the cache: {fmt_int(c['cached'])}, about {c['ratio']:.0f} times less. Without it, every new token "
                         "would redo the work of all the tokens before it.")
        else:
            self.say("With a single token there is nothing cached yet: both ways cost the same.")
        self.play(GrowFromEdge(rows[1][1], LEFT), FadeIn(rows[1][0]), FadeIn(rows[1][2]), run_time=1)
        self.wait(2.5)
