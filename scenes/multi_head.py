"""multi-head: many heads in parallel.

Storyboard:
1. every head of the chosen layer side by side, each its real pattern, labelled by what it does
   on this prompt, measured (previous token, first token, itself, broad, by content), with the
   score that decided it and "weak" when it only leans that way; how many heads do what; what
   the story head does;
2. each head proposes its own change for the story token; the changes are summed (each
   through its slice of W_O) and added to the residual stream: the real size of each;
3. real counts: heads, d_head, parameters per head and per layer; grouped-query models say
   how many key/value heads there are and which query heads share each.
"""

from __future__ import annotations

import math

from manim import DOWN, LEFT, RIGHT, UP, Create, FadeIn, Group, LaggedStart, Rectangle, VGroup, config

from facts import attention as af
from facts import meaning as meaning_mod
from scenes.parts import narration
from scenes.parts.attention_parts import AttentionScene, SignedBars, fit_height, pattern_image
from scenes.parts.components import count, fit_width, label, token_label
from scenes.parts.provenance import Shown
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
        behaviours = self.data.head_behaviours  # measured on this prompt: facts.meaning.head_behaviours
        cols = n_heads if n_heads <= 5 else math.ceil(n_heads / (2 if n_heads <= 10 else 3))
        side = 2.2
        pattern = trace[self.hook("hook_pattern")]
        tiles, self.behaviour_labels = Group(), {}
        for h in range(n_heads):
            img = pattern_image(pattern[h].numpy(), theme, side, color=theme.accent)
            name = label(f"head {h}", theme, SMALL, color=theme.text if h == self.head else theme.dim,
                         bold=h == self.head)
            self.behaviour_labels[h] = self.behaviour_tag(behaviours[h], L, side + 0.2)
            tiles.add(Group(img, name.next_to(img, DOWN, buff=0.08)))
        shrink = min(1.0, *[(side + 0.2) / t.width for t in self.behaviour_labels.values()])  # one size for all
        for h, tile in enumerate(tiles):
            tag = self.behaviour_labels[h].scale(shrink)
            tile.add(tag.next_to(tile[1], DOWN, buff=0.06))
        cell_w, cell_h = max(t.width for t in tiles) + 0.3, max(t.height for t in tiles) + 0.3
        for h, tile in enumerate(tiles):  # each image's top on its row's line, centred in its column
            tile.shift([(h % cols) * cell_w - tile[0].get_x(), -(h // cols) * cell_h - tile[0].get_top()[1], 0])
        top, bottom = self.stage_top() - 0.1, -config.frame_height / 2 + 1.0
        legend = self.behaviour_legend(behaviours, L)
        read, tally = legend
        fit_height(tiles, top - bottom)
        fit_width(tiles, config.frame_width - 1.0 - min(read.width, 3.4) - 0.5)
        tiles.to_edge(LEFT, buff=0.5).align_to([0, top, 0], UP)
        right = config.frame_width / 2 - 0.4 - (tiles.get_right()[0] + 0.5)
        fit_width(read, right)
        read.next_to(tiles, RIGHT, buff=0.5).align_to(tiles, UP)
        below = tiles.get_bottom()[1] - 0.3 - bottom
        if below >= tally.height * 0.8:  # room under the tiles: the tally there, at a readable size
            fit_height(fit_width(tally, config.frame_width - 1.0), below)
            tally.next_to(tiles, DOWN, buff=0.3).align_to(tiles, LEFT)
        else:
            fit_width(tally, right)
            fit_height(tally, read.get_bottom()[1] - 0.35 - bottom)
            tally.next_to(read, DOWN, buff=0.35).align_to(read, LEFT)
        mark = Rectangle(width=tiles[self.head][0].width + 0.12, height=tiles[self.head][0].height + 0.12,
                         stroke_color=theme.accent, stroke_width=4).move_to(tiles[self.head][0])
        if cfg.n_kv_heads == 1 < n_heads:
            own = ("Each asks its own queries of one shared set of keys, so each draws its own pattern "
                   "over the same tokens.")
        else:
            own = "Each has its own queries, keys and values, so each draws its own pattern over the same tokens."
        self.say(f"Layer {L} runs {n_heads} heads side by side. {own}")
        self.play(LaggedStart(*[FadeIn(t[:2]) for t in tiles], lag_ratio=0.1), FadeIn(legend[0]), run_time=2)
        self.say(self.tally_text(behaviours))
        self.play(LaggedStart(*[FadeIn(t[2]) for t in tiles], lag_ratio=0.08), FadeIn(legend[1:]), run_time=1.5)
        others = [k for k in self.story_keys if k != self.query]
        if others:
            links = f"the one that links {self.piece(self.query)} to {spoken_list([self.piece(k) for k in others])}"
        else:
            links = "the one our story follows"
        self.say(f"Head {self.head}, outlined, is {links}. " + self.story_head_text(behaviours[self.head]))
        self.play(Create(mark), run_time=0.6)

    # ---- what each head does, measured on this prompt
    NAMES = {"previous": ("previous token", "previous"), "first": ("first token", "first"),
             "self": ("itself", "self"), "broad": ("broad", "broad"), "content": ("by content", "content")}

    def behaviour_tag(self, b: dict, layer: int, width: float) -> VGroup:
        """Under a head's tile: what it does, the score that decided it, and "weak" when it only
        leans that way. Measured first: the long name, then the short one, then shrunk to fit."""
        theme, weak = self.theme, b["strength"] == "weak"
        color = theme.dim if weak else theme.text
        value = float(b["score"])
        text = f"{value:.2f}"
        score = label(text, theme, SMALL, color=color, mono=True,
                      shown=Shown(text, value, "attn.behaviour", (layer, b["head"]), kind="decimals", decimals=2))
        second = VGroup(score, *([label("weak", theme, SMALL * 0.85, color=theme.dim)] if weak else []))
        second.arrange(RIGHT, buff=0.1, aligned_edge=DOWN)
        for name in self.NAMES[b["label"]]:
            first = label(name, theme, SMALL, color=color)
            if first.width <= width:
                break
        tag = VGroup(first, second).arrange(DOWN, buff=0.06)
        tag.behaviour = (b["label"], b["strength"])
        return tag

    def behaviour_legend(self, behaviours: list[dict], layer: int) -> VGroup:
        """Right of the tiles: how to read a tile, then how many heads of the layer do what."""
        theme = self.theme
        read = VGroup(label(f"layer {layer}: {len(behaviours)} heads", theme, LABEL),
                      label("each square: one head's weights", theme, SMALL, color=theme.dim),
                      label("columns: queries, rows: keys", theme, SMALL, color=theme.dim),
                      label("stronger colour = more attention", theme, SMALL, color=theme.dim),
                      label(f"outlined: head {self.head}, the story head", theme, SMALL, color=theme.accent))
        read.arrange(DOWN, aligned_edge=LEFT, buff=0.12)
        rows = VGroup(label("what the heads do here:", theme, SMALL))
        for name in ("previous", "first", "self", "broad", "content"):
            n = sum(1 for b in behaviours if b["label"] == name)
            if n:
                rows.add(VGroup(count(n, theme, "attn.behaviour_count", size=SMALL, index=(layer, name)),
                                label(self.NAMES[name][0], theme, SMALL, color=theme.dim)).arrange(RIGHT, buff=0.15))
        broad = any(b["label"] == "broad" for b in behaviours)
        for line in ("score: its mean weight there", *(["(broad: spread, 0 to 1)"] if broad else []),
                     f"weak: under {meaning_mod.STRONG:.1f}, a lean"):
            rows.add(label(line, theme, SMALL * 0.9, color=theme.dim))
        rows.arrange(DOWN, aligned_edge=LEFT, buff=0.1)
        return VGroup(read, rows)

    def tally_text(self, behaviours: list[dict]) -> str:
        n = len(behaviours)
        if len(self.trace.tokens) < 2:
            return ("With a single token, every head can only look at that token. "
                    "There is nothing yet to tell the heads apart.")
        verbs = {  # (one head, several heads)
            "previous": ("looks at the token just before", "look at the token just before"),
            "first": ("looks at the first token", "look at the first token"),
            "self": ("looks at its own token", "look at their own token"),
            "broad": ("spreads its attention widely", "spread their attention widely"),
            "content": ("picks tokens by what they are, not where", "pick tokens by what they are, not where")}
        parts = []
        for name in sorted(verbs, key=lambda k: -sum(b["label"] == k for b in behaviours)):
            m = sum(b["label"] == name for b in behaviours)
            if m:
                parts.append(f"one {verbs[name][0]}" if m == 1 else f"{m} {verbs[name][1]}")
        weak = sum(b["strength"] == "weak" for b in behaviours)
        tail = (f" {weak} of these labels are weak: those heads only lean that way." if weak > 1 else
                " One label is weak: that head only leans that way." if weak == 1 else "")
        return f"On this prompt, of the {n} heads, {spoken_list(parts)}.{tail}"

    def story_head_text(self, b: dict) -> str:
        if len(self.trace.tokens) < 2:
            return ""
        pct = narration.spoken_percent(b["score"])
        said = {"previous": f"On average it gives the token just before {pct} of its attention",
                "first": f"On average it gives the first token {pct} of its attention",
                "self": f"On average it gives its own token {pct} of its attention",
                "broad": f"It spreads its attention widely: {pct} of the widest spread possible",
                "content": f"It picks tokens by content: its strongest other key gets {pct} on average"}[b["label"]]
        verdict = " That is a weak lean, not a rule." if b["strength"] == "weak" else ""
        return f"{said}.{verdict}"

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
        flow = label(f"all {cfg.n_heads} changes are added together, "
                     + ("normalised once more, " if cfg.post_norms else "") + "then added to the token's vector",
                     theme, SMALL)
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
        if cfg.post_norms:
            rms = float(trace[f"blocks.{L}.ln1_post.hook_scale"][q].reshape(-1)[0])
            self.say("All these changes are added together. In this model the sum then passes through one more norm: "
                     f"divided by its root mean square, here {narration.spoken_number(rms)}, and multiplied by a "
                     "learned weight. That is the change we added in the values scene.")
        else:
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
        if cfg.n_kv_heads == 1 < cfg.n_heads:  # one key/value head for every query head
            rows.add(line(count(cfg.n_kv_heads, theme, "config.n_kv_heads", size=LABEL),
                          label("key/value head, shared by all", theme, LABEL),
                          count(cfg.heads_per_kv, theme, "config.heads_per_kv", size=LABEL),
                          label("query heads:", theme, LABEL)))
        elif cfg.n_kv_heads < cfg.n_heads:
            rows.add(line(count(cfg.n_kv_heads, theme, "config.n_kv_heads", size=LABEL),
                          label("key/value heads, each shared by", theme, LABEL),
                          count(cfg.heads_per_kv, theme, "config.heads_per_kv", size=LABEL),
                          label("query heads:", theme, LABEL)))
        if cfg.n_kv_heads < cfg.n_heads:
            for g, members in enumerate(af.sharing(cfg)):
                text = f"    key/value head {g} ← query heads {', '.join(str(h) for h in members)}"
                rows.add(label(text, theme, SMALL, color=theme.accent if self.head in members else theme.dim))
            rows.add(line(label("per key/value head (W_K and W_V):", theme, LABEL), param("per_kv_head"),
                          label("parameters", theme, LABEL)))
        else:
            rows.add(line(label("per head (W_K and W_V slices):", theme, LABEL), param("per_kv_head"),
                          label("parameters", theme, LABEL)))
        if counts.get("qk_norms"):
            rows.add(line(label("query and key norms' weights:", theme, LABEL), param("qk_norms"),
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
        if cfg.n_kv_heads == 1 < cfg.n_heads:
            self.say(f"To save memory, all {cfg.n_heads} query heads share one single set of keys and values: "
                     "each head asks its own question, of the same keys, and mixes the same values. "
                     f"That one key and value head holds {per_kv} parameters.")
        elif cfg.n_kv_heads < cfg.n_heads:
            self.say(f"To save memory, {cfg.heads_per_kv} query heads share one set of keys and values. So there are "
                     f"only {cfg.n_kv_heads} key and value heads for {cfg.n_heads} query heads. "
                     f"Each key and value head holds {per_kv} parameters.")
        else:
            self.say(f"Each head's slices of the key and value matrices hold {per_kv} more.")
        self.play(LaggedStart(*[FadeIn(r, shift=0.2 * RIGHT) for r in rows[2:-2]], lag_ratio=0.15), run_time=1.5)
        norms = (f"With the small weights of the query and key norms, layer {L}'s attention holds "
                 if counts.get("qk_norms") else f"In layer {L}, attention holds ")
        self.say(f"{norms}{narration.spoken_count(counts['layer'])} parameters in all. "
                 f"Across all {cfg.n_layers} layers, that makes {narration.spoken_count(counts['all_layers'])}.")
        self.play(LaggedStart(*[FadeIn(r, shift=0.2 * RIGHT) for r in rows[-2:]], lag_ratio=0.3), run_time=1)
