"""values: how attention changes a vector.

Storyboard:
1. values: each token's vector (after the layer's norm) times W_V gives its value vector (red);
2. the story column: the values weighted by the real attention weights and summed (= the
   trace's hook_z), then through the head's slice of W_O: this head's change (hook_result);
3. E + delta E: the vector entering the layer plus what attention adds is the new vector
   (real numbers before and after);
4. what E + delta E means: the story token's vector read through the logit lens (final norm +
   unembedding) before the layer, with only the story head's change added, and after the whole
   layer: the top guesses, the ranks of the story keys' tokens and of the model's own final
   guess there, the head's change as a share of the vector's length and its cosine with the
   keys' embeddings against the whole vocabulary. Weak or noisy readings are said to be so;
5. every column at once: every token is updated in parallel.
"""

from __future__ import annotations

import numpy as np
from manim import DOWN, LEFT, RIGHT, UP, FadeIn, LaggedStart, Line, VGroup, config

from scenes.parts import narration
from scenes.parts.attention_parts import AttentionScene, fit_height, matrix_view, row_of_vectors, vector_with_length
from scenes.parts.components import ProbabilityBars, TokenStrip, count, fit_width, label, number, token_label
from scenes.parts.provenance import Shown
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_percent

COLUMN_WIDTH = 1.3
MAX_TERMS = 3  # weighted values drawn in the sum; the rest are counted
LENS_TOP = 3  # the lens's top guesses drawn per stage
MAX_WATCHED = 3  # story keys' tokens whose ranks are drawn (the most attended first)
STAGES = ("before", "after_head", "after_layer")  # story_meaning's stages, in order (index 0, 1, 2 on screen)


def spoken_list(items: list[str]) -> str:
    """“a”, “a and b”, “a, b and c”."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def sentence(text: str) -> str:
    """A sentence that starts with a token's name ("byte piece 4 climbs") starts with a capital."""
    return text[:1].upper() + text[1:]


class Values(AttentionScene):
    title_text = "Values: what attention adds"
    beats = ("beat_values", "beat_weighted_sum", "beat_update", "beat_meaning", "beat_every_column")

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
                                   (q, H), "config.d_model", scale=0.5,
                                   caption=f"head {H}'s output" if cfg.post_norms else f"head {H}'s ΔE")
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
        summed = (f"ΔE: all {cfg.n_heads} heads' changes, summed, then normed"
                  if cfg.post_norms else f"ΔE: the changes of all {cfg.n_heads} heads, summed")
        note = label(f"E: the vector entering layer {L}   {summed}", theme, SMALL, color=theme.dim)
        if cfg.post_norms:
            fit_width(note, config.frame_width - 1.0)
        group = VGroup(token, row, note).arrange(DOWN, buff=0.35)
        fit_height(group, self.stage_top() + config.frame_height / 2 - 0.9)
        group.next_to([0, self.stage_top(), 0], DOWN, buff=0.1)
        e, d, new = (float(trace[n][q, 0]) for n, _ in names)
        self.say(f"Now the change is added to the vector of {self.piece(q)}. This change sums all "
                 f"{cfg.n_heads} heads of layer {L}, not just head {self.head}.")
        self.play(FadeIn(token), FadeIn(cols[0]), FadeIn(note), run_time=1)
        if cfg.post_norms:
            rms = float(trace[f"blocks.{L}.ln1_post.hook_scale"][q].reshape(-1)[0])
            self.say("In this model the sum passes through one more norm before it is added: it is divided by "
                     f"its root mean square, here {narration.spoken_number(rms)}, and multiplied by a learned weight.")
        self.play(FadeIn(row[1]), FadeIn(cols[1]), run_time=1)
        plus = f"minus {narration.spoken_number(-d)}" if d < 0 else f"plus {narration.spoken_number(d)}"
        self.say(f"In the first entry, {narration.spoken_number(e)} {plus} makes {narration.spoken_number(new)}.")
        self.play(FadeIn(row[3]), FadeIn(cols[2]), run_time=1)

    # ------------------------------------------------------------------ what E + delta E means
    def watched_keys(self) -> list[tuple[int, int]]:
        """(position, token id) of the story keys drawn in the lens table: the most attended
        first, one per distinct token, at most MAX_WATCHED, in prompt order."""
        pattern = self.trace[self.hook("hook_pattern")][self.head, self.query]
        chosen, ids = [], set()
        for k in sorted(self.story_keys, key=lambda k: -float(pattern[k])):
            tid = self.trace.tokens[k]
            if tid not in ids and len(chosen) < MAX_WATCHED:
                chosen.append(k)
                ids.add(tid)
        return [(k, self.trace.tokens[k]) for k in sorted(chosen)]

    def key_name(self, pos: int):
        """A prompt token's text in its token colour (a chip would be too tall for a table row)."""
        return token_label(self.trace.pieces[pos], self.theme, SMALL, color=self.theme.token_color(pos), index=(pos,))

    def lens_percent(self, p: float, index: tuple):
        text = fmt_percent(p)
        return label(text, self.theme, SMALL * 0.9, color=self.theme.dim, mono=True,
                     shown=Shown(text, float(p), "story_lens.p", index, kind="percent"))

    def lens_cell(self, stage: int, row: dict, color=None) -> VGroup:
        """One watched token at one stage: its rank among all tokens, and its probability."""
        name = STAGES[stage]
        rank = count(row[f"{name}_rank"], self.theme, "story_lens.rank", size=SMALL, color=color or self.theme.text,
                     index=(stage, row["id"]))
        cell = VGroup(label("rank", self.theme, SMALL * 0.9, color=self.theme.dim), rank)
        if f"{name}_probability" in row:
            cell.add(self.lens_percent(row[f"{name}_probability"], (stage, row["id"])))
        return cell.arrange(RIGHT, buff=0.12)

    def beat_meaning(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        L, H, q = self.layer, self.head, self.query
        self.clear_stage()
        m = self.data.story_meaning
        watch = {r["id"]: r for r in m["watch"]}
        keys = [(k, tid) for k, tid in self.watched_keys() if tid in watch]
        final = m["final"]
        cos = m["embedding_cosines"]
        cos_of = {r["id"]: r for r in cos["watch"]}
        vocab = cfg.vocab_size

        # the table: a name column, then one column per stage
        heads = [("E", f"before layer {L}"),
                 (f"E + head {H}'s ΔE", "its share, after the norm" if cfg.post_norms else "this head's change only"),
                 (f"after layer {L}", f"all {cfg.n_heads} heads, then the MLP")]
        col_w, name_w, gap = 3.3, 3.0, 0.25
        xs = [name_w + gap + col_w * (i + 0.5) for i in range(3)]
        header = VGroup()
        for x, (title, sub) in zip(xs, heads):
            t = label(title, theme, LABEL, color=theme.accent if title.startswith("E +") else theme.text)
            st = label(sub, theme, SMALL * 0.85, color=theme.dim)
            header.add(fit_width(VGroup(t, st).arrange(DOWN, buff=0.08), col_w - 0.2).move_to([x, 0, 0]))
        header.align_to([0, 0, 0], UP)
        y = header.get_bottom()[1] - 0.3
        bars = VGroup()
        for i, name in enumerate(STAGES):
            rows = [(r["piece"], r["probability"], (i, r["id"], k), None) for k, r in enumerate(m["stages"][name][:LENS_TOP])]
            b = ProbabilityBars(rows, theme, bar_width=1.0, size=SMALL, source="story_lens.p",
                                token_source="story_lens.piece", top=1.0)
            fit_width(b, col_w - 0.2)
            b.move_to([xs[i], 0, 0]).align_to([0, y, 0], UP)
            bars.add(b)
        top_name = label(f"top {LENS_TOP} guesses", theme, SMALL, color=theme.dim)
        top_name.move_to([name_w, bars.get_center()[1], 0], aligned_edge=RIGHT)
        y = bars.get_bottom()[1] - 0.3
        rule = Line([0.2, y + 0.12, 0], [name_w + gap + 3 * col_w, y + 0.12, 0], color=theme.faint, stroke_width=2)

        def table_row(piece_mob, note: str, row: dict, color=None) -> VGroup:
            nonlocal y
            name = VGroup(piece_mob, label(note, theme, SMALL * 0.85, color=theme.dim)).arrange(RIGHT, buff=0.12)
            fit_width(name, name_w - 0.1)
            name.move_to([name_w, y - 0.2, 0], aligned_edge=RIGHT)
            cells = VGroup(*[fit_width(self.lens_cell(i, row, color), col_w - 0.2).move_to([xs[i], y - 0.2, 0])
                             for i in range(3)])
            y -= 0.5
            return VGroup(name, cells)

        final_row = table_row(token_label(final["piece"], theme, SMALL, color=theme.accent, source="vocab",
                                          index=(final["id"],)), "the model's final guess", final, theme.accent)
        key_rows = VGroup(*[table_row(self.key_name(k), "key", watch[tid]) for k, tid in keys])
        table = VGroup(header, top_name, bars, rule, final_row, key_rows)

        # below the table: the change's length and where it points
        share = m["update_share"]
        share_text = fmt_percent(share)
        length = VGroup(label(f"head {H}'s ΔE is", theme, SMALL, color=theme.dim),
                        label(share_text, theme, SMALL, mono=True,
                              shown=Shown(share_text, share, "story_lens.share", kind="percent")),
                        label("as long as E", theme, SMALL, color=theme.dim)).arrange(RIGHT, buff=0.12)
        pointing = VGroup(label("its cosine with the embedding of", theme, SMALL, color=theme.dim))
        for k, tid in keys:
            pointing.add(VGroup(self.key_name(k),
                                number(cos_of[tid]["cosine"], theme, "story_lens.cos", (tid,), scale=0.2)
                                ).arrange(RIGHT, buff=0.1))
        pointing.add(label("· most tokens:", theme, SMALL, color=theme.dim),
                     number(cos["p05"], theme, "story_lens.cos_p05", scale=0.2),
                     label("to", theme, SMALL, color=theme.dim),
                     number(cos["p95"], theme, "story_lens.cos_p95", scale=0.2))
        pointing.arrange(RIGHT, buff=0.15)
        notes = VGroup(length, pointing).arrange(DOWN, aligned_edge=LEFT, buff=0.2)
        notes.next_to([0.2, y - 0.1, 0], DOWN, buff=0).align_to([0.2, 0, 0], LEFT)

        chip = TokenStrip(trace.pieces, trace.tokens, theme, positions=[q], size=SMALL)
        intro = VGroup(label("the vector of", theme, SMALL, color=theme.dim), chip,
                       label("read through the final norm and the unembedding (the logit lens)", theme, SMALL,
                             color=theme.dim)).arrange(RIGHT, buff=0.15)
        layout = VGroup(intro, VGroup(table, notes)).arrange(DOWN, buff=0.3)
        fit_width(layout, config.frame_width - 0.8)
        fit_height(layout, self.stage_top() + config.frame_height / 2 - 0.8)
        layout.next_to([0, self.stage_top(), 0], DOWN, buff=0.1).set_x(0)

        tok, pct, cnt = self.piece(q), narration.spoken_percent, narration.spoken_count
        self.say(f"What does the new vector of {tok} mean? We can read it the way the model reads its last vector: "
                 "through the final norm and the unembedding. This reading is called the logit lens.")
        self.play(FadeIn(intro), FadeIn(header), run_time=1)
        tops = [m["stages"][name][0] for name in STAGES]
        self.say(f"Before layer {L}, {tok} reads as {self.word(tops[0]['piece'])}, at {pct(tops[0]['probability'])}. "
                 f"With head {H}'s change added: {self.word(tops[1]['piece'])}, at {pct(tops[1]['probability'])}. "
                 f"After the whole layer: {self.word(tops[2]['piece'])}, at {pct(tops[2]['probability'])}.")
        self.play(FadeIn(top_name), LaggedStart(*[FadeIn(b) for b in bars], lag_ratio=0.3), run_time=1.5)
        ranks = [final[f"{name}_rank"] for name in STAGES]
        guess = self.word(final["piece"])
        if ranks[2] == 1:
            verdict = "After this layer the lens already agrees with the model."
        elif min(ranks) <= 10:
            verdict = "So the lens already has it among its top ten."
        elif L < cfg.n_layers // 2:
            verdict = f"So this early reading says little: at layer {L} the lens is mostly noise."
        else:
            verdict = "So the lens does not match the model's answer yet."
        self.say(f"The whole model, after all {cfg.n_layers} layers, predicts {guess} after {tok}. "
                 f"Through the lens here, it ranks {cnt(ranks[0])}, then {cnt(ranks[1])}, then {cnt(ranks[2])}. "
                 f"{verdict}")
        self.play(FadeIn(rule), FadeIn(final_row), run_time=1)
        self.say(self.keys_text(keys, watch, vocab))
        self.play(LaggedStart(*[FadeIn(r) for r in key_rows], lag_ratio=0.3), run_time=1.2)
        self.say(self.cosine_text(keys, cos_of, cos, share))
        self.play(FadeIn(notes), run_time=1)

    def keys_text(self, keys: list[tuple[int, int]], watch: dict, vocab: int) -> str:
        """Do the story keys' tokens climb toward the top when the head's change is added? Said with ranks."""
        tok, cnt = self.piece(self.query), narration.spoken_count
        names = [self.piece(k) for k, _ in keys]
        if [t for _, t in keys] == [self.trace.tokens[self.query]]:
            ask = f"Here {tok} mostly attends to its own token. Does its reading move toward {names[0]}?"
        else:
            ask = f"Does {tok} move toward the {'token' if len(keys) == 1 else 'tokens'} it attends to, " \
                  f"{spoken_list(names)}?"
        moves = []
        for (k, tid), name in zip(keys, names):
            r = watch[tid]
            moves.append(f"{name} goes from rank {cnt(r['before_rank'])} to {cnt(r['after_head_rank'])} with this head, "
                         f"and {cnt(r['after_layer_rank'])} after the layer")
        climbed = [watch[t]["after_head_rank"] < watch[t]["before_rank"] for _, t in keys]
        near_top = [watch[t]["after_head_rank"] <= 10 for _, t in keys]
        gained = [watch[t]["after_head_probability"] - watch[t]["before_probability"] >= 0.01 for _, t in keys]
        one = len(keys) == 1
        if all(watch[t]["before_rank"] == 1 == watch[t]["after_head_rank"] for _, t in keys):
            verdict = "It is the top guess already, and the head's change keeps it there."
        elif any(c and (n or g) for c, n, g in zip(climbed, near_top, gained)):
            verdict = "This head really pushes toward what it reads."
        elif all(climbed):
            verdict = ("It climbs, but stays far from the top. A tiny change: weak here." if one else
                       "They climb, but stay far from the top. A tiny change: weak here.")
        elif any(climbed):
            up = [n for n, c in zip(names, climbed) if c]
            down = [n for n, c in zip(names, climbed) if not c]
            verdict = (f"{spoken_list(up)} {'climbs' if len(up) == 1 else 'climb'} a little, {spoken_list(down)} "
                       f"{'falls' if len(down) == 1 else 'fall'}. A tiny, mixed change: weak here.")
        else:
            verdict = ("It does not climb. Through the lens, this head does not push toward it." if one else
                       f"{'Neither' if len(keys) == 2 else 'None of them'} climbs. "
                       "Through the lens, this head does not push toward them.")
        return f"{ask} Out of {cnt(vocab)} tokens, {'. '.join([moves[0]] + [sentence(m) for m in moves[1:]])}. " \
               f"{sentence(verdict)}"

    def cosine_text(self, keys: list[tuple[int, int]], cos_of: dict, cos: dict, share: float) -> str:
        """The head's change: its length, and whether it points toward the keys' embeddings more than most tokens."""
        num = narration.spoken_number
        said = [f"{self.piece(k)} is {num(cos_of[t]['cosine'])}" if i == 0 else f"with {self.piece(k)}, {num(cos_of[t]['cosine'])}"
                for i, (k, t) in enumerate(keys)]
        length = (f"{narration.spoken_percent(share)} as long as the vector" if share < 0.995 else
                  f"{num(share)} times as long as the vector")
        stand = [self.piece(k) for k, t in keys if cos_of[t]["cosine"] > cos["p95"]]
        if stand:
            verdict = f"{sentence(spoken_list(stand))} {'stands' if len(stand) == 1 else 'stand'} out: the change points toward " \
                      f"{'it' if len(stand) == 1 else 'them'} more than toward nineteen tokens in twenty."
        else:
            verdict = "No key stands out from the crowd." if len(keys) > 1 else "It does not stand out from the crowd."
        away = [self.piece(k) for k, t in keys if cos_of[t]["cosine"] < cos["p05"]]
        if away:
            verdict += f" The change even points away from {spoken_list(away)}, more than from nineteen tokens in twenty."
        return (f"Head {self.head}'s change is {length}. "
                f"Its cosine with the embedding of {'; '.join(said)}. "
                f"Most tokens score between {num(cos['p05'])} and {num(cos['p95'])}. {verdict}")

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
