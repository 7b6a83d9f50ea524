"""A GIF made from the scene's mp4: the right speed, one palette, and only what changes.

manim's own GIF writer gives every frame the same delay, rounded to GIF's unit of 1/100 s: at
15 fps each frame shows 70 ms instead of 66.7 ms, so the clip plays 5% slow and drifts from its
captions. It also dithers every frame, which turns flat backgrounds into noise that changes from
frame to frame and defeats GIF's compression (a 23 s clip came to 44 MB).

Here, with PyAV's filter graph (FFmpeg's palettegen/paletteuse, as manim does, but in two passes
so that no frame is held in memory):
- pass 1 builds one palette from the whole clip;
- pass 2 maps each frame onto it without dithering (the scenes are flat colours and text), and
  FFmpeg's GIF encoder stores only the rectangle that changed since the previous frame; a
  picture held on screen is written once, with a longer delay;
- each frame's time is rounded to 1/100 s on its own (pts in centiseconds), so the delays
  alternate (7, 7, 6 at 15 fps) and the GIF ends exactly when the video does.
`fps` (--gif-fps) keeps fewer frames for a smaller file; the timing stays exact.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CENTISECOND = Fraction(1, 100)
NOISE = 8  # out of 255: what the mp4 codec changes in a picture that is held (measured: up to ~8 on a hold)


def frames(video: Path, fps: float | None):
    """The video's frames (RGB), resampled to `fps` when it is lower than the video's rate; and the rate."""
    container = av.open(str(video))
    stream = container.streams.video[0]
    rate = Fraction(stream.average_rate)
    out_rate = rate if not fps or fps >= rate else Fraction(fps).limit_denominator(1000)
    graph = av.filter.Graph()
    chain = [graph.add_buffer(template=stream)]
    if out_rate != rate:
        chain.append(graph.add("fps", f"fps={out_rate}"))
    chain.append(graph.add("format", "rgb24"))
    chain.append(graph.add("buffersink"))
    for a, b in zip(chain, chain[1:]):
        a.link_to(b)
    graph.configure()

    def generate():
        with container:
            for frame in container.decode(stream):
                graph.push(frame)
                yield from pulled(graph)
            graph.push(None)
            yield from pulled(graph)

    return generate(), out_rate, (stream.codec_context.width, stream.codec_context.height)


def palette_of(video: Path, fps: float | None):
    """Pass 1: one 256-colour palette for the whole clip."""
    source, _, _ = frames(video, fps)
    graph = av.filter.Graph()
    first = next(source)
    buffer = graph.add_buffer(template=first)  # a frame's format, size and time base
    gen = graph.add("palettegen", "stats_mode=full")
    sink = graph.add("buffersink")
    buffer.link_to(gen)
    gen.link_to(sink)
    graph.configure()
    for frame in itertools.chain([first], source):  # one at a time: (first, *source) would hold them all
        graph.push(frame)
    graph.push(None)
    return graph.pull()


def pulled(graph):
    """Every frame a filter graph has ready."""
    while True:
        try:
            yield graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


def to_gif(video: Path, gif: Path, fps: float | None = None) -> None:
    """Write `gif` from `video` (see the module's docstring)."""
    palette = palette_of(video, fps)
    source, rate, (width, height) = frames(video, fps)
    graph = main = None
    with av.open(str(gif), mode="w", format="gif") as out:
        stream = out.add_stream("gif", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "pal8"
        stream.time_base = stream.codec_context.time_base = CENTISECOND

        def write(picture, start: int, end: int) -> None:
            picture.pts, picture.time_base = at(start, rate), CENTISECOND
            for packet in stream.encode(picture):
                packet.duration = at(end, rate) - packet.pts
                out.mux(packet)

        held, held_pixels, index = None, None, 0  # the picture on screen, its RGB, the frame it starts at
        for index, frame in enumerate(source):
            pixels = frame.to_ndarray().astype(np.int16)
            if held_pixels is not None and np.abs(pixels - held_pixels).max() <= NOISE:
                continue  # the same picture (the video codec's noise aside): the one on screen stays longer
            if graph is None:  # the graph takes its input's format from the first frame
                graph, main = mapper(frame, palette)
            main.push(frame)
            if held is not None:
                write(*held, index)
            held, held_pixels = (next(pulled(graph)), index), pixels
        if held is not None:
            write(*held, index + 1)
        for packet in stream.encode():
            out.mux(packet)


def at(index: int, rate: Fraction) -> int:
    """When video frame `index` starts, in 1/100 s, rounded on its own (no drift)."""
    return round(index / rate / CENTISECOND)


def mapper(template, palette):
    """A graph that maps each frame pushed into `main` onto `palette`, without dithering."""
    graph = av.filter.Graph()
    main, pal = graph.add_buffer(template=template), graph.add_buffer(template=palette)
    use = graph.add("paletteuse", "dither=none")
    sink = graph.add("buffersink")
    main.link_to(use, 0, 0)
    pal.link_to(use, 0, 1)
    use.link_to(sink)
    graph.configure()
    pal.push(palette)
    pal.push(None)  # paletteuse keeps the one palette for every frame
    return graph, main
