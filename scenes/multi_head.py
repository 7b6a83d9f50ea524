"""multi-head: many heads in parallel.

Storyboard:
1. every head of the chosen layer side by side, each its real pattern;
2. each head proposes its own change for the story token; the changes are summed (each
   through its slice of W_O) and added to the residual stream: the real size of each;
3. real counts: heads, d_head, parameters per head and per layer; grouped-query models say
   how many key/value heads there are and which query heads share each.
"""

from __future__ import annotations

import math

from manim import DOWN, LEFT, RIGHT, UP, Create, FadeIn, Group, LaggedStart, Rectangle, VGroup, config

from facts import attention as af
from scenes.parts import narration
from scenes.parts.attention_parts import AttentionScene, SignedBars, fit_height, pattern_image
from scenes.parts.components import count, fit_width, label, token_label
from scenes.parts.theme import LABEL, SMALL


def spoken_list(items: list[str]) -> str:
    """“a”, “a and b”, “a, b and c”."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class MultiHead(AttentionScene):
    title_text = "Many heads at once"
    beats = ("beat_all_heads", "beat_contributions", "beat_counts")

    def beat_all_heads(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        L = self.layer
        n_heads = cfg.n_heads
        cols = math.ceil(n_heads / 3) if n_heads > 4 else n_heads
        side = 1.55
        tiles = Group()
        pattern = trace[self.hook("hook_pattern")]
        for h in range(n_heads):
            img = pattern_image(pattern[h].numpy(), theme, side, color=theme.accent)
            name = label(f"head {h}", theme, SMALL, color=theme.text if h == self.head else theme.dim)
            tiles.add(Group(img, name.next_to(img, DOWN, buff=0.08)))
        tiles.arrange_in_grid(cols=cols, buff=(0.35, 0.25))
        fit_height(tiles, self.stage_top() + config.frame_height / 2 - 0.8)
        fit_width(tiles, config.frame_width * 0.62)
        tiles.to_edge(LEFT, buff=0.5).align_to([0, self.stage_top() - 0.1, 0], UP)
        mark = Rectangle(width=tiles[self.head][0].width + 0.12, height=tiles[self.head][0].height + 0.12,
                         stroke_color=theme.accent, stroke_width=4).move_to(tiles[self.head][0])
        legend = VGroup(label(f"layer {L}: {n_heads} heads", theme, LABEL),
                        label("each square: one head's weights", theme, SMALL, color=theme.dim),
                        label("columns: queries, rows: keys", theme, SMALL, color=theme.dim),
                        label("stronger colour = more attention", theme, SMALL, color=theme.dim),
                        label(f"outlined: head {self.head}, the story head", theme, SMALL, color=theme.accent))
        legend.arrange(DOWN, aligned_edge=LEFT, buff=0.12)
        fit_width(legend, config.frame_width / 2 - 0.3 - (tiles.get_right()[0] + 0.5))
        legend.next_to(tiles, RIGHT, buff=0.5).align_to(tiles, UP)
        self.say(f"Layer {L} runs {n_heads} heads side by side. Each has its own queries, keys and values, "
                 "so each draws its own pattern over the same tokens.")
        self.play(LaggedStart(*[FadeIn(t) for t in tiles], lag_ratio=0.1), FadeIn(legend), run_time=2)
        others = [k for k in self.story_keys if k != self.query]
        if others:
            links = f"the one that links {self.piece(self.query)} to {spoken_list([self.piece(k) for k in others])}"
        else:
            links = "the one our story follows"
        self.say(f"Head {self.head}, outlined, is {links}. The other heads look for other things.")
        self.play(Create(mark), run_time=0.6)

    def beat_contributions(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        L, q = self.layer, self.query
        self.clear_stage()
        norms = af.head_norms(trace, L, q)
        items = [(label(f"head {h}", theme, SMALL, color=theme.accent if h == self.head else theme.dim), norms[h],
                  "attn.head_norm", (L, q, h)) for h in range(cfg.n_heads)]
        bars = SignedBars(items, theme, height=2.6, slot=1.1, color=theme.value, decimals=1)
        title = VGroup(label("size of each head's change to", theme, LABEL),
                       token_label(trace.pieces[q], theme, LABEL, color=theme.token_color(q), index=(q,)))
        title.arrange(RIGHT, buff=0.15)
        note = label("length of each head's output: its weighted sum of values, through its slice of W_O", theme, SMALL,
                     color=theme.dim)
        flow = label(f"all {cfg.n_heads} changes are added together, then added to the token's vector", theme, SMALL)
        group = VGroup(title, bars, note, flow).arrange(DOWN, buff=0.35)
        fit_width(group, config.frame_width - 1.0)
        fit_height(group, self.stage_top() + config.frame_height / 2 - 0.9)
        group.next_to([0, self.stage_top(), 0], DOWN, buff=0.15)
        big = max(range(cfg.n_heads), key=lambda h: norms[h])
        self.say(f"Each head proposes its own change for {self.piece(q)}. The bars show how big each change is.")
        self.play(FadeIn(title), FadeIn(bars.baseline), FadeIn(bars.labels), run_time=0.8)
        if big == self.head:
            self.say(f"Head {big}, our story head, proposes the largest change, of length "
                     f"{narration.spoken_number(norms[big])}.")
        else:
            self.say(f"Head {big} proposes the largest change, of length {narration.spoken_number(norms[big])}. "
                     f"Head {self.head}, our story head, proposes one of length "
                     f"{narration.spoken_number(norms[self.head])}.")
        self.play(LaggedStart(*[FadeIn(VGroup(b, v), shift=0.2 * UP) for b, v in zip(bars.bars, bars.values)],
                              lag_ratio=0.08), FadeIn(note), run_time=1.5)
        self.say("All these changes are added together, then added to the token's vector in one step. "
                 "That sum is the change we added in the values scene.")
        self.play(FadeIn(flow), run_time=0.6)

    def beat_counts(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        L = self.layer
        self.clear_stage()
        counts = dict(self.data.parameter_counts["attention"], all_layers=self.data.parameter_counts["attention_all"])

        def line(*parts) -> VGroup:
            return VGroup(*parts).arrange(RIGHT, buff=0.12)

        def param(name: str) -> VGroup:
            return count(counts[name], theme, "attn.params", size=LABEL, index=(L, name))

        rows = VGroup(
            line(count(cfg.n_heads, theme, "config.n_heads", size=LABEL), label("query heads, each", theme, LABEL),
                 count(cfg.d_head, theme, "config.d_head", size=LABEL), label("numbers wide", theme, LABEL)),
            line(label("per query head (W_Q and W_O slices):", theme, LABEL), param("per_query_head"),
                 label("parameters", theme, LABEL)),
        )
        if cfg.n_kv_heads < cfg.n_heads:
            rows.add(line(count(cfg.n_kv_heads, theme, "config.n_kv_heads", size=LABEL),
                          label("key/value heads, each shared by", theme, LABEL),
                          count(cfg.heads_per_kv, theme, "config.heads_per_kv", size=LABEL),
                          label("query heads:", theme, LABEL)))
            for g, members in enumerate(af.sharing(cfg)):
                text = f"    key/value head {g} ← query heads {', '.join(str(h) for h in members)}"
                rows.add(label(text, theme, SMALL, color=theme.accent if self.head in members else theme.dim))
            rows.add(line(label("per key/value head (W_K and W_V):", theme, LABEL), param("per_kv_head"),
                          label("parameters", theme, LABEL)))
        else:
            rows.add(line(label("per head (W_K and W_V slices):", theme, LABEL), param("per_kv_head"),
                          label("parameters", theme, LABEL)))
        rows.add(line(label(f"attention in layer {L}:", theme, LABEL, bold=True), param("layer"),
                      label("parameters", theme, LABEL)))
        rows.add(line(label(f"in all {cfg.n_layers} layers:", theme, LABEL), param("all_layers"),
                      label("parameters", theme, LABEL)))
        rows.arrange(DOWN, aligned_edge=LEFT, buff=0.28)
        fit_width(rows, config.frame_width - 1.2)
        fit_height(rows, self.stage_top() + config.frame_height / 2 - 1.0)
        rows.next_to([0, self.stage_top(), 0], DOWN, buff=0.3)
        rows.set_x(0)
        self.say(f"Each of the {cfg.n_heads} heads works with {cfg.d_head} numbers. "
                 f"Each head's slices of the query and output matrices hold {narration.spoken_count(counts['per_query_head'])} "
                 "parameters.")
        self.play(LaggedStart(*[FadeIn(r, shift=0.2 * RIGHT) for r in rows[:2]], lag_ratio=0.3), run_time=1.2)
        per_kv = narration.spoken_count(counts["per_kv_head"])
        if cfg.n_kv_heads < cfg.n_heads:
            self.say(f"To save memory, {cfg.heads_per_kv} query heads share one set of keys and values. So there are "
                     f"only {cfg.n_kv_heads} key and value heads for {cfg.n_heads} query heads. "
                     f"Each key and value head holds {per_kv} parameters.")
        else:
            self.say(f"Each head's slices of the key and value matrices hold {per_kv} more.")
        self.play(LaggedStart(*[FadeIn(r, shift=0.2 * RIGHT) for r in rows[2:-2]], lag_ratio=0.15), run_time=1.5)
        self.say(f"In layer {L}, attention holds {narration.spoken_count(counts['layer'])} parameters in all. "
                 f"Across all {cfg.n_layers} layers, that makes {narration.spoken_count(counts['all_layers'])}.")
        self.play(LaggedStart(*[FadeIn(r, shift=0.2 * RIGHT) for r in rows[-2:]], lag_ratio=0.3), run_time=1)
