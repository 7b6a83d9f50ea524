"""The baseline for bench/render.py: nothing on screen, but every frame drawn and encoded,
for MT_BLANK_SECONDS seconds (the pipeline's own speed limit on this machine)."""

import os

from manim import Scene


class Blank(Scene):
    def construct(self):
        self.wait(float(os.environ.get("MT_BLANK_SECONDS", "30")), frozen_frame=False)
