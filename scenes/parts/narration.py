"""Narration text: subtitle cues cut from what a beat says, and the words the voice reads.

A beat says one or more sentences (`TransformerScene.say`). The text is cut into cues a
viewer can read: at most two lines of at most 42 characters, cut where a speaker would
pause (sentence ends, then commas, colons and dashes, then before "and", "but", "so" ...),
never inside a word. The voice reads each cue on its own, so what is heard while a cue is
on screen is exactly that cue.

Numbers in narration are rounded the way a person says them (`spoken_percent`,
`spoken_number`); the voice reads digits itself ("83%" -> "eighty-three percent").
Never imports manim.
"""

from __future__ import annotations

import math
import re
import textwrap

LINE = 42  # characters per subtitle line
LINES = 2  # lines per cue
READING_CPS = 15.0  # silent renders: characters a second of caption
MAX_CPS = 17.0  # no cue is on screen for less than len / MAX_CPS seconds

# Where a cue may end, best first: after a sentence, after a clause mark, before a conjunction.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
CLAUSE_END = re.compile(r"(?<=[,;:])\s+|\s+(?=[—–]\s)|(?<=\))\s+")
BEFORE_WORD = re.compile(r"\s+(?=(?:and|but|so|which|because|then|while|where|when|with|into|from|than|or|that|to|of)\b)")

# What the voice should read for signs it would drop or misread (espeak reads "ΔE" as "delta"
# and "<0.1%" as "zero point one percent").
SPOKEN = [
    (re.compile(r"Δ\s?E"), "delta E"),
    (re.compile(r"Δ"), "delta "),
    (re.compile(r"<\s?(?=\d)"), "under "),
    (re.compile(r">\s?(?=\d)"), "over "),
    (re.compile(r"≈\s?"), "about "),
    (re.compile(r"\s?×\s?"), " times "),
    (re.compile(r"\s?→\s?"), " to "),
    (re.compile(r"e\^x"), "e to the x"),
    (re.compile(r"√"), "square root of "),
    (re.compile(r"·"), " dot "),
    (re.compile(r"[“”\"]"), ""),
    (re.compile(r"␣"), " space "),
    (re.compile(r"↵"), " newline "),
]


def spoken(text: str) -> str:
    """The words the voice reads for a cue (its lines joined, signs spelled out)."""
    text = " ".join(text.split())
    for pattern, words in SPOKEN:
        text = pattern.sub(words, text)
    return " ".join(text.split())


BINDS = {"minus", "plus", "a", "an", "the", "of", "to", "and", "layer", "head", "token", "t", "="}  # keep with what follows


def lines(text: str) -> list[str]:
    """A cue's text as subtitle lines: one line if it fits, else two of about equal length."""
    text = " ".join(text.split())
    if len(text) <= LINE:
        return [text]
    words = text.split(" ")
    best = None
    for i in range(1, len(words)):  # the most even cut between words, never right after a word that leads into the next
        a, b = " ".join(words[:i]), " ".join(words[i:])
        if words[i - 1].lower() in BINDS and best is not None:
            continue
        if len(a) <= LINE and len(b) <= LINE and (best is None or abs(len(a) - len(b)) < abs(len(best[0]) - len(best[1]))
                                                  or best[0].split(" ")[-1].lower() in BINDS):
            best = (a, b)
    if best is None:  # a word longer than a line: textwrap breaks it
        return textwrap.wrap(text, LINE, break_long_words=True)
    return list(best)


def fits(text: str) -> bool:
    return len(lines(text)) <= LINES


def pieces(text: str, pattern: re.Pattern) -> list[str]:
    """`text` split where `pattern` matches, but never inside a quotation (“...”): a quoted
    sentence such as “Paris. To find the” stays in one piece."""
    out: list[str] = []
    for part in (p.strip() for p in pattern.split(text)):
        if not part:
            continue
        if out and out[-1].count("“") > out[-1].count("”"):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def cues(text: str) -> list[str]:
    """Cut narration text into subtitle cues (each a string with its lines joined by newlines)."""
    out: list[str] = []
    for sentence in pieces(text, SENTENCE_END):
        out += [ "\n".join(lines(c)) for c in cut(sentence, [CLAUSE_END, BEFORE_WORD])]
    return out


def cut(text: str, patterns: list[re.Pattern]) -> list[str]:
    """Greedy: join phrases (split by the first pattern) while they fit one cue; a phrase too
    long on its own is cut by the next pattern, and in the end between words."""
    if fits(text):
        return [text]
    if not patterns:
        return [" ".join(chunk) for chunk in word_chunks(text.split())]
    out: list[str] = []
    current = ""
    for phrase in pieces(text, patterns[0]):
        joined = f"{current} {phrase}".strip()
        if fits(joined):
            current = joined
            continue
        if current:
            out.append(current)
        if fits(phrase):
            current = phrase
        else:
            parts = cut(phrase, patterns[1:])
            out += parts[:-1]
            current = parts[-1]
    if current:
        out.append(current)
    return balance(out)


def word_chunks(words: list[str]) -> list[list[str]]:
    chunks, current = [], []
    for w in words:
        if current and not fits(" ".join(current + [w])):
            chunks.append(current)
            current = []
        current.append(w)
    return chunks + [current] if current else chunks


def balance(parts: list[str]) -> list[str]:
    """Avoid a last cue of one or two words: move words from the cue before while both fit."""
    if len(parts) < 2:
        return parts
    last, before = parts[-1].split(), parts[-2].split()
    while len(last) < 3 and len(before) > 3 and fits(" ".join([before[-1], *last])):
        last.insert(0, before.pop())
    return parts[:-2] + [" ".join(before), " ".join(last)]


def reading_seconds(cue: str) -> float:
    """How long a silent render keeps a cue up: reading speed, at least a second and a half."""
    return max(1.5, len(cue.replace("\n", " ")) / READING_CPS)


# ------------------------------------------------------------------ numbers for the ear
def spoken_percent(p: float) -> str:
    """A probability the way a person says it: "83%", "4.2%", "under 1%", "almost all"."""
    pct = 100 * p
    if pct >= 99.5:
        return "almost 100%" if pct < 99.95 else "100%"
    if pct >= 9.5:
        return f"{pct:.0f}%"
    if pct >= 0.95:
        return f"{pct:.1f}%".replace(".0%", "%")
    if pct >= 0.05:
        return "under 1%"
    return "almost 0%"


def spoken_number(x: float, digits: int = 2) -> str:
    """A measured value as said aloud: `digits` significant figures (whole numbers kept whole),
    "minus" for negatives: 0.8347 -> "0.83", -1.502 -> "minus 1.5", 143.2 -> "143"."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    magnitude = math.floor(math.log10(abs(x)))
    text = f"{abs(x):.{max(0, digits - 1 - magnitude)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text.strip("0") == "":
        return "0"
    return ("minus " if x < 0 else "") + text


def spoken_count(n: int) -> str:
    """A big count the way a person says it: "1,536", "about 135 million", "about 80 million",
    "about 4.7 billion" (one decimal under ten, whole numbers above)."""
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if n >= size:
            value = n / size
            text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
            return f"about {text} {word}" if float(text) * size != n else f"{text} {word}"
    return f"{n:,}"


# Tokens a voice would swallow (it drops the quotes and most punctuation): named instead.
PUNCTUATION = {",": "a comma", ".": "a full stop", ":": "a colon", ";": "a semicolon", "!": "an exclamation mark",
               "?": "a question mark", "-": "a dash", "—": "a dash", "–": "a dash", "'": "an apostrophe",
               '"': "a quotation mark", "(": "an opening bracket", ")": "a closing bracket", "/": "a slash",
               "\\": "a backslash", "...": "an ellipsis", "…": "an ellipsis"}


def spoken_token(piece: str) -> str:
    """A token as narration names it: the word in quotes (“fluffy”), or what it is when it is not a word."""
    text = piece.strip()
    if re.fullmatch(r"(<0x[0-9A-Fa-f]{2}>)+", text):
        return "a byte piece"
    if not text:
        return {"\n": "a newline", " ": "a space"}.get(piece[:1], "a blank piece")
    if text in PUNCTUATION:
        return PUNCTUATION[text]
    return f"“{text}”"
