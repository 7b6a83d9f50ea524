"""pipeline/gif.py on a small video made here: the GIF lasts exactly as long as the video (frame
delays rounded one by one, no drift), a held picture is one GIF frame, colours survive the
palette, and --gif-fps keeps fewer frames (a smaller file) at the same length."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from conftest import ROOT  # noqa: F401  (puts the project on sys.path)

RATE = 15
# (frames, picture): a square that moves for 12 frames, holds for 15, then a colour change held for 18
PLAN = [(1, ("move", i)) for i in range(12)] + [(15, ("move", 11))] + [(18, ("swap", 0))]


def picture(kind: str, i: int) -> np.ndarray:
    img = np.zeros((96, 160, 3), np.uint8)
    img[:] = (20, 22, 27)  # a dark theme's background
    x = 10 + 8 * i
    img[30:60, x:x + 30] = (88, 196, 255) if kind == "move" else (255, 190, 60)
    img[70:80, 10:150] = (232, 232, 232)  # a still line of "text"
    return img


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    import av

    path = tmp_path_factory.mktemp("gif") / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for count, (kind, i) in PLAN:
            for _ in range(count):
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture(kind, i), format="rgb24")):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def gif_frames(path):
    from PIL import Image

    im, delays, pictures = Image.open(path), [], []
    try:
        while True:
            delays.append(im.info["duration"])
            pictures.append(np.asarray(im.convert("RGB")).copy())
            im.seek(im.tell() + 1)
    except EOFError:
        pass
    return delays, pictures


def test_the_gif_plays_at_the_videos_speed(video, tmp_path):
    from pipeline.gif import to_gif

    frames = sum(count for count, _ in PLAN)
    to_gif(video, tmp_path / "clip.gif")
    delays, pictures = gif_frames(tmp_path / "clip.gif")
    assert sum(delays) == round(Fraction(frames, RATE) * 1000)  # 3 s exactly: no 70 ms for 66.7 ms
    assert set(delays[:11]) <= {60, 70}  # each moving frame ~66.7 ms, rounded on its own
    assert len(pictures) == 13  # 12 moving pictures (the last one held) + the colour change: holds are one frame
    assert abs(delays[11] - 16 * 1000 / RATE) <= 10  # the last moving picture, then held 15 frames more
    for (count, (kind, i)), got in zip([p for p in PLAN if p[0] == 1] + [PLAN[-1]], pictures[:12] + pictures[-1:]):
        error = np.abs(got.astype(int) - picture(kind, i).astype(int)).max(axis=2)
        assert (error <= 24).mean() > 0.97, (kind, i)  # the colours, through the codec and the palette (edges aside)


def test_fewer_frames_with_gif_fps_same_length(video, tmp_path):
    from pipeline.gif import to_gif

    to_gif(video, tmp_path / "full.gif")
    to_gif(video, tmp_path / "five.gif", fps=5)
    full, five = gif_frames(tmp_path / "full.gif"), gif_frames(tmp_path / "five.gif")
    assert sum(five[0]) == sum(full[0]) == 3000
    assert len(five[1]) < len(full[1]) and all(d % 200 == 0 for d in five[0])  # 5 fps: 200 ms steps
    assert (tmp_path / "five.gif").stat().st_size < (tmp_path / "full.gif").stat().st_size
