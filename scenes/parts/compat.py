"""Five patches to manim 0.22, installed by `install()` when a TransformerScene is created:

1. A workaround for Pillow >= 12: Camera.display_image_mobject builds a blank float image
   with Image.fromarray(..., mode="RGBA"), which Pillow now refuses, so any ImageMobject
   crashes the render. Our images are never rotated or skewed, so this draws them by
   resizing onto their axis-aligned box and alpha-compositing into the frame.
2. Speed: a held frame (a `wait`, `repeat` copies of one picture) is converted from RGBA to
   the codec's pixel format once, not once per copy. The encoder receives exactly the same
   pictures, so the video is byte-for-byte the same; at 1080p60 the conversion is about
   9 ms a frame, most of what a held second costs.
3. Speed: copies. Every FadeIn, FadeOut, Transform and `.animate` copies its mobject,
   often twice, and manim copies each attribute with the generic `copy.deepcopy`. Here a
   copy takes numbers, strings, enums and colours (immutable) as they are and copies
   arrays directly; anything else still goes through `copy.deepcopy`. A glyph's
   svgelements Path, read once when its points are made and never changed, is shared by
   its copies. A copy of a 20-letter Text drops from about 30 ms to 2 ms; renders come
   out byte-for-byte the same.
4. Speed: up to 2 animations' video segments encode while the next animation is drawn
   (manim's `max_inflight_encoders`, 1 by default, which makes every animation wait for
   its own encoding to finish). Each segment is its own file, so the bytes do not change.
   At 1080p each extra encoder holds about 0.3 GB; 3 were no faster than 2 here.
5. Speed: a Text's parsed outlines are kept in the project cache and read back by later
   processes instead of parsing the same SVG again (scenes/parts/glyphs.py): the same
   objects, bit for bit.
"""

from __future__ import annotations

import copy
import enum
from fractions import Fraction

import av
import numpy as np
from manim import config
from manim.camera.camera import Camera
from manim.mobject.mobject import Mobject
from manim.mobject.svg.svg_mobject import VMobjectFromSVGPath
from manim.scene.video_segment_encoder import VideoSegmentEncoder
from manim.utils.color import ManimColor
from PIL import Image

from . import glyphs


def display_axis_aligned_image(self: Camera, image_mobject, pixel_array: np.ndarray) -> None:
    coords = self.points_to_subpixel_coords(image_mobject, image_mobject.points)
    x0, y0 = np.floor(coords.min(axis=0)).astype(int)
    x1, y1 = np.ceil(coords.max(axis=0)).astype(int)
    width, height = x1 - x0, y1 - y0
    if width < 1 or height < 1:
        return
    src = Image.fromarray(np.ascontiguousarray(image_mobject.get_pixel_array(), dtype=np.uint8))
    src = src.convert("RGBA").resize((int(width), int(height)), resample=image_mobject.resampling_algorithm)
    # clip to the frame
    H, W = pixel_array.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    part = np.asarray(src, dtype=np.float64)[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] / 255.0
    dest = pixel_array[cy0:cy1, cx0:cx1].astype(np.float64) / 255.0
    alpha = part[..., 3:4]
    out = dest.copy()
    out[..., :3] = part[..., :3] * alpha + dest[..., :3] * (1 - alpha)
    out[..., 3:4] = alpha + dest[..., 3:4] * (1 - alpha)
    pixel_array[cy0:cy1, cx0:cx1] = (out * 255).round().astype(pixel_array.dtype)


_write_frame = VideoSegmentEncoder.write_frame


def write_held_frame(self: VideoSegmentEncoder, pixels: np.ndarray, *, repeat: int = 1) -> None:
    """VideoSegmentEncoder.write_frame, converting the picture once for all `repeat` copies."""
    if repeat == 1:
        return _write_frame(self, pixels, repeat=1)
    self._validate_frame(pixels, repeat)
    stream = self._stream
    time_base = Fraction(self.spec.frame_rate.denominator, self.spec.frame_rate.numerator)
    try:
        frame = av.VideoFrame.from_ndarray(pixels, format="rgba").reformat(stream.width, stream.height, stream.pix_fmt)
        for _ in range(repeat):
            frame.pts = self._next_pts  # the codec copies the picture and its pts on each send
            frame.time_base = time_base
            self._next_pts += 1
            for packet in stream.encode(frame):
                self._container.mux(packet)
    except BaseException as error:
        raise self._operation_error("encode", error) from error


IMMUTABLE = (int, float, bool, str, type(None), np.floating, np.integer, ManimColor, enum.Enum)


def copy_mobject(self: Mobject, memo: dict) -> Mobject:
    """Mobject.__deepcopy__ with fast paths: immutable values shared, arrays copied directly
    (through `memo`, so two attributes sharing one array still share its copy)."""
    result = self.__class__.__new__(self.__class__)
    memo[id(self)] = result
    for key, value in self.__dict__.items():
        if isinstance(value, IMMUTABLE):
            setattr(result, key, value)
        elif type(value) is np.ndarray:
            twin = memo.get(id(value))
            if twin is None:
                twin = memo[id(value)] = value.copy()
            setattr(result, key, twin)
        else:
            setattr(result, key, copy.deepcopy(value, memo))
    result.original_id = str(id(self))
    return result


def copy_glyph(self: VMobjectFromSVGPath, memo: dict) -> VMobjectFromSVGPath:
    """A glyph's copy shares the parsed SVG path it was made from."""
    memo[id(self.path_obj)] = self.path_obj
    return copy_mobject(self, memo)


INFLIGHT_ENCODERS = 2


def install() -> None:
    """Patch manim (idempotent). TransformerScene.__init__ calls it before manim makes its renderer."""
    config.max_inflight_encoders = max(config.max_inflight_encoders, INFLIGHT_ENCODERS)
    Camera.display_image_mobject = display_axis_aligned_image
    VideoSegmentEncoder.write_frame = write_held_frame
    Mobject.__deepcopy__ = copy_mobject
    VMobjectFromSVGPath.__deepcopy__ = copy_glyph
    glyphs.install()
