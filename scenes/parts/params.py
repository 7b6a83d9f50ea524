"""Live parameters of a render, with their defaults (the one place they are set). Never
imports manim (the CLI's option checks stay fast).

A scene reads its parameters from environment variables, so the same file renders from
`python render.py render ...` (which sets them for each worker) and from plain manim
(`manim -ql scenes/tokens.py Tokens`, defaults or variables you export):

    MT_PROMPT   the prompt                       (default: The fluffy blue creature roamed the verdant forest)
    MT_MODEL    smollm2-135m, a .gguf file or a Hugging Face folder   (default: smollm2-135m)
    MT_DEVICE   auto | cpu | cuda                (default: auto; only used when a trace is not cached)
    MT_LAYER    layer number or "auto"           (default: auto)
    MT_HEAD     head number or "auto"            (default: auto; see facts.attention.choose_head)
    MT_QUERY    the story's query token, as typed: "traveled", "traveled@14" or "14"
                                                 (default: empty = the auto rule; see facts.attention.choose_cells)
    MT_KEY      the story's key token, the same way (default: empty = the query's strongest key)
    MT_THEME    dark | light                     (default: dark)
    MT_SEED     integer seed for sampling        (default: 0)
    MT_ANALOGY  word-vectors' second analogy, "uncle-man+woman" or "uncle,man,woman"
                                                 (default: uncle-man+woman)
    MT_VOICE    joe | none: the narrating voice  (default: joe; none = silent, paced at reading speed)
    MT_SPEED    speech rate, 0.5 to 2            (default: 1)
    MT_BURN_CAPTIONS  1 = draw the captions into the picture (default: 0)
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

from model.errors import UserError

from .voice import parse_speed, parse_voice

DEFAULT_PROMPT = "The fluffy blue creature roamed the verdant forest"
DEFAULT_MODEL = "smollm2-135m"
DEFAULT_ANALOGY = ("uncle", "man", "woman")
FIRST_ANALOGY = ("king", "man", "woman")

def parse_choice(value: str | None, what: str) -> int | None:
    """'auto' / None / '' -> None; a non-negative integer string -> int; else a UserError."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise UserError(f"--{what} must be a number or 'auto', not {value!r}") from None
    if n < 0:
        raise UserError(f"--{what} must not be negative, not {n}")
    return n


def parse_analogy(text: str) -> tuple[str, str, str]:
    """"uncle-man+woman" or "uncle,man,woman" -> ("uncle", "man", "woman")."""
    m = re.fullmatch(r"\s*([^\s,+\-]+)\s*-\s*([^\s,+\-]+)\s*\+\s*([^\s,+\-]+)\s*", text)
    parts = m.groups() if m else tuple(p.strip() for p in text.split(","))
    if len(parts) != 3 or not all(parts):
        raise UserError(f"an analogy is three words, e.g. uncle-man+woman or uncle,man,woman; not {text!r}")
    return parts  # type: ignore[return-value]


@dataclass(frozen=True)
class Params:
    prompt: str = DEFAULT_PROMPT
    model: str = DEFAULT_MODEL
    device: str = "auto"
    layer: int | None = None
    head: int | None = None
    query: str | None = None  # a token as typed (resolved against the prompt by facts.attention.token_position)
    key: str | None = None
    theme: str = "dark"
    seed: int = 0
    analogy: tuple[str, str, str] = DEFAULT_ANALOGY
    voice: str = "joe"
    speed: float = 1.0
    burn_captions: bool = False

    @classmethod
    def from_env(cls, env=None) -> "Params":
        env = os.environ if env is None else env
        theme = env.get("MT_THEME", "dark") or "dark"
        if theme not in ("dark", "light"):
            raise UserError(f"theme must be dark or light, not {theme!r}")
        try:
            seed = int(env.get("MT_SEED", "0") or 0)
        except ValueError:
            raise UserError(f"seed must be an integer, not {env.get('MT_SEED')!r}") from None
        return cls(
            prompt=env.get("MT_PROMPT") or DEFAULT_PROMPT,
            model=env.get("MT_MODEL") or DEFAULT_MODEL,
            device=env.get("MT_DEVICE") or "auto",
            layer=parse_choice(env.get("MT_LAYER"), "layer"),
            head=parse_choice(env.get("MT_HEAD"), "head"),
            query=env.get("MT_QUERY") or None,
            key=env.get("MT_KEY") or None,
            theme=theme,
            seed=seed,
            analogy=parse_analogy(env["MT_ANALOGY"]) if env.get("MT_ANALOGY") else DEFAULT_ANALOGY,
            voice=parse_voice(env.get("MT_VOICE")),
            speed=parse_speed(env.get("MT_SPEED")),
            burn_captions=(env.get("MT_BURN_CAPTIONS") or "0").strip().lower() in ("1", "true", "yes"),
        )

    def to_env(self) -> dict[str, str]:
        return {
            "MT_PROMPT": self.prompt,
            "MT_MODEL": self.model,
            "MT_DEVICE": self.device,
            "MT_LAYER": "auto" if self.layer is None else str(self.layer),
            "MT_HEAD": "auto" if self.head is None else str(self.head),
            "MT_QUERY": self.query or "",
            "MT_KEY": self.key or "",
            "MT_THEME": self.theme,
            "MT_SEED": str(self.seed),
            "MT_ANALOGY": "{}-{}+{}".format(*self.analogy),
            "MT_VOICE": self.voice,
            "MT_SPEED": repr(self.speed),
            "MT_BURN_CAPTIONS": "1" if self.burn_captions else "0",
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["analogy"] = list(self.analogy)
        return d
