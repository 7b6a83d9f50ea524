"""Course files: several lectures rendered over a matrix of prompts, models, themes, qualities
and formats (`render.py batch COURSE.toml`).

    title = "Transformers, week 1"
    out = "course"                      # optional; --out wins

    [matrix]                            # every lecture is rendered once per combination
    prompts = ["The capital of France is", "Michael Jordan plays the sport of"]
    models = ["smollm2-135m"]
    themes = ["dark", "light"]
    qualities = ["low"]
    formats = ["mp4"]

    [defaults]                          # any lecture option, for every scene of every lecture
    voice = "none"

    [[lecture]]
    file = "intro.toml"                 # a lecture file, relative to this file

    [[lecture]]
    title = "Attention"
    scenes = ["qkv", { name = "attention-pattern", layer = 2 }]   # or inline scenes

Options of one scene, weakest first: the built-in defaults, the course's [defaults], the
lecture file's [defaults] and the scene's own options, then the matrix (a dimension the matrix
does not list keeps the scene's value). Errors name the line.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import UserError

from .lecture_file import LectureScene, check_options, line_of, line_start, load_lecture, read_text_file, table_lines

TOP_KEYS = {"title", "out", "jobs", "matrix", "defaults", "lecture"}
LECTURE_KEYS = {"title", "file", "scenes"}
# matrix key -> the scene option each of its values sets
DEFAULTS_LINE, JOBS_LINE, OUT_LINE, MATRIX_LINE = r"^[ \t]*defaults", r"^[ \t]*jobs\s*=", r"^[ \t]*out\s*=", r"^[ \t]*matrix"
MATRIX = {"prompts": "prompt", "models": "model", "themes": "theme", "qualities": "quality", "formats": "format"}


@dataclass
class CourseLecture:
    title: str
    scenes: list[LectureScene]
    sections: bool = False
    line: int = 0


@dataclass
class Course:
    title: str
    lectures: list[CourseLecture]
    matrix: dict[str, list] = field(default_factory=dict)  # scene option -> its values, e.g. {"prompt": [...]}
    out: str | None = None
    jobs: int | None = None


def load_course(path: Path, known_scenes: list[str]) -> Course:
    path = Path(path)
    text = read_text_file(path, "course file")  # a regular UTF-8 file of sane size, never /dev/zero or a pipe
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: TOML syntax error: {e}") from None

    for key in data:
        if key not in TOP_KEYS:
            where = line_of(text, rf"^[ \t]*\[*{re.escape(key)}\s*[=.\]]")
            raise UserError(f"{path}:{where}: unknown key {key!r} in a course file (allowed: {', '.join(sorted(TOP_KEYS))})")
    matrix = load_matrix(path, text, data.get("matrix", {}))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UserError(f"{path}:{line_of(text, DEFAULTS_LINE)}: defaults must be a table, e.g. [defaults]")
    check_options(path, text, defaults, line_of(text, r"^[ \t]*\[defaults\]"))

    entries = data.get("lecture", [])
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: a course needs at least one [[lecture]] table")
    lines = table_lines(text, "lecture")
    lectures = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else 0
        lectures.append(load_entry(path, text, entry, line, defaults, known_scenes, i + 1))
    titles = [lecture.title for lecture in lectures]
    for i, title in enumerate(titles):
        if title in titles[:i]:
            raise UserError(f"{path}:{lectures[i].line}: two lectures are titled {title!r}: give each its own title")
    jobs = data.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise UserError(f"{path}:{line_of(text, JOBS_LINE)}: jobs must be a whole number >= 1")
    out = data.get("out")
    if out is not None and (not isinstance(out, str) or not out.strip()):
        raise UserError(f"{path}:{line_of(text, OUT_LINE)}: out must be a folder name")
    return Course(str(data.get("title", path.stem)), lectures, matrix, out, jobs)


def load_matrix(path: Path, text: str, matrix) -> dict[str, list]:
    start = line_of(text, r"^[ \t]*\[matrix\]")
    if not isinstance(matrix, dict):
        raise UserError(f"{path}:{line_of(text, MATRIX_LINE)}: matrix must be a table, e.g. [matrix]")
    found = {}
    for key, values in matrix.items():
        where = line_of(text, rf"^[ \t]*{re.escape(key)}\s*=", line_start(text, start) if start else 0) or start
        if key not in MATRIX:
            close = difflib.get_close_matches(key, MATRIX, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(MATRIX)})"
            raise UserError(f"{path}:{where}: unknown matrix key {key!r}{hint}")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise UserError(f"{path}:{where}: matrix {key} must be a non-empty list of strings, e.g. {key} = [\"...\"]")
        if len(set(values)) != len(values):
            raise UserError(f"{path}:{where}: matrix {key} lists a value twice")
        found[MATRIX[key]] = list(values)
    return found


def load_entry(path: Path, text: str, entry, line: int, defaults: dict, known_scenes: list[str], number: int) -> CourseLecture:
    if not isinstance(entry, dict):
        raise UserError(f"{path}:{line}: a [[lecture]] must be a table")
    for key in entry:
        if key not in LECTURE_KEYS:
            where = line_of(text, rf"^[ \t]*{re.escape(key)}\s*=", line_start(text, line)) or line
            raise UserError(f"{path}:{where}: unknown key {key!r} in a [[lecture]] (allowed: {', '.join(sorted(LECTURE_KEYS))})")
    if ("file" in entry) == ("scenes" in entry):
        raise UserError(f"{path}:{line}: a [[lecture]] needs either file = \"lecture.toml\" or scenes = [...], not "
                        + ("both" if "file" in entry else "neither"))
    title = entry.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise UserError(f"{path}:{line}: a lecture's title must be some text")
    if "file" in entry:
        if not isinstance(entry["file"], str):
            raise UserError(f"{path}:{line}: file must be a path, e.g. file = \"intro.toml\"")
        lecture = load_lecture(path.parent / entry["file"], known_scenes)  # its own errors name its own lines
        scenes = [LectureScene(s.name, {**defaults, **s.options}, s.line) for s in lecture.scenes]
        return CourseLecture(title or lecture.title, scenes, lecture.sections, line)
    items = entry["scenes"]
    if not isinstance(items, list) or not items:
        raise UserError(f"{path}:{line}: scenes must be a non-empty list, e.g. scenes = [\"tokens\", \"embeddings\"]")
    scenes = []
    for item in items:
        options = {} if isinstance(item, str) else dict(item) if isinstance(item, dict) else None
        name = item if isinstance(item, str) else options.pop("name", None) if options is not None else None
        if not isinstance(name, str):
            raise UserError(f"{path}:{line}: each scene is a name or a table with a name, e.g. {{ name = \"qkv\", layer = 2 }}")
        if name not in known_scenes:
            close = difflib.get_close_matches(name, known_scenes, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = line_of(text, rf"[\"']{re.escape(name)}[\"']", line_start(text, line)) or line
            raise UserError(f"{path}:{where}: unknown scene {name!r}{hint}")
        check_options(path, text, options, line)
        scenes.append(LectureScene(name, {**defaults, **options}, line))
    return CourseLecture(title or f"Lecture {number}", scenes, False, line)
