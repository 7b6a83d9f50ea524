"""A workaround for manim 0.22 with Pillow >= 12: Camera.display_image_mobject builds a
blank float image with Image.fromarray(..., mode="RGBA"), which Pillow now refuses, so any
ImageMobject crashes the render. Our images are never rotated or skewed, so this draws
them by resizing onto their axis-aligned box and alpha-compositing into the frame.
"""

from __future__ import annotations

import numpy as np
from manim.camera.camera import Camera
from PIL import Image


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


def install() -> None:
    Camera.display_image_mobject = display_axis_aligned_image


install()
