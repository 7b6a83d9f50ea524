"""embeddings: tokens become vectors.

Storyboard:
1. a token id picks a row of the embedding matrix W_E (real shape); the row comes out as a
   column vector of real numbers ("576 numbers");
2. every token gets its vector;
3. position: learned models add a position vector; rotary models turn queries and keys
   later (one real 2-D pair shown before and after its turn);
4. the nearest neighbours of one prompt token in embedding space (cosine, real top 5).
"""

from __future__ import annotations

import math

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, Angle, Arrow, Circle, DashedLine, Dot, FadeIn, FadeOut, GrowArrow, Line,
                   LaggedStart, ReplacementTransform, TransformFromCopy, VGroup, Write, config)

from facts.attention import rope_pair
from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import (ProbabilityBars, TokenStrip, VectorColumn, WeightMatrix, count, fit_height,
                               fit_width, label, number, token_label)
from scenes.parts.theme import BODY, LABEL, SMALL

COLUMN_WIDTH = 1.35  # room per token in the row of vectors


def and_list(items: list[str]) -> str:
    """“a”, “a and b”, “a, b and c”; byte pieces (no readable name) counted together."""
    byte = narration.spoken_token("<0x00>")
    raw = items.count(byte)
    items = [i for i in items if i != byte] + ([] if not raw else [byte] if raw == 1 else [f"{raw} byte pieces"])
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def plus(x: float) -> str:
    """A term added to a spoken sum: "plus 0.05" or "minus 0.05"."""
    return f"{'minus' if x < 0 else 'plus'} {narration.spoken_number(abs(x))}"


class Embeddings(TransformerScene):
    title_text = "Tokens become vectors"
    beats = ("beat_lookup", "beat_all_tokens", "beat_position", "beat_neighbours")

    @property
    def focus(self) -> int:
        return self.data.focus

    def beat_lookup(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        pos = self.focus
        tid = trace.tokens[pos]
        corner = self.data.embedding_corner
        ids = sorted(set(corner["rows"]) | {tid})
        rows, cols = [], corner["cols"][:3] + [None] + corner["cols"][3:]
        highlight = None
        for k, i in enumerate(ids):
            if k > 0 and i > ids[k - 1] + 1:
                rows.append(None)
            if i == tid and self.scaled:  # the stored row: the scale comes after, as its own step
                highlight = len(rows)
                rows.append((i, [self.data.focus_embedding_row[c] for c in corner["cols"]], "embed.W_E", (i,)))
            elif i == tid:
                highlight = len(rows)
                values = [float(trace["hook_embed"][pos, c]) for c in corner["cols"]]
                rows.append((i, values, "hook_embed", (pos,)))
            else:
                values = corner["values"][corner["rows"].index(i)]
                rows.append((i, values, "embed.W_E", (i,)))
        matrix = WeightMatrix("W_E", (cfg.vocab_size, cfg.d_model), rows, cols, theme, scale=0.1,
                              highlight=highlight, highlight_color=theme.token_color(pos))
        fit_height(matrix, self.stage_top() + config.frame_height / 2 - 0.9)
        matrix.move_to(LEFT * 1.2 + DOWN * 0.2)
        chain = None
        if self.scaled:  # the stored row, the scale, the token's vector: all right of the matrix
            chain = self.scale_chain()
            chain.next_to(matrix, RIGHT, buff=0.5)
            both = VGroup(matrix, chain)
            fit_width(both, config.frame_width - 2.4)  # room on the left for the token
            both.move_to([1.0, matrix.get_y(), 0])
        row_axis = label("row = token id", theme, SMALL, color=theme.dim)
        row_axis.next_to(matrix.row_labels, UP, buff=0.25).align_to(matrix.row_labels, RIGHT)
        token = TokenStrip(trace.pieces, trace.tokens, theme, positions=[pos])
        token.to_edge(LEFT, buff=0.3).set_y(matrix.row_label_of[highlight].get_y())
        pointer = Arrow(token.get_right(), matrix.row_label_of[highlight].get_left(),
                        buff=0.1, color=theme.token_color(pos), stroke_width=3, max_tip_length_to_length_ratio=0.2)
        vocab = narration.spoken_count(cfg.vocab_size)
        self.say(f"The model keeps one learned row of numbers for each of its {vocab} tokens. "
                 f"Together they make the embedding matrix: {vocab} rows of {cfg.d_model} numbers.")
        self.play(FadeIn(matrix), FadeIn(row_axis), run_time=1.5)
        self.say(f"Our token, {self.piece(pos)}, is token number {tid}. So it takes row {tid}.")
        self.play(FadeIn(token), run_time=0.8)
        self.play(GrowArrow(pointer), run_time=0.6)
        if chain is not None:
            self.scaled_lookup(matrix, highlight, chain)
            return
        column = VectorColumn(trace["hook_embed"][pos].numpy(), theme, "hook_embed", (pos,), head=4, tail=2,
                              scale=0.1, color=theme.token_color(pos))
        column.next_to(matrix, RIGHT, buff=0.9)
        first, second = (float(trace["hook_embed"][pos, i]) for i in (0, 1))
        self.say(f"That row becomes the token's vector: {cfg.d_model} numbers. "
                 f"It starts with {narration.spoken_number(first)}, then {narration.spoken_number(second)}.")
        self.play(TransformFromCopy(matrix.rows[highlight], column.body), FadeIn(column.left), FadeIn(column.right),
                  run_time=1.5)
        self.play(FadeIn(column.length_label), run_time=0.6)

    @property
    def scaled(self) -> bool:
        """Does this model multiply the embedding row by a fixed scale (Gemma: sqrt(d_model))?"""
        return self.trace.config.embed_scale != 1.0

    def scale_chain(self) -> VGroup:
        """stored row × scale = the token's vector (drawn right of W_E when the model scales its rows)."""
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        pos = self.focus
        stored = VectorColumn(np.array(self.data.focus_embedding_row), theme, "embed.W_E", (trace.tokens[pos],),
                              head=4, tail=2, scale=0.1 / cfg.embed_scale, color=theme.dim)
        times = VGroup(label("×", theme, BODY), number(cfg.embed_scale, theme, "config.embed_scale", (), scale=10))
        times.arrange(RIGHT, buff=0.12)
        root = math.isclose(cfg.embed_scale, math.sqrt(cfg.d_model), rel_tol=1e-3)
        why = label(f"= √{cfg.d_model}" if root else "a fixed scale", theme, SMALL, color=theme.dim)
        factor = VGroup(times, why).arrange(DOWN, buff=0.12)
        column = VectorColumn(trace["hook_embed"][pos].numpy(), theme, "hook_embed", (pos,), head=4, tail=2,
                              scale=0.1, color=theme.token_color(pos))
        chain = VGroup(stored, factor, label("=", theme, BODY), column).arrange(RIGHT, buff=0.3)
        stored.length_label.align_to(column.length_label, DOWN)
        return chain

    def scaled_lookup(self, matrix, highlight: int, chain: VGroup) -> None:
        """The stored row, then the model's fixed scale: row times sqrt(d_model) is the token's vector."""
        trace, cfg = self.trace, self.trace.config
        pos = self.focus
        stored, factor, equals, column = chain
        row = self.data.focus_embedding_row
        first, second = (float(trace["hook_embed"][pos, i]) for i in (0, 1))
        root = math.isclose(cfg.embed_scale, math.sqrt(cfg.d_model), rel_tol=1e-3)
        factor_said = (f"the square root of {cfg.d_model}, about {narration.spoken_number(cfg.embed_scale)}"
                       if root else narration.spoken_number(cfg.embed_scale))
        self.say(f"The row itself holds small numbers: it starts with {narration.spoken_number(row[0])}, "
                 f"then {narration.spoken_number(row[1])}.")
        self.play(TransformFromCopy(matrix.rows[highlight], stored.body), FadeIn(stored.left), FadeIn(stored.right),
                  run_time=1.5)
        self.say(f"This model then multiplies every entry by one fixed number: {factor_said}. "
                 f"The scaled row is the token's vector: {cfg.d_model} numbers, "
                 f"starting with {narration.spoken_number(first)}, then {narration.spoken_number(second)}.")
        self.play(FadeIn(factor), run_time=0.8)
        self.play(FadeIn(equals), TransformFromCopy(stored.body, column.body), FadeIn(column.left),
                  FadeIn(column.right), run_time=1.5)
        self.play(FadeIn(stored.length_label), FadeIn(column.length_label), run_time=0.6)

    def window(self) -> list[int | None]:
        """Token positions for the row of vectors: all if they fit, else the focus and its neighbours."""
        n = len(self.trace.tokens)
        room = int((config.frame_width - 0.6) // COLUMN_WIDTH)
        strip = TokenStrip(self.trace.pieces, self.trace.tokens, self.theme, focus=[self.focus],
                           max_width=room * 1.35)  # only its window is used
        keep = [p for p in strip.window if p is not None]
        while True:
            window: list[int | None] = []
            for k, p in enumerate(keep):  # an ellipsis wherever tokens are left out
                if (k == 0 and p > 0) or (k > 0 and p > keep[k - 1] + 1):
                    window.append(None)
                window.append(p)
            if keep[-1] < n - 1:
                window.append(None)
            if len(window) <= room or len(keep) == 1:
                break
            keep.remove(max((p for p in keep if p != self.focus), key=lambda p: abs(p - self.focus)))
        return window if n else []

    def beat_all_tokens(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage()
        window = self.window()
        strip = TokenStrip(trace.pieces, trace.tokens, theme, positions=window, size=SMALL * 0.85)
        columns = VGroup()
        for k, pos in enumerate(window):
            if pos is None:
                col = label("…", theme, LABEL, color=theme.dim)
            else:
                col = VectorColumn(trace["hook_embed"][pos].numpy(), theme, "hook_embed", (pos,), head=3, tail=2,
                                   scale=0.1, size=SMALL * 0.85, color=theme.token_color(pos), show_length=False)
            col.move_to([k * COLUMN_WIDTH, 0, 0])
            columns.add(col)
        columns.move_to(DOWN * 0.4)
        for k, pos in enumerate(window):  # put each token above its column
            cell = strip.boxes.get(pos) if pos is not None else None
            if cell is not None:
                fit_width(cell, COLUMN_WIDTH - 0.08)
                cell.next_to(columns[k], UP, buff=0.35)
        strip.row.remove(*[m for m in strip.row if m not in strip.boxes.values()])  # the columns show the gaps
        total = VGroup(count(len(trace.tokens), theme, "count.tokens", size=LABEL), label("tokens ×", theme, LABEL),
                       count(cfg.d_model, theme, "config.d_model", size=LABEL), label("numbers", theme, LABEL))
        total.arrange(RIGHT, buff=0.12).next_to(columns, DOWN, buff=0.5)
        group = VGroup(strip, columns, total)
        fit_width(group, config.frame_width - 0.6)
        n = len(trace.tokens)
        self.say("Every token is looked up the same way.")
        self.play(FadeIn(strip), run_time=0.8)
        if n == 1:
            self.say(f"Our one token becomes one column of {cfg.d_model} numbers.")
        else:
            self.say(f"{narration.spoken_count(n)} tokens become {narration.spoken_count(n)} columns "
                     f"of {cfg.d_model} numbers each.")
        self.play(LaggedStart(*[FadeIn(c, shift=0.3 * DOWN) for c in columns], lag_ratio=0.1), run_time=2)
        self.play(FadeIn(total), run_time=0.6)
        same = [p for p in range(n) if trace.tokens[p] == trace.tokens[self.focus] and p != self.focus]
        times = "twice" if len(same) == 1 else f"{len(same) + 1} times"
        self.say("So far, a token's vector knows nothing of its neighbours. The same token always gets the same column."
                 + (f" Here {self.piece(self.focus)} appears {times}, with the same column each time." if same else ""))
        self.columns = columns

    def beat_position(self):
        if self.trace.config.positional == "learned":
            self.learned_position()
        else:
            self.rotary_position()

    def learned_position(self):
        trace, theme = self.trace, self.theme
        self.clear_stage()
        pos = self.focus
        parts = [("token", "hook_embed"), ("position", "hook_pos_embed"), ("input to layer 0", "blocks.0.hook_resid_pre")]
        cols = []
        for title, name in parts:
            col = VectorColumn(trace[name][pos].numpy(), theme, name, (pos,), head=4, tail=2, scale=0.1)
            cap = label(title, theme, SMALL, color=theme.dim).next_to(col, UP, buff=0.2)
            cols.append(VGroup(cap, col))
        row = VGroup(cols[0], label("+", theme, BODY), cols[1], label("=", theme, BODY), cols[2]).arrange(RIGHT, buff=0.5)
        row.move_to(DOWN * 0.2)
        self.say(f"Take the vector of {self.piece(pos)}, at position {pos}.")
        self.play(FadeIn(cols[0]), run_time=0.8)
        self.say(f"This model also learned one vector for each position. Position {pos}'s vector is added to it.")
        self.play(FadeIn(row[1]), FadeIn(cols[1]), run_time=1)
        e, p = float(trace["hook_embed"][pos, 0]), float(trace["hook_pos_embed"][pos, 0])
        total = float(trace["blocks.0.hook_resid_pre"][pos, 0])
        self.say(f"The sum is what the first layer reads. Its first entry: {narration.spoken_number(e)} {plus(p)} "
                 f"makes {narration.spoken_number(total)}.")
        self.play(FadeIn(row[3]), FadeIn(cols[2]), run_time=1)

    def rotary_position(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage()
        pos = self.focus
        choice = self.data.choice
        pair = rope_pair(trace, choice.layer, choice.head, pos)
        note = VGroup(label(f"{cfg.name} adds no position vector here.", theme, BODY),
                      label("Position enters inside attention: each query and key", theme, LABEL, color=theme.dim),
                      label("is turned, pair by pair, by an angle that grows with position.", theme, LABEL,
                            color=theme.dim)).arrange(DOWN, aligned_edge=LEFT, buff=0.15)
        fit_width(note, config.frame_width - 1)
        note.next_to([0, self.stage_top(), 0], DOWN, buff=0.25)
        self.say("This model adds no vector for position. Position enters later, inside attention. "
                 "Each query and key is turned, pair by pair, by an angle that grows with position.")
        self.play(FadeIn(note), run_time=1)

        before, after = np.array(pair["before"]), np.array(pair["after"])
        radius = 2.0
        big = max(np.linalg.norm(before), 1e-6)
        origin = np.array([-2.6, -1.55, 0])
        to_point = lambda v: origin + np.array([v[0], v[1], 0]) * radius / big
        axes = VGroup(Line(origin + LEFT * 2.3, origin + RIGHT * 2.3, color=theme.faint),
                      Line(origin + DOWN * 2.2, origin + UP * 2.2, color=theme.faint))
        circle = Circle(radius=radius, color=theme.faint, stroke_width=1.5).move_to(origin)
        a1 = Arrow(origin, to_point(before), buff=0, color=theme.dim, stroke_width=5)
        a2 = Arrow(origin, to_point(after), buff=0, color=theme.query, stroke_width=5)
        i, head = pair["pair"], choice.head
        src_b, src_a = pair["before_hook"], f"blocks.{choice.layer}.attn.hook_rot_q"
        # a layer with its own rotary base (a sliding-window layer) gets its own source: its angles differ
        angle_src = "rope.angle" if pair["base"] == cfg.rope_base else "rope.angle.local"
        lines = VGroup(
            label(f"{'normed ' if cfg.qk_norm else ''}query of {trace.pieces[pos]!r}, layer {choice.layer} head {head}",
                  theme, LABEL),
            label(f"entries {2 * i} and {2 * i + 1} of {cfg.d_head}:", theme, SMALL, color=theme.dim),
            VGroup(label("before", theme, SMALL, color=theme.dim),
                   number(before[0], theme, src_b, (pos, head, 2 * i), scale=3),
                   number(before[1], theme, src_b, (pos, head, 2 * i + 1), scale=3)).arrange(RIGHT, buff=0.2),
            VGroup(label("after  ", theme, SMALL, color=theme.query),
                   number(after[0], theme, src_a, (pos, head, 2 * i), scale=3),
                   number(after[1], theme, src_a, (pos, head, 2 * i + 1), scale=3)).arrange(RIGHT, buff=0.2),
            VGroup(label(f"position {pos}: turned by", theme, SMALL),
                   number(pair["angle"], theme, angle_src, (pos, i), scale=10),
                   label(f"radians ({math.degrees(pair['angle']) % 360:.0f}°)", theme, SMALL)).arrange(RIGHT, buff=0.15),
        ).arrange(DOWN, aligned_edge=LEFT, buff=0.22)
        lines.next_to(circle, RIGHT, buff=1.0)
        fit_width(lines, config.frame_width / 2 - 0.3 - lines.get_left()[0])
        normed = " (after its norm)" if cfg.qk_norm else ""
        self.say(f"Here is one real pair of numbers from the query{normed} of {self.piece(pos)}, "
                 f"in layer {choice.layer}, head {head}.")
        self.play(FadeIn(axes), FadeIn(circle), GrowArrow(a1), FadeIn(lines[:3]), run_time=1.2)
        if pos == 0:
            self.say("It is the first token, at position 0, so it does not turn at all.")
        else:
            degrees = narration.spoken_number(math.degrees(pair["angle"]) % 360)
            radians = narration.spoken_number(pair["angle"])
            self.say(f"At position {pos}, the pair turns by {radians} {'radian' if radians == '1' else 'radians'}. "
                     + (f"That is more than a full turn: it ends {degrees} degrees round."
                        if pair["angle"] >= 2 * math.pi else f"That is {degrees} degrees around the circle."))
        turned = a1.copy()
        self.play(turned.animate.become(a2), FadeIn(lines[3:]), run_time=1.5)
        arc = Angle(Line(origin, to_point(before)), Line(origin, to_point(after)), radius=0.6, color=theme.query,
                    other_angle=((pair["angle"] % (2 * math.pi)) > math.pi))
        self.play(FadeIn(arc), run_time=0.5)
        self.say("Keys turn the same way. So when a query meets a key, "
                 "their dot product depends on how far apart the two tokens are.")
        if cfg.rope_base_local and cfg.rope_base_local != cfg.rope_base:
            local = cfg.is_local(choice.layer)
            self.say(f"The speed of the turn is set by a base number. Layer {choice.layer} "
                     + (f"looks back at most {narration.spoken_count(cfg.sliding_window)} tokens, and turns with a base of "
                        f"{narration.spoken_count(int(cfg.rope_base_local))}; the layers that see everything use "
                        f"{narration.spoken_count(int(cfg.rope_base))}"
                        + (", which turns more slowly." if cfg.rope_base > cfg.rope_base_local else ".")
                        if local else
                        f"sees the whole prompt, and turns with a base of {narration.spoken_count(int(cfg.rope_base))}; "
                        f"the layers that look back only {narration.spoken_count(cfg.sliding_window)} tokens use "
                        f"{narration.spoken_count(int(cfg.rope_base_local))}."))

    def beat_neighbours(self):
        trace, theme = self.trace, self.theme
        self.clear_stage()
        pos = self.focus
        tid = trace.tokens[pos]
        near = self.data.neighbours(tid)
        rows = [(n["piece"], n["cosine"], (tid, k), None) for k, n in enumerate(near)]
        bars = ProbabilityBars(rows, theme, bar_width=3.5, source="neighbours.cosine", value_kind="number",
                               token_source="neighbours.piece")
        head = VGroup(label("closest vectors to", theme, BODY),
                      token_label(trace.pieces[pos], theme, BODY, color=theme.token_color(pos), index=(pos,)))
        head.arrange(RIGHT, buff=0.2)
        sub = label("cosine similarity of rows of W_E (1 = same direction, 0 = unrelated)", theme, SMALL, color=theme.dim)
        panel = VGroup(head, sub, bars).arrange(DOWN, buff=0.45)
        bars.set_x(0)
        fit_width(panel, config.frame_width - 1)
        panel.move_to(DOWN * 0.2)
        self.say("Vectors that point the same way belong to related tokens. "
                 "We measure this with the cosine: 1 means the same direction, 0 means unrelated.")
        self.play(FadeIn(head), FadeIn(sub), run_time=1)
        self.say(self.neighbours_text(pos, near))
        self.play(LaggedStart(*[FadeIn(line, shift=0.3 * RIGHT) for line in bars.lines], lag_ratio=0.15), run_time=1.5)

    def neighbours_text(self, pos: int, near: list[dict]) -> str:
        """The closest rows of the embedding matrix, said: the best with its cosine, then the rest."""
        vocab = narration.spoken_count(self.trace.config.vocab_size)
        focus = self.trace.pieces[pos]

        def name(piece: str) -> str:  # the same word with or without its leading space sounds the same: say so
            if piece != focus and piece.strip() == focus.strip():
                return f"{self.word(piece)} {'with' if piece.startswith(' ') else 'without'} a space in front"
            return self.word(piece)

        best = near[0]
        text = (f"Of all {vocab} tokens, the closest to {self.piece(pos)} is {name(best['piece'])}, "
                f"with cosine {narration.spoken_number(best['cosine'])}.")
        if best["cosine"] < 0.3:
            text += " That is low: even the closest match is weak."
        rest = [name(n["piece"]) for n in near[1:]]
        if rest:
            text += f" Then come {and_list(rest)}, down to {narration.spoken_number(near[-1]['cosine'])}."
        return text
