"""Sound for section clips: each beat's clip gets its slice of the scene's narration.

manim muxes the narration into the whole scene's video but writes section clips silent. We
decode the scene's audio once and mux the matching slice into each section clip with PyAV
(manim's own sound path, pydub, would need ffmpeg for anything but WAV).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from model.cache import atomic_path

# The audio codec each container gets (what manim uses for the whole scene).
CODECS = {".mp4": "aac", ".mov": "aac", ".webm": "libopus"}


def read_audio(video: Path) -> tuple[np.ndarray, int] | None:
    """A video's sound as float32 samples, shape (channels, n), and its rate; None when silent."""
    with av.open(str(video)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=stream.rate)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
        rate = stream.rate
    samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    return samples.astype(np.float32), rate


def add_audio(clip: Path, samples: np.ndarray, rate: int) -> None:
    """Rewrite `clip` (video only) with `samples` as its sound track, in place, atomically."""
    codec = CODECS.get(clip.suffix.lower())
    if codec is None or samples.shape[1] == 0:
        return
    with atomic_path(clip) as tmp, av.open(str(clip)) as source:
        video_in = source.streams.video[0]
        with av.open(str(tmp), "w", format=clip.suffix.lower().lstrip(".")) as sink:
            video_out = sink.add_stream_from_template(template=video_in)
            audio_out = sink.add_stream(codec, rate=48000 if codec == "libopus" else rate, layout="mono")
            for packet in source.demux(video_in):
                if packet.dts is None:
                    continue
                packet.stream = video_out
                sink.mux(packet)
            resampler = av.AudioResampler(format=audio_out.format.name, layout="mono", rate=audio_out.rate)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:1]), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, 0
            for converted in resampler.resample(frame) + resampler.resample(None):
                for packet in audio_out.encode(converted):
                    sink.mux(packet)
            for packet in audio_out.encode(None):
                sink.mux(packet)


def sound_sections(video: Path, clips: list[tuple[Path, float, float]]) -> None:
    """Give each section clip (path, start s, length s) its slice of `video`'s sound."""
    audio = read_audio(video)
    if audio is None:
        return
    samples, rate = audio
    for clip, start, length in clips:
        a, b = int(round(start * rate)), int(round((start + length) * rate))
        part = samples[:, a:b]
        if part.shape[1] < b - a:  # the scene's sound ended early: pad with silence
            part = np.pad(part, ((0, 0), (0, b - a - part.shape[1])))
        add_audio(clip, part, rate)
