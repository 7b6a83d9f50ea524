"""attention-pattern: dot products, scaling, softmax.

Storyboard:
1. the grid: keys down the left, queries across the top (said on screen), every cell the
   real q . k, each drawn with a square sized by its value;
2. divide by sqrt(d_head) (the real number; on soft-capped models such as Gemma 2, then
   c * tanh(score / c) with the config's c, said and written beside the grid), then softmax
   down each query's column: the grid becomes weights, each column summing to 1 (the real sums shown);
3. the story cells (the query token <- its keys) highlighted with their real weights.
"""

from __future__ import annotations

from manim import DL, DOWN, LEFT, RIGHT, UL, UP, Create, FadeIn, FadeOut, VGroup, config

from facts import attention as af
from scenes.parts import narration
from scenes.parts.attention_parts import AttentionScene, NumberGrid
from scenes.parts.components import count, fit_width, label, number, percent, token_label
from scenes.parts.theme import LABEL, SMALL

LIMIT = 8  # token positions shown in the grid; longer prompts are windowed
CELL_W, CELL_H = 0.95, 0.5
SIZE = SMALL * 0.85
WEAK = 0.25  # a story share under this is called a weak link


def spoken_list(items: list[str]) -> str:
    """“a”, “a and b”, “a, b and c”."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class AttentionPattern(AttentionScene):
    title_text = "Which tokens look at which"
    beats = ("beat_dot_products", "beat_scale_and_softmax", "beat_story_cells")

    def grid(self, values, source: str, index, decimals: int, weights: bool = False) -> NumberGrid:
        trace = self.trace
        grid = NumberGrid(values, self.positions, trace.pieces, self.theme, source, index, decimals=decimals,
                          cell_w=CELL_W, cell_h=CELL_H, size=SIZE, unsigned_values=weights)
        if self.placed is None:
            self.place_grid(grid)
            self.placed = (grid.frame.width, grid.frame.get_center())
        else:  # the same place and size as the first grid
            grid.scale(self.placed[0] / grid.frame.width)
            grid.shift(self.placed[1] - grid.frame.get_center())
        return grid

    def beat_dot_products(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        L, H, q = self.layer, self.head, self.query
        self.positions = self.grid_positions(LIMIT)
        self.placed = None
        qk = af.dot_products(trace, L, H).numpy()
        grid = self.grid(qk, "attn.qk", lambda a, b: (L, H, a, b), decimals=1)
        legend = VGroup(label("columns: queries", theme, SMALL, color=theme.query),
                        label("(the token asking)", theme, SMALL, color=theme.dim),
                        label("rows: keys", theme, SMALL, color=theme.key),
                        label("(the tokens it may look at)", theme, SMALL, color=theme.dim),
                        label("empty cells: later keys,", theme, SMALL, color=theme.dim),
                        label("hidden (see masking)", theme, SMALL, color=theme.dim))
        legend.arrange(DOWN, aligned_edge=LEFT, buff=0.1)
        legend[2].shift(DOWN * 0.15)
        legend[3].shift(DOWN * 0.15)
        legend[4:].shift(DOWN * 0.3)
        self.side_x = grid.frame.get_right()[0] + 0.45
        fit_width(legend, config.frame_width / 2 - 0.3 - self.side_x)
        legend.move_to([self.side_x, grid.frame.get_top()[1], 0], aligned_edge=UL)
        self.step = label("each cell: q · k", theme, LABEL)
        bottom = grid.frame.get_bottom()[1]
        if legend.get_bottom()[1] - 0.3 < bottom + self.step.height:  # a short grid (a short prompt): under the legend
            self.step.next_to(legend, DOWN, buff=0.3, aligned_edge=LEFT)
        else:  # level with the grid's bottom
            self.step.move_to([self.side_x, bottom, 0], aligned_edge=DL)
        self.say(f"Head {H} of layer {L} compares tokens in a grid. Each column is a query: the token asking. "
                 "Each row is a key: a token it may look at.")
        self.play(FadeIn(grid.frame), FadeIn(grid.key_labels), FadeIn(grid.query_labels), FadeIn(legend), run_time=1)
        self.say("Each cell holds the dot product of one query with one key."
                 + (" Cells for later keys stay empty." if len(trace.tokens) > 1 else ""))
        self.play(FadeIn(grid.outlines), FadeIn(grid.dots), FadeIn(grid.squares), FadeIn(grid.numbers),
                  FadeIn(self.step), run_time=1.5)
        best = max((k for k in range(q + 1)), key=lambda k: qk[q, k])
        partner = self.piece(best) + (" itself" if best == q else "")
        self.say(f"In the column of {self.piece(q)}, the largest product is with {partner}: "
                 f"{narration.spoken_number(float(qk[q, best]))}. A large positive product means the key fits "
                 "what the query is looking for.")
        self.column = grid.column_box(q, theme.query)
        self.play(Create(self.column), run_time=0.6)
        self.grid_now, self.legend = grid, legend

    def beat_scale_and_softmax(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        L, H, q = self.layer, self.head, self.query
        old = self.grid_now
        scaled = self.grid(trace[self.hook("hook_attn_scores")][H].numpy(), self.hook("hook_attn_scores"),
                           lambda a, b: (H, a, b), decimals=2)
        own = bool(cfg.query_pre_attn_scalar) and cfg.query_pre_attn_scalar != cfg.d_head  # a divisor of its own
        divisor = (count(int(cfg.query_pre_attn_scalar), theme, "config.query_pre_attn_scalar", size=LABEL,
                         color=theme.text) if own else count(cfg.d_head, theme, "config.d_head", size=LABEL, color=theme.text))
        step = VGroup(label("÷ √", theme, LABEL), divisor)
        step.arrange(RIGHT, buff=0.05)
        cap = cfg.attn_softcap
        if cap:  # soft-capping (Gemma 2): the grid then shows c * tanh(score / c), what softmax reads
            c = (count(int(cap), theme, "config.attn_softcap", size=LABEL, color=theme.text) if cap == int(cap) else
                 number(cap, theme, "config.attn_softcap", (), scale=cap, size=LABEL, decimals=1))
            capped = VGroup(label("then c · tanh(score / c),", theme, LABEL), label("c =", theme, LABEL), c)
            capped.arrange(RIGHT, buff=0.1)
            step = VGroup(step, capped).arrange(DOWN, aligned_edge=LEFT, buff=0.12)
            fit_width(step, config.frame_width / 2 - 0.3 - self.side_x)
        step.move_to(self.step, aligned_edge=DL)
        root = af.scale(cfg)
        what = (f"{int(cfg.query_pre_attn_scalar)}, a number set in this model's configuration" if own else
                f"{cfg.d_head}, the number of entries in a query")
        self.say(f"Next, every product is divided by {narration.spoken_number(root)}: the square root of "
                 f"{what}. This keeps the scores in a range softmax handles well.")
        if cap:
            said = narration.spoken_number(cap)
            self.say(f"This model also caps each score, softly: it takes the tanh of the score divided by {said}, "
                     f"times {said}. Small scores barely change; none can pass plus or minus {said}.")
        self.play(FadeOut(self.step), FadeIn(step), *old.retarget(scaled), run_time=1.5)
        self.step = step
        weights = self.grid(trace[self.hook("hook_pattern")][H].numpy(), self.hook("hook_pattern"),
                            lambda a, b: (H, a, b), decimals=2, weights=True)
        step2 = label("softmax down each column", theme, LABEL)
        fit_width(step2, config.frame_width / 2 - 0.3 - self.side_x)
        step2.move_to(self.step, aligned_edge=DL)
        sums = self.column_sums(weights, SIZE)
        self.say("Then softmax turns each column into weights. They are all positive, and each column adds up to 1.")
        self.play(FadeOut(self.step), FadeIn(step2), *scaled.retarget(weights), run_time=1.5)
        hidden = len(trace.tokens) > len([p for p in self.positions if p is not None])
        self.say("The sums below the grid count every key, including those not drawn." if hidden
                 else "The sums below the grid show it: 1 in every column.")
        self.play(FadeIn(sums), run_time=0.8)
        self.step, self.grid_now, self.sums = step2, weights, sums

    def beat_story_cells(self):
        trace, theme = self.trace, self.theme
        H, q, keys = self.head, self.query, self.story_keys
        grid = self.grid_now
        pattern = trace[self.hook("hook_pattern")][H]
        boxes = VGroup(*[grid.cell_box(q, k, theme.accent) for k in keys if k in grid.rows])
        lines = VGroup()
        for k in keys:
            lines.add(VGroup(token_label(trace.pieces[q], theme, SMALL, color=theme.token_color(q), index=(q,)),
                             label("←", theme, SMALL, color=theme.dim),
                             token_label(trace.pieces[k], theme, SMALL, color=theme.token_color(k), index=(k,)),
                             percent(float(pattern[q, k]), theme, self.hook("hook_pattern"), (H, q, k),
                                     size=SMALL)).arrange(RIGHT, buff=0.12))
        lines.arrange(DOWN, aligned_edge=LEFT, buff=0.15)
        fit_width(lines, config.frame_width / 2 - 0.3 - self.side_x)
        lines.next_to(self.step, UP, buff=0.35).align_to(self.step, LEFT)
        if lines.get_top()[1] > self.legend.get_bottom()[1] - 0.15:  # no room between legend and step: below the step
            lines.next_to(self.step, DOWN, buff=0.35).align_to(self.step, LEFT)
        share = sum(float(pattern[q, k]) for k in keys)
        shares = [f"{narration.spoken_percent(float(pattern[q, k]))} to {self.piece(k)}" for k in keys]
        shares[0] = shares[0].replace(" to ", " of its attention to ", 1)
        if len(keys) == 1:
            total = ": a weak link." if share < WEAK else "."
        elif share < WEAK:
            total = f". That is only {narration.spoken_percent(share)} in all: a weak link."
        else:
            total = f". That is {narration.spoken_percent(share)} in all."
        self.say(f"In our story, {self.piece(q)} gives {spoken_list(shares)}{total}")
        self.play(FadeOut(self.column), Create(boxes), FadeIn(lines), run_time=1.2)
