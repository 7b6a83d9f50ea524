"""Text outlines kept on disk, so that each process does not parse the same SVG again.

A manim `Text` asks Pango for an SVG of the string (manim keeps that file), then parses it with
svgelements and turns every glyph into a VMobject: about 60 ms a label, half of what building a
scene costs, paid again by every worker process. manim keeps parsed texts in memory only
(SVG_HASH_TO_MOB_MAP), for the life of one process.

Here the parse's result is written to the project cache, as data: for every glyph, each attribute
of the mobject (arrays as their exact bytes, numbers, strings, colours, manim's enums), and for
the Text the attributes the parse changed. A later process rebuilds the same objects from it,
bit for bit (tests/test_glyphs.py compares whole objects and drawn frames). The key is a hash of
the SVG file's bytes, the style defaults the parse applies, the manim and svgelements versions
and this file's own source. An entry that does not hold exactly what is expected is ignored and written again;
anything this format cannot hold exactly (an attribute of another type) is parsed as before and
not cached.
"""

from __future__ import annotations

import base64
import enum
import functools
from importlib.metadata import version
from pathlib import Path

import numpy as np
from manim.constants import CapStyleType, LineJointType
from manim.mobject.svg.svg_mobject import SVG_HASH_TO_MOB_MAP, SVGMobject, VMobjectFromSVGPath
from manim.mobject.text.text_mobject import Text
from manim.mobject.types.vectorized_mobject import VGroup
from manim.utils.color import ManimColor
from manim.utils.iterables import hash_obj

from model.cache import entry_path, read_json, sha256_file, sha256_text, write_json

ENUMS = {cls.__name__: cls for cls in (LineJointType, CapStyleType)}
NUMBERS = (bool, int, float, str, type(None))
DTYPES = ("float64", "int64", "bool")


class Unstorable(Exception):
    """A value this format cannot hold exactly."""


def encode(value):
    """A value as JSON, exactly; raises Unstorable for anything else."""
    if isinstance(value, NUMBERS) and not isinstance(value, enum.Enum):
        return value if not isinstance(value, float) or np.isfinite(value) else {"float": repr(value)}
    if type(value) is np.ndarray and value.dtype.name in DTYPES:
        return {"array": base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii"),
                "dtype": value.dtype.name, "shape": list(value.shape)}
    if isinstance(value, np.floating | np.integer) and type(value).__name__ in ("float64", "int64"):
        return {"scalar": type(value).__name__, "value": value.item()}
    if type(value) is ManimColor:
        return {"color": encode(value._internal_value)}
    if isinstance(value, enum.Enum) and ENUMS.get(type(value).__name__) is type(value):
        return {"enum": type(value).__name__, "name": value.name}
    if type(value) in (list, tuple):
        return {type(value).__name__: [encode(v) for v in value]}
    raise Unstorable(type(value).__name__)


def decode(value):
    if not isinstance(value, dict):
        return value
    if "array" in value:
        if value["dtype"] not in DTYPES:
            raise ValueError("odd dtype")
        raw = base64.b64decode(value["array"], validate=True)
        return np.frombuffer(raw, dtype=value["dtype"]).reshape(value["shape"]).copy()
    if "float" in value:
        return float(value["float"])
    if "scalar" in value:
        return getattr(np, value["scalar"])(value["value"])
    if "color" in value:
        return ManimColor(decode(value["color"]))
    if "enum" in value:
        return ENUMS[value["enum"]][value["name"]]
    if "list" in value:
        return [decode(v) for v in value["list"]]
    if "tuple" in value:
        return tuple(decode(v) for v in value["tuple"])
    raise ValueError("not an encoded value")


def encode_glyph(mob) -> dict:
    if type(mob) is not VMobjectFromSVGPath or mob.submobjects or mob.updaters:
        raise Unstorable(type(mob).__name__)
    # path_obj: the svgelements path the points were read from, used only while making them
    return {key: encode(value) for key, value in mob.__dict__.items() if key != "path_obj"}


def decode_glyph(attributes: dict) -> VMobjectFromSVGPath:
    glyph = VMobjectFromSVGPath.__new__(VMobjectFromSVGPath)
    glyph.__dict__.update({key: decode(value) for key, value in attributes.items()})
    glyph.path_obj = None
    return glyph


@functools.cache
def maker() -> str:
    """What made an entry: this file's source and the versions of the libraries that parse."""
    return sha256_text(sha256_file(Path(__file__)), version("manim"), version("svgelements"))


def key_of(text: Text) -> str:
    return sha256_text("glyphs", maker(), sha256_file(text.get_file_path()), repr(text.svg_default),
                       repr(text.path_string_config))


def init_svg_mobject(self: Text, use_svg_cache: bool) -> Text:
    """Text.init_svg_mobject: from manim's memory, else from the disk cache, else parsed (and
    stored on disk when it can be held exactly)."""
    memory_key = hash_obj(self.hash_seed) if use_svg_cache else None
    if memory_key in SVG_HASH_TO_MOB_MAP:
        return SVGMobject.init_svg_mobject(self, use_svg_cache)  # manim's own: a copy from memory
    path = entry_path("glyphs", key_of(self))
    before = dict(self.__dict__)
    try:
        entry = read_json(path)
        glyphs = [decode_glyph(g) for g in entry["glyphs"]]
        changed = {key: decode(value) for key, value in entry["text"].items()}
        groups = {name: [glyphs[i] for i in members] for name, members in entry["groups"].items()}
    except (ValueError, KeyError, TypeError, IndexError):
        glyphs = None
    if glyphs is not None:
        self.add(*glyphs)
        self.__dict__.update(changed)
        self.id_to_vgroup_dict = {name: VGroup(*members) for name, members in groups.items()}
    else:
        self.generate_mobject()
        store(self, before, path)
    if use_svg_cache:
        SVG_HASH_TO_MOB_MAP[memory_key] = self.copy()
    return self


def store(text: Text, before: dict, path) -> None:
    """Write what the parse made: the glyphs, the Text's attributes it changed, its groups."""
    try:
        index = {id(g): i for i, g in enumerate(text.submobjects)}
        changed = {key: value for key, value in text.__dict__.items()
                   if key not in ("submobjects", "id_to_vgroup_dict") and not same(before.get(key, MISSING), value)}
        entry = {"glyphs": [encode_glyph(g) for g in text.submobjects],
                 "text": {key: encode(value) for key, value in changed.items()},
                 "groups": {name: [index[id(m)] for m in group.submobjects] for name, group in text.id_to_vgroup_dict.items()}}
    except (Unstorable, KeyError):
        return
    try:
        write_json(path, entry)
    except OSError:  # a read-only or full cache: the text is drawn all the same
        pass


MISSING = object()  # an attribute the Text did not have before the parse


def same(a, b) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001  (objects without a plain equality: treat as changed)
        return False


def install() -> None:
    """Text reads and writes the cache (idempotent; called by compat.install)."""
    Text.init_svg_mobject = init_svg_mobject
