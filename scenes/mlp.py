"""mlp: the multi-layer perceptron.

Storyboard:
1. one token's vector (after attention, real) -> up-projection (real size, e.g. 576 -> 1536)
   -> the model's real nonlinearity (SiLU-gated, or GELU) -> down-projection;
2. the real hidden activations: the top 5 neurons for this token, and how many are near zero;
3. what the strongest neuron writes: its row of W_out read through the unembedding (the
   tokens it pushes toward), with its sign here, and an honest word when they look unrelated;
4. parameter share: real counts of attention vs MLP parameters;
5. which layers put the answer in: each layer's attention and MLP push on the logit of the
   model's top next token (direct effects, measured), the largest named with their numbers.
"""

from __future__ import annotations

import numpy as np
from manim import (DOWN, LEFT, RIGHT, UP, Arrow, FadeIn, GrowArrow, GrowFromEdge, Group, Indicate, LaggedStart, MathTypst,
                   Rectangle, RoundedRectangle, Square, TransformFromCopy, VGroup, config)

from facts.mlp import NEAR_ZERO, mlp_neurons
from scenes.parts import narration
from scenes.parts.base import TransformerScene
from scenes.parts.components import (ProbabilityBars, TokenStrip, VectorColumn, count, fit_width, label, number,
                                     token_label)
from scenes.parts.plots import CountBars, MatrixBox, Plot, SignedRows, nice_ticks, values_image
from scenes.parts.theme import BODY, LABEL, SMALL, fmt_int

ACTIVATION_NAMES = {"silu": "SiLU", "gelu": "GELU", "gelu_new": "GELU", "gelu_tanh": "GELU"}
TANH_APPROXIMATIONS = ("gelu_new", "gelu_tanh")  # GELU computed with tanh (GPT-2's and Gemma's formula)
GATED_NAMES = {"SiLU": "SwiGLU", "GELU": "GeGLU"}  # what a gate made with that curve is called


def activation_curve(name: str, x: np.ndarray) -> np.ndarray:
    """The shape of the model's nonlinearity, for drawing its curve (the scene's values come from the trace)."""
    if name == "silu":
        return x / (1 + np.exp(-x))
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


class Mlp(TransformerScene):
    title_text = "The MLP: every token on its own"
    beats = ("beat_up", "beat_nonlinearity", "beat_down", "beat_neurons", "beat_promotes", "beat_parameters", "beat_answer")

    def setup(self):
        super().setup()
        self.layer = self.data.choice.layer
        self.pos = self.data.focus
        cfg = self.trace.config
        self.gated = f"blocks.{self.layer}.mlp.hook_pre_linear" in self.trace
        # TransformerLens's names: hook_pre is what the nonlinearity reads (the gate, when gated)
        self.up_hook = "mlp.hook_pre_linear" if self.gated else "mlp.hook_pre"
        self.gate_hook = "mlp.hook_pre"
        self.act = ACTIVATION_NAMES.get(cfg.activation, cfg.activation)

    def name(self, hook: str) -> str:
        return f"blocks.{self.layer}.{hook}"

    def column(self, hook: str, title: str, color=None, size: float = SMALL) -> VGroup:
        if hook == "ln2":  # the norm's output after its weight: what the MLP reads
            values, source = np.array(self.data.norm_outputs["ln2"][self.pos]), f"norm_output:{self.name('ln2')}"
        else:
            values, source = self.trace[self.name(hook)][self.pos].numpy(), self.name(hook)
        col = VectorColumn(values, self.theme, source, (self.pos,), head=3, tail=2, size=size, color=color)
        cap = label(title, self.theme, SMALL, color=color or self.theme.dim)
        group = VGroup(cap, col).arrange(DOWN, buff=0.2)
        group.col = col
        return group

    def token_chip(self) -> VGroup:
        chip = TokenStrip(self.trace.pieces, self.trace.tokens, self.theme, positions=[self.pos])
        where = label(f"layer {self.layer}", self.theme, SMALL, color=self.theme.dim)
        group = VGroup(chip, where).arrange(RIGHT, buff=0.2)
        group.next_to([config.frame_width / 2 - 0.3, self.stage_top() + 0.1, 0], DOWN + LEFT, buff=0)
        return group

    def value(self, hook: str, neuron: int):
        return number(float(self.trace[self.name(hook)][self.pos, neuron]), self.theme, self.name(hook), (self.pos, neuron),
                      scale=1.0, size=SMALL)

    def arrow(self, a, b, color=None) -> Arrow:
        return Arrow(a.get_right(), b.get_left(), buff=0.15, color=color or self.theme.dim, stroke_width=3,
                     max_tip_length_to_length_ratio=0.15)

    # ------------------------------------------------------------------ beats
    def beat_up(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.chip = self.token_chip()
        x = self.column("ln2", "what the MLP reads", theme.token_color(self.pos))
        specs = [("W_in", self.up_hook, "up", theme.positive)]
        if self.gated:
            specs.append(("W_gate", self.gate_hook, "gate", theme.accent))
        mats, cols, lines = [], [], VGroup()
        for name, hook, title, color in specs:  # one row per projection: matrix -> its output column
            m = MatrixBox(name, (cfg.d_model, cfg.d_mlp), ("config.d_model", "config.d_mlp"), theme,
                          width=1.5, height=1.0, color=color)
            values = trace[self.name(hook)][self.pos].numpy()
            col = VectorColumn(values, theme, self.name(hook), (self.pos,), head=2, tail=1, size=SMALL, color=color)
            cap = label(title, theme, LABEL, color=color)
            out = VGroup(col, cap).arrange(RIGHT, buff=0.25)
            out.col = col
            lines.add(VGroup(m, out).arrange(RIGHT, buff=1.2))
            mats.append(m)
            cols.append(out)
        lines.arrange(DOWN, buff=0.6, aligned_edge=LEFT)
        row = VGroup(x, lines).arrange(RIGHT, buff=1.3)
        fit_width(row, config.frame_width - 0.8)
        row.move_to(DOWN * 0.45)
        n = narration.spoken_count
        self.say(f"After attention comes the MLP, a small network. It works on each token's vector on its own. "
                 f"We follow {self.piece(self.pos)} in layer {self.layer}.")
        self.play(FadeIn(self.chip), FadeIn(x), run_time=1)
        arrows = [self.arrow(x, m.box) for m in mats]
        self.say(f"First, the up-projection. A learned matrix turns the vector's {n(cfg.d_model)} numbers "
                 f"into {n(cfg.d_mlp)}."
                 + (" The model has two such matrices: one gives the up values, the other the gate values."
                    if self.gated else ""))
        self.play(*[GrowArrow(a) for a in arrows], *[FadeIn(m) for m in mats], run_time=1)
        self.play(*[TransformFromCopy(x.col.body, c.col.body) for c in cols],
                  *[FadeIn(VGroup(c[1], c.col.left, c.col.right, c.col.length_label)) for c in cols],
                  *[GrowArrow(self.arrow(m.box, c)) for m, c in zip(mats, cols)], run_time=1.5)
        first = float(trace[self.name(self.up_hook)][self.pos, 0])
        self.say("Each new number is a dot product of the vector with one learned direction. "
                 f"The first up value here is {narration.spoken_number(first)}.")

    def beat_nonlinearity(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage(self.chip)
        source = "mlp.hook_pre"  # what the nonlinearity reads: the gate, or the up value
        inputs = trace[self.name(source)][self.pos].numpy()
        facts = mlp_neurons(trace, self.layer, self.pos)
        lo, hi = float(min(-4.0, np.floor(inputs.min()))), float(max(4.0, np.ceil(inputs.max())))
        xs = np.linspace(lo, hi, 200)
        ys = activation_curve(cfg.activation, xs)
        plot = Plot((lo, hi), (-1.0, hi), theme, width=5.2, height=3.6,
                    x_ticks=[v for v in (-4, -2, 0, 2, 4) if lo <= v <= hi], y_ticks=[0, 2, 4] if hi >= 4 else [0, 2],
                    x_label="gate" if self.gated else "up", y_label=f"{self.act}(x)")
        curve = plot.polyline(xs, ys, theme.accent, 4)
        rug = VGroup(*[plot.polyline([v, v], [-1.0, -0.75], theme.dim, 1) for v in inputs[::4]])
        best = facts["top"][0]["neuron"]  # the strongest neuron: its input on the curve, worked through
        bx = float(inputs[best])
        dot = plot.dots([bx], [float(activation_curve(cfg.activation, np.array(bx)))], theme.text, radius=0.08)
        tag = label(f"neuron {best}", theme, SMALL, color=theme.text).next_to(dot, LEFT, buff=0.15)
        rug_name = label(f"this token's {cfg.d_mlp} inputs", theme, SMALL * 0.85, color=theme.dim)
        left = VGroup(plot, curve, rug, dot, tag)
        left.move_to(LEFT * 3.4 + DOWN * 0.5)
        rug_name.next_to(plot.point(hi, -0.85), LEFT, buff=0.1).shift(UP * 0.25)
        if self.gated:
            formula = MathTypst(f"\"neuron\" = \"{self.act}\"(\"gate\") times \"up\"", color=theme.text, font_size=34)
            example = VGroup(label(f"neuron {best}:  {self.act}(", theme, SMALL),
                             self.value(self.gate_hook, best), label(") ×", theme, SMALL), self.value(self.up_hook, best),
                             label("=", theme, SMALL), self.value("mlp.hook_post", best))
        else:
            formula = MathTypst(f"\"neuron\" = \"{self.act}\"(\"up\")", color=theme.text, font_size=34)
            example = VGroup(label(f"neuron {best}:  {self.act}(", theme, SMALL), self.value("mlp.hook_pre", best),
                             label(") =", theme, SMALL), self.value("mlp.hook_post", best))
        example.arrange(RIGHT, buff=0.1)
        neurons = self.column("mlp.hook_post", "neurons", theme.text)
        right = VGroup(formula, example, neurons).arrange(DOWN, buff=0.45)
        right.move_to(RIGHT * 3.6 + DOWN * 0.4)
        fit_width(right, config.frame_width / 2 - 0.5)
        kind = "gate" if self.gated else "up"
        if cfg.activation == "gelu_tanh" and self.gated:  # say what the config says, in words
            self.say(f"Next comes the MLP's one non-linear step. This model uses a curve called {self.act}, "
                     f"computed with its tanh formula. Used as a gate, it makes what is called a "
                     f"{GATED_NAMES[self.act]} layer.")
        else:
            self.say(f"Next comes the MLP's one non-linear step. This model uses a curve called {self.act}.")
        self.play(FadeIn(plot), run_time=0.8)
        self.play(FadeIn(curve), run_time=0.8)
        self.say(f"The small ticks show where this token's {kind} values fall, one tick for every fourth value. "
                 "Negative inputs come out near zero.")
        self.play(FadeIn(rug), FadeIn(rug_name), run_time=1)
        if self.gated:
            self.say(f"Each neuron is {self.act} of its gate value, times its up value. "
                     "So the gate decides how much of the up value passes.")
        else:
            self.say(f"Each neuron is {self.act} of its up value.")
        self.play(FadeIn(formula), run_time=0.8)
        say = narration.spoken_number
        out = say(float(trace[self.name("mlp.hook_post")][self.pos, best]))
        if self.gated:
            gate, up = (say(float(trace[self.name(h)][self.pos, best])) for h in (self.gate_hook, self.up_hook))
            worked = f"its gate value {gate} and up value {up} give {out}."
        else:
            worked = f"its up value {say(float(trace[self.name('mlp.hook_pre')][self.pos, best]))} gives {out}."
        self.say(f"Take the strongest neuron for this token, number {best}: {worked}")
        self.play(FadeIn(dot), FadeIn(tag), FadeIn(example), run_time=1)
        self.say(f"Done for every neuron, this gives the token's {narration.spoken_count(cfg.d_mlp)} neuron values.")
        self.play(FadeIn(neurons), run_time=1)

    def beat_down(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage(self.chip)
        neurons = self.column("mlp.hook_post", "neurons", theme.text)
        w_out = MatrixBox("W_out", (cfg.d_mlp, cfg.d_model), ("config.d_mlp", "config.d_model"), theme,
                          width=1.5, height=1.0, color=theme.value)
        out = self.column("hook_mlp_out", "MLP output, normalised" if cfg.post_norms else "MLP output", theme.value)
        mid = self.column("hook_resid_mid", "before the MLP", theme.token_color(self.pos))
        post = self.column("hook_resid_post", "after the MLP", theme.token_color(self.pos))
        plus, equals = label("+", theme, BODY), label("=", theme, BODY)
        row = VGroup(neurons, w_out, out, plus, mid, equals, post).arrange(RIGHT, buff=0.45)
        row[:2].shift(LEFT * 0.5)  # room for the arrows around W_out
        row[0].shift(LEFT * 0.4)
        fit_width(row, config.frame_width - 0.6)
        row.move_to(DOWN * 0.35)
        self.say(f"Then the down-projection. A second matrix takes the {narration.spoken_count(cfg.d_mlp)} neurons "
                 f"back to {narration.spoken_count(cfg.d_model)} numbers: the MLP's output.")
        self.play(FadeIn(neurons), run_time=0.6)
        self.play(FadeIn(w_out), GrowArrow(self.arrow(neurons, w_out.box)), run_time=0.8)
        self.play(TransformFromCopy(neurons.col.body, out.col.body),
                  FadeIn(VGroup(out[0], out.col.left, out.col.right, out.col.length_label)),
                  GrowArrow(self.arrow(w_out.box, out)), run_time=1.2)
        a = float(trace[self.name("hook_mlp_out")][self.pos, 0])
        b = float(trace[self.name("hook_resid_mid")][self.pos, 0])
        c = float(trace[self.name("hook_resid_post")][self.pos, 0])
        say = narration.spoken_number
        if cfg.post_norms:
            rms = float(trace[f"blocks.{self.layer}.ln2_post.hook_scale"][self.pos].reshape(-1)[0])
            self.say("In this model that output goes through one more norm first: divided by its root mean square, "
                     f"here {say(rms)}, and multiplied by a learned weight. Then it is added to the token's vector "
                     "from before the MLP.")
        else:
            self.say("That output is added to the token's vector from before the MLP.")
        self.play(FadeIn(plus), FadeIn(mid), run_time=0.8)
        self.say(f"In the first entry, the MLP's {say(a)} and the earlier {say(b)} make {say(c)}. "
                 "Every entry is added the same way.")
        self.play(FadeIn(equals), FadeIn(post), run_time=0.8)

    def beat_neurons(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage(self.chip)
        facts = mlp_neurons(trace, self.layer, self.pos)
        hook = self.name("mlp.hook_post")
        rows = [(f"neuron {t['neuron']}", t["value"], hook, (self.pos, t["neuron"])) for t in facts["top"]]
        bars = SignedRows(rows, theme, half_width=1.6, size=LABEL * 0.85)
        head = label(f"strongest of {fmt_int(cfg.d_mlp)} neurons", theme, LABEL)
        left = VGroup(head, bars).arrange(DOWN, buff=0.4)
        cols = 48
        image = values_image(trace[hook][self.pos].numpy(), theme, facts["max"] * 0.5, cols, height=2.6)
        grid_title = label(f"all {fmt_int(cfg.d_mlp)}, {cols} per row", theme, SMALL, color=theme.dim)
        quiet = VGroup(count(facts["near_zero"], theme, f"mlp.near_zero", size=LABEL, index=(self.layer, self.pos)),
                       label("of", theme, LABEL), count(cfg.d_mlp, theme, "config.d_mlp", size=LABEL),
                       label(f"are near zero (grey)", theme, LABEL)).arrange(RIGHT, buff=0.12)
        rule = label(f"|value| < {round(100 * NEAR_ZERO)}% of the strongest", theme, SMALL, color=theme.dim)
        right = Group(grid_title, image, quiet, rule).arrange(DOWN, buff=0.25)
        layout = Group(left, right).arrange(RIGHT, buff=0.8)
        fit_width(layout, config.frame_width - 0.8)
        layout.move_to(DOWN * 0.4)
        t0 = facts["top"][0]
        self.say(f"Which neurons fire most for {self.piece(self.pos)}? "
                 f"The strongest is neuron {t0['neuron']}, at {narration.spoken_number(t0['value'])}.")
        self.play(FadeIn(head), LaggedStart(*[FadeIn(line, shift=0.2 * RIGHT) for line in bars.lines], lag_ratio=0.12),
                  FadeIn(bars.centre), run_time=1.5)
        self.say(f"Here are all {narration.spoken_count(cfg.d_mlp)} neurons, {cols} to a row. Grey means near zero.")
        self.play(FadeIn(grid_title), FadeIn(image), run_time=1)
        quiet_n, share = narration.spoken_count(facts["near_zero"]), narration.spoken_percent(facts["fraction"])
        rule_text = f"below {round(100 * NEAR_ZERO)}% of the strongest"
        if facts["fraction"] >= 0.5:
            self.say(f"Most stay quiet: {quiet_n} of them, or {share}, are {rule_text}.")
        else:
            self.say(f"Only {quiet_n} of them, or {share}, are {rule_text}: fewer quiet neurons than usual.")
        self.play(FadeIn(quiet), FadeIn(rule), run_time=0.8)

    def beat_promotes(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage(self.chip)
        story = self.data.story_neuron_promotes  # the strongest neuron here, and what its row writes toward
        best, promoted = story["neuron"], story["tokens"]
        value = float(trace[self.name("mlp.hook_post")][self.pos, best])
        neuron = VGroup(label(f"neuron {best}", theme, LABEL),
                        VGroup(label("value here", theme, SMALL, color=theme.dim), self.value("mlp.hook_post", best))
                        .arrange(RIGHT, buff=0.12)).arrange(DOWN, buff=0.15)
        row_box = RoundedRectangle(corner_radius=0.08, width=2.7, height=0.7, stroke_color=theme.value, stroke_width=2.5,
                                   fill_color=theme.value, fill_opacity=0.15)
        row_name = label(f"its row of W_out", theme, SMALL).move_to(row_box)
        row = VGroup(row_box, row_name)
        W_U = MatrixBox("W_U", (cfg.d_model, cfg.vocab_size), ("config.d_model", "config.vocab_size"), theme,
                        width=1.5, height=1.0, color=theme.positive)
        bars = ProbabilityBars([(t["piece"], t["push"], (self.layer, best, t["id"]), None) for t in promoted], theme,
                               bar_width=2.2, size=LABEL * 0.9, source="neuron.promotes", value_kind="number")
        bars_title = label("pushed up most", theme, SMALL, color=theme.dim)
        right = VGroup(bars_title, bars).arrange(DOWN, buff=0.3, aligned_edge=LEFT)
        chain = VGroup(neuron, row, W_U, right).arrange(RIGHT, buff=0.9)
        fit_width(chain, config.frame_width - 0.8)
        chain.move_to(DOWN * 0.2)
        arrows = [self.arrow(a, b) for a, b in ((neuron, row), (row, W_U.box), (W_U.box, right))]
        say = narration.spoken_number
        self.say(f"What does neuron {best} do? When it fires, it adds its row of the down-projection "
                 "to the token's vector.")
        self.play(FadeIn(neuron), GrowArrow(arrows[0]), FadeIn(row), run_time=1)
        words = [self.word(t["piece"]) for t in promoted]
        listed = f"{', '.join(words[:-1])} and {words[-1]}" if len(words) > 1 else words[0]
        self.say("Read that row through the unembedding, as if it were the model's output. "
                 f"These tokens gain the most: {listed}.")
        self.play(GrowArrow(arrows[1]), FadeIn(W_U), GrowArrow(arrows[2]), FadeIn(bars_title),
                  LaggedStart(*[FadeIn(line, shift=0.2 * RIGHT) for line in bars.lines], lag_ratio=0.12), run_time=1.5)
        if value < 0:
            note = label("negative here: it pushes these down", theme, SMALL, color=theme.negative)
            self.say(f"But here the neuron's value is negative, {say(value)}. "
                     f"So for {self.piece(self.pos)}, it pushes these tokens down, not up.")
        else:
            note = label("positive here: it pushes these up", theme, SMALL, color=theme.positive)
            self.say(f"Here its value is {say(value)}, so for {self.piece(self.pos)} it pushes them up.")
        note.next_to(chain, DOWN, buff=0.5).align_to(chain, LEFT)
        self.play(FadeIn(note), run_time=0.8)
        self.say(self.theme_verdict(promoted))
        self.wait(0.5)

    def theme_verdict(self, promoted: list[dict]) -> str:
        """What narration says about the promoted tokens: related to the prompt, punctuation, or no clear theme."""
        trace, pos = self.trace, self.pos
        said = []
        own = {trace.tokens[pos]: "the token itself"}
        if pos + 1 < len(trace.tokens):
            own.setdefault(trace.tokens[pos + 1], "the next token in the prompt")
        for t in promoted:
            if t["id"] in own:
                said.append(f"One of them, {self.word(t['piece'])}, is {own[t['id']]}.")
                break
        marks = sum(1 for t in promoted if not any(ch.isalnum() for ch in t["piece"]))
        n = len(promoted)
        if marks >= n - 1 and marks >= 2:
            share = "All" if marks == n else f"{marks} of {n}"
            said.append(f"{share} are punctuation or spaces. A theme of sorts, but it has "
                        f"nothing to do with what {self.piece(pos)} means.")
        elif not said:
            said.append("No clear theme here: they look unrelated. "
                        "What one neuron does is often hard to read from its output alone.")
        return " ".join(said)

    def beat_parameters(self):
        theme, cfg = self.theme, self.trace.config
        self.clear_stage()
        counts = dict(self.data.parameter_counts, attention=self.data.parameter_counts["attention"]["layer"])
        rows = CountBars([("attention", counts["attention"], "params.attention", theme.key),
                          ("MLP", counts["mlp"], "params.mlp", theme.value)], theme, width=6.0, spacing=0.8).lines
        name_w = max(r[0].width for r in rows)
        head = label("parameters in one layer", theme, BODY)
        totals = VGroup(
            VGroup(label("all", theme, LABEL, color=theme.dim), count(cfg.n_layers, theme, "config.n_layers", size=LABEL, color=theme.dim),
                   label("layers:   attention", theme, LABEL, color=theme.dim),
                   count(counts["attention_all"], theme, "params.attention_all", size=LABEL, color=theme.key),
                   label("   MLP", theme, LABEL, color=theme.dim),
                   count(counts["mlp_all"], theme, "params.mlp_all", size=LABEL, color=theme.value)).arrange(RIGHT, buff=0.12),
            VGroup(label("token embeddings", theme, LABEL, color=theme.dim),
                   count(counts["embedding"], theme, "params.embedding", size=LABEL, color=theme.text),
                   label("   whole model", theme, LABEL, color=theme.dim),
                   count(counts["total"], theme, "params.total", size=LABEL, color=theme.text)).arrange(RIGHT, buff=0.12),
        ).arrange(DOWN, buff=0.25)
        panel = VGroup(head, rows, totals).arrange(DOWN, buff=0.6)
        rows.shift(RIGHT * (name_w / 2))
        fit_width(panel, config.frame_width - 1.0)
        panel.move_to(DOWN * 0.3)
        share = counts["mlp_share"]
        n = narration.spoken_count
        self.say(f"Where are the model's parameters? In each layer, attention has {n(counts['attention'])}, "
                 f"and the MLP has {n(counts['mlp'])}.")
        self.play(FadeIn(head), run_time=0.6)
        self.play(LaggedStart(*[GrowFromEdge(r[1], LEFT) for r in rows], lag_ratio=0.3),
                  *[FadeIn(VGroup(r[0], r[2])) for r in rows], run_time=1.5)
        self.say(f"So {narration.spoken_percent(share)} of each layer's weights sit in the MLP. "
                 f"Over all {n(cfg.n_layers)} layers, the MLPs hold {n(counts['mlp_all'])} "
                 f"of the model's {n(counts['total']).removeprefix('about ')}.")
        self.play(FadeIn(totals), run_time=1)
        self.say("Much of what the model has memorised is thought to live there.")
        self.wait(0.5)

    def beat_answer(self):
        trace, theme, cfg = self.trace, self.theme, self.trace.config
        self.clear_stage()
        effects = self.data.direct_effects
        last, answer, logit = len(trace.tokens) - 1, effects["token"], effects["logit"]
        raw = effects["raw_logit"] if cfg.final_softcap else logit  # what the pushes add up to: the logit before the cap
        layers = effects["layers"]
        n = len(layers)
        head = VGroup(label("the model's answer", theme, LABEL, color=theme.dim),
                      token_label(effects["piece"], theme, LABEL, color=theme.accent, source="vocab", index=(answer,)),
                      label("logit", theme, LABEL, color=theme.dim),
                      number(logit, theme, "logits", (last, answer), size=LABEL)).arrange(RIGHT, buff=0.2)
        head.next_to([0, self.stage_top(), 0], DOWN, buff=0.25)
        # the chart: one pair of bars per layer (attention, MLP), up = pushes the answer's logit up
        values = [v for r in layers for v in (r["attention"], r["mlp"])]
        hi, lo = max(0.0, max(values)), min(0.0, min(values))
        span = (hi - lo) or 1.0
        step = nice_ticks(max(hi, -lo), 3)
        step = step[1] - step[0] if len(step) > 1 else 1.0
        ticks = [k * step for k in range(int(np.floor(lo / step)), int(np.ceil(hi / step)) + 1) if lo - 1e-9 <= k * step <= hi + 1e-9]
        decimals = 0 if step >= 1 else 1
        plot = Plot((-0.8, n - 0.2), (lo - 0.04 * span, hi + 0.04 * span), theme, width=8.6, height=3.3,
                    x_ticks=[L for L in range(0, n, 5)] + ([n - 1] if (n - 1) % 5 else []), y_ticks=ticks,
                    x_label="layer", y_decimals=decimals, y_label="push on the logit")
        zero = plot.hline(0.0, theme.dim, dashed=False)
        bars = VGroup()
        self.effect_bars = {}
        for r in layers:
            for kind, dx, color in (("attention", -0.19, theme.key), ("mlp", 0.19, theme.value)):
                v = r[kind]
                a, b = plot.point(r["layer"] + dx - 0.17, 0.0), plot.point(r["layer"] + dx + 0.17, v)
                bar = Rectangle(width=abs(b[0] - a[0]), height=max(0.01, abs(b[1] - a[1])), stroke_width=0,
                                fill_color=color, fill_opacity=0.9)
                bar.move_to((a + b) / 2)
                bars.add(bar)
                self.effect_bars[(kind, r["layer"])] = bar
        legend = VGroup(*[VGroup(Square(0.22, stroke_width=0, fill_color=c, fill_opacity=0.9),
                                 label(name, theme, SMALL, color=theme.dim)).arrange(RIGHT, buff=0.1)
                          for name, c in (("attention", theme.key), ("MLP", theme.value))]).arrange(RIGHT, buff=0.4)
        chart = VGroup(plot, zero, bars)
        legend.next_to(plot, UP, buff=0.1).align_to(plot, RIGHT)
        # the largest pushes, named
        pushes = sorted(((r[kind], kind, r["layer"]) for r in layers for kind in ("attention", "mlp")), reverse=True)
        top = [p for p in pushes[:3] if p[0] > 0]
        low = pushes[-1] if pushes[-1][0] < 0 and abs(pushes[-1][0]) >= 0.1 * abs(raw) else None
        named = top + ([low] if low else [])
        rows = [(f"{'MLP' if kind == 'mlp' else 'attn'} {L}", v, f"effect.{kind}", (L,)) for v, kind, L in named]
        table = SignedRows(rows, theme, half_width=1.3, size=LABEL * 0.85)
        table_title = label("largest pushes", theme, SMALL, color=theme.dim)
        side = VGroup(table_title, table).arrange(DOWN, buff=0.3)
        attn_sum = sum(r["attention"] for r in layers)
        mlp_sum = sum(r["mlp"] for r in layers)
        ending = [label("  =  logit", theme, SMALL, color=theme.dim), number(logit, theme, "logits", (last, answer), size=SMALL)]
        if cfg.final_softcap:  # the pushes add up to the logit before the cap (Gemma 2): show both
            ending = [label("  =", theme, SMALL, color=theme.dim), number(raw, theme, "effect.raw_logit", (), size=SMALL),
                      label("  capped: logit", theme, SMALL, color=theme.dim), ending[1]]
        sums = VGroup(label("in all:  attention", theme, SMALL, color=theme.dim),
                      number(attn_sum, theme, "effect.attention_sum", (), size=SMALL),
                      label("  MLP", theme, SMALL, color=theme.dim), number(mlp_sum, theme, "effect.mlp_sum", (), size=SMALL),
                      label("  embedding", theme, SMALL, color=theme.dim),
                      number(effects["embed"], theme, "effect.embed", (), size=SMALL), *ending).arrange(RIGHT, buff=0.12)
        body = VGroup(VGroup(chart, legend), side).arrange(RIGHT, buff=0.7)
        fit_width(body, config.frame_width - 0.8)
        body.next_to(head, DOWN, buff=0.35).set_x(0)
        sums.next_to(body, DOWN, buff=0.35).set_x(0)
        fit_width(sums, config.frame_width - 0.8)
        say, word = narration.spoken_number, self.word(effects["piece"])
        self.say(f"One last question: which layers put the answer in? After the whole prompt, "
                 f"the model's top guess is {word}, with a logit of {say(logit)}."
                 + (f" This model caps its logits; before the cap, this one was {say(raw)}." if cfg.final_softcap else ""))
        self.play(FadeIn(head), run_time=0.8)
        self.say("Every layer's attention and MLP write into the last token's vector. "
                 "Read through the unembedding, each one pushes that logit up or down.")
        self.play(FadeIn(plot), FadeIn(zero), FadeIn(legend), run_time=0.8)
        self.play(LaggedStart(*[GrowFromEdge(b, DOWN) for b in bars], lag_ratio=0.02), run_time=2)
        self.say(self.answer_verdict(top, raw))
        marks = [self.effect_bars[(kind, L)] for _, kind, L in named]
        self.play(FadeIn(table_title), LaggedStart(*[FadeIn(line, shift=0.2 * RIGHT) for line in table.lines], lag_ratio=0.15),
                  FadeIn(table.centre), *[b.animate.set_stroke(theme.accent, width=2.5) for b in marks], run_time=1.2)
        if low:
            v, kind, L = low
            name = self.part_name(kind, L)
            self.say(f"{name[0].upper()}{name[1:]} pushes the other way, by {say(abs(v))}.")
            self.play(Indicate(self.effect_bars[(kind, L)], color=theme.accent), run_time=0.8)
        more = "the MLPs add more than attention" if mlp_sum > attn_sum else "attention adds more than the MLPs"
        self.say(f"In all, the MLPs add {say(mlp_sum)} and attention {say(attn_sum)}: here {more}. "
                 "This counts only what each part writes straight to the answer, not how it helps later layers.")
        self.play(FadeIn(sums), run_time=0.8)
        if cfg.final_softcap:
            self.say(f"These parts add up to the logit before the cap. The cap is soft: {say(cfg.final_softcap)} times "
                     f"the tanh of the logit over {say(cfg.final_softcap)}. So {say(raw)} becomes {say(logit)}.")
            self.play(Indicate(sums[-1], color=theme.accent), run_time=0.8)

    @staticmethod
    def part_name(kind: str, layer: int) -> str:
        return f"the MLP of layer {layer}" if kind == "mlp" else f"attention in layer {layer}"

    def answer_verdict(self, top: list[tuple], logit: float) -> str:
        """The largest pushes, said honestly: most of the logit, the biggest share, or no layer dominating."""
        say = narration.spoken_number
        if not top:
            return "No part pushes this answer up much on its own."
        v, kind, L = top[0]
        name = self.part_name(kind, L)
        share = v / logit if logit > 0 else 0.0
        if share >= 0.5:
            text = f"Most of it comes from {name}: {say(v)} of the {say(logit)}."
        elif share >= 0.3:
            text = f"The biggest push comes from {name}: {say(v)} of the {say(logit)}."
        else:
            text = (f"No single layer dominates. The biggest push, from {name}, is only {say(v)} "
                    f"of the {say(logit)}.")
        rest = [f"{self.part_name(k, l)}, with {say(x)}" for x, k, l in top[1:]]
        if rest:
            text += f" Next come {', and '.join(rest)}." if len(rest) > 1 else f" Next comes {rest[0]}."
        return text
