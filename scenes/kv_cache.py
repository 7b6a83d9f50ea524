"""kv-cache: why generation need not be quadratic (beyond the talk).

Storyboard:
1. generating token t+1 reuses the keys and values of tokens 1..t: the cached K/V columns
   and the one new column computed; the real multiply-adds with and without the cache for
   this prompt (counted by torch as the model runs).

The cached computation gives the same logits as the full one: tests/test_model_generate.py.
"""

from __future__ import annotations

from manim import DOWN, LEFT, RIGHT, UP, Brace, FadeIn, GrowFromEdge, Indicate, LaggedStart, Square, VGroup, config

from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import TokenStrip, count, fit_width, label
from scenes.parts.plots import CountBars
from scenes.parts.theme import LABEL, SMALL

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
        layers, heads = narration.spoken_count(cfg.n_layers), narration.spoken_count(cfg.n_kv_heads)
        self.say("To write a text, the model adds one token at a time.")
        self.play(FadeIn(strip), FadeIn(row_names[:2]), run_time=0.8)
        if len(cached_cells):
            self.say("For each new token, attention needs the key and the value of every earlier token.")
            self.play(LaggedStart(*[FadeIn(c) for c in cached_cells], lag_ratio=0.08), FadeIn(gaps), run_time=1.5)
            earlier = "the one earlier token" if n_cached == 1 else f"all {narration.spoken_count(n_cached)} earlier tokens"
            self.say(f"Those never change once computed, so the model keeps them. "
                     f"That is the cache: keys and values for {earlier}, in every layer.")
            self.play(FadeIn(notes[:-2]), run_time=0.8)
        else:
            self.say("With a one-token text, there is nothing earlier to keep yet.")
        self.say(f"Only the newest token, {self.piece(self.new)}, goes through the model. "
                 "It adds one new key and one new value.")
        self.play(GrowFromEdge(new_cells, UP), FadeIn(notes[-2:]), FadeIn(row_names[2]), run_time=1)
        self.say("Its query is then compared with every key in the cache.")
        self.play(Indicate(new_cells, color=theme.accent), run_time=0.8)
        self.say(f"The price is memory. This model keeps {narration.spoken_count(self.counts['cache_per_token'])} "
                 f"numbers for every token: a key and a value in each of its {layers} layers "
                 f"and {heads} key-value {'head' if cfg.n_kv_heads == 1 else 'heads'}.")
        self.play(FadeIn(size), run_time=0.8)
        self.wait(0.5)

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
        n = c["tokens"]
        after = "this single token" if n == 1 else f"these {narration.spoken_count(n)} tokens"
        self.say(f"How much work does the cache save? Take the next token after {after}. "
                 "These counts were measured while the model ran.")
        self.play(FadeIn(head), FadeIn(sub), run_time=0.8)
        self.say(f"Recomputing everything costs {narration.spoken_count(c['full'])} multiply-adds.")
        self.play(GrowFromEdge(rows[0][1], LEFT), FadeIn(rows[0][0]), FadeIn(rows[0][2]), run_time=1)
        if n > 1:
            self.say(f"With the cache, it costs {narration.spoken_count(c['cached'])}: "
                     f"{'' if abs(c['ratio'] - round(c['ratio'])) < 0.01 else 'about '}"
                     f"{narration.spoken_number(c['ratio'])} times less.")
        else:
            self.say("With a single token, nothing is cached yet, so both ways cost the same.")
        self.play(GrowFromEdge(rows[1][1], LEFT), FadeIn(rows[1][0]), FadeIn(rows[1][2]), run_time=1)
        if n > 1:
            self.say("Without a cache, every new token would redo the work of all the tokens before it.")
        self.wait(0.5)
