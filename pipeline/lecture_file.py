"""Lecture files: a TOML list of scenes with global defaults and per-scene options.

    title = "How a transformer reads a sentence"
    [defaults]
    prompt = "The fluffy blue creature roamed the verdant forest"
    quality = "medium"

    [[scene]]
    name = "tokens"

    [[scene]]
    name = "attention-pattern"
    title = "Who looks at whom"          # the page's heading for this clip (default: the scene's name)
    notes = "Pause on the third beat."   # shown under the clip
    layer = 1
    head = "auto"

Errors name the line: TOML syntax errors, unknown keys, unknown scenes.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import UserError

# Options a lecture may set globally ([defaults]) or per scene, with their types.
OPTIONS: dict[str, type | tuple[type, ...]] = {
    "prompt": str, "model": str, "device": str, "layer": (int, str), "head": (int, str), "quality": str,
    "fps": int, "format": str, "theme": str, "seed": int, "analogy": str, "voice": str, "speed": (int, float),
    "burn_captions": bool, "query": (str, int), "key": (str, int),
}
TOP_KEYS = {"title", "defaults", "scene", "out", "sections", "jobs"}
DEVICES = ("auto", "cuda", "cpu")


PAGE_KEYS = ("title", "notes")  # per scene, for the page (and speaker notes): text, not render options


@dataclass
class LectureScene:
    name: str
    options: dict = field(default_factory=dict)  # defaults merged with the scene's own
    line: int = 0
    title: str = ""  # the page's heading for this clip ("" = the scene's own)
    notes: str = ""  # the lecturer's notes, shown under the clip


@dataclass
class Lecture:
    title: str
    scenes: list[LectureScene]
    out: str | None = None
    sections: bool = False
    jobs: int | None = None


def line_of(text: str, pattern: str, start: int = 0) -> int:
    """1-based line of the first match of `pattern` at or after character `start`, or 0."""
    m = re.compile(pattern, re.M).search(text, start)
    return text.count("\n", 0, m.start()) + 1 if m else 0


def table_lines(text: str, name: str) -> list[int]:
    """1-based line of every [[name]] header, counted in one pass."""
    lines, line, last = [], 1, 0
    for m in re.finditer(rf"^[ \t]*\[\[\s*{re.escape(name)}\s*\]\]", text, re.M):
        line += text.count("\n", last, m.start())
        last = m.start()
        lines.append(line)
    return lines


def load_lecture(path: Path, known_scenes: list[str]) -> Lecture:
    path = Path(path)
    text = read_text_file(path, "lecture file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: TOML syntax error: {e}") from None  # tomllib's message ends with (at line N, column M)

    for key in data:
        if key not in TOP_KEYS:
            where = line_of(text, rf"^[ \t]*\[?{re.escape(key)}\s*[=.\]]")
            raise UserError(f"{path}:{where}: unknown key {key!r} (allowed: {', '.join(sorted(TOP_KEYS))})")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        where = line_of(text, r"^[ \t]*\[?defaults")
        raise UserError(f"{path}:{where}: defaults must be a table ([defaults]), "
                        f"not a {type(defaults).__name__}")
    check_options(path, text, defaults, line_of(text, r"^[ \t]*\[defaults\]"))
    entries = data.get("scene", [])
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: a lecture needs at least one [[scene]] table")
    if not all(isinstance(entry, dict) for entry in entries):
        where = line_of(text, r"^[ \t]*\[*\s*scene")
        raise UserError(f"{path}:{where}: scene must be a list of [[scene]] tables, "
                        "each with a name")
    for key, kind, wanted in (("title", str, "a string"), ("sections", bool, "true or false")):
        if key in data and not isinstance(data[key], kind):
            where = line_of(text, rf"^[ \t]*{key}\s*=")
            raise UserError(f"{path}:{where}: {key} must be {wanted}, "
                            f"not {type(data[key]).__name__}")
    if "out" in data:
        problem = out_problem(data["out"])
        if problem:
            where = line_of(text, r"^[ \t]*out\s*=")
            raise UserError(f"{path}:{where}: out {problem}")
    lines = table_lines(text, "scene")
    scenes = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else line_of(text, r"^[ \t]*scene\s*=")  # scene = [{...}]: no [[scene]] lines
        name = entry.get("name")
        if not isinstance(name, str):
            raise UserError(f"{path}:{line}: this [[scene]] needs a name, e.g. name = \"tokens\"")
        if name not in known_scenes:
            close = difflib.get_close_matches(name, known_scenes, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = line_of(text, r"name\s*=", line_start(text, line))
            raise UserError(f"{path}:{where}: unknown scene {name!r}{hint}")
        page = {k: entry[k] for k in PAGE_KEYS if k in entry}
        for key, value in page.items():
            if not isinstance(value, str):
                where = line_of(text, rf"^[ \t]*{key}\s*=", line_start(text, line)) or line
                raise UserError(f"{path}:{where}: {key} must be text in quotes, not {type(value).__name__}")
        own = {k: v for k, v in entry.items() if k != "name" and k not in PAGE_KEYS}
        check_options(path, text, own, line)
        scenes.append(LectureScene(name, {**defaults, **own}, line, page.get("title", ""), page.get("notes", "")))
    jobs = data.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        where = line_of(text, r"^[ \t]*jobs\s*=")
        raise UserError(f"{path}:{where}: jobs must be a whole number >= 1")
    return Lecture(str(data.get("title", path.stem)), scenes, data.get("out"), bool(data.get("sections", False)), jobs)


MAX_FILE_BYTES = 16 << 20  # a lecture of 10,000 scenes is about 300 kB


def read_text_file(path: Path, what: str) -> str:
    """A lecture or course file's text: a regular file (a link to one is fine) of UTF-8 text, at most
    MAX_FILE_BYTES; /dev/zero, a pipe or a folder is refused with one line, never read forever."""
    from model.cache import read_plain

    try:
        data = read_plain(path.resolve(), MAX_FILE_BYTES)
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{line}: the {what} is not UTF-8 text (byte 0x{data[e.start]:02X}); save it as UTF-8") from None


def out_problem(out) -> str | None:
    """Why a lecture's `out` cannot name a folder, or None (the rules of the --out option)."""
    if not isinstance(out, str):
        return f"must be a string naming a folder, not {type(out).__name__}"
    if not out.strip():
        return "is empty: name a folder, e.g. out = \"lecture\""
    if any(ord(c) < 32 or ord(c) == 127 for c in out):
        return f"{out!r} contains a control character (a newline?): name a plain folder"
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in Path(out).parts):
        return "has a folder name over 255 bytes, longer than filesystems allow"
    return None


def line_start(text: str, line: int) -> int:
    """Character offset where 1-based `line` begins."""
    offset = 0
    for _ in range(max(line - 1, 0)):
        offset = text.index("\n", offset) + 1
    return offset


def check_options(path: Path, text: str, options: dict, table_line: int) -> None:
    """Refuse unknown options and wrong types, naming the line (found only when there is an
    error: a lecture of thousands of scenes is checked in linear time)."""
    def where() -> int:
        start = line_start(text, table_line) if table_line else 0
        return line_of(text, rf"^[ \t]*{re.escape(key)}\s*=", start) or table_line

    for key, value in options.items():
        if key not in OPTIONS:
            close = difflib.get_close_matches(key, OPTIONS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            allowed = ", ".join(["name", *PAGE_KEYS, *OPTIONS]) if table_line else ", ".join(OPTIONS)
            raise UserError(f"{path}:{where()}: unknown option {key!r}{hint} (allowed: {allowed})")
        if not isinstance(value, OPTIONS[key]) or (isinstance(value, bool) and OPTIONS[key] is not bool):
            raise UserError(f"{path}:{where()}: option {key!r} has the wrong type ({type(value).__name__})")
        if key == "device" and value not in DEVICES:
            raise UserError(f"{path}:{where()}: device must be one of {', '.join(DEVICES)}, not {value!r}")
