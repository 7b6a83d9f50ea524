"""Publish a finished scene into the output folder.

Every file is written under a temporary name and renamed into place, so a failed or
interrupted render never leaves half a file and never loses the good file from before.
Folders (stills, sections) are swapped in whole.

For scene S in format F the output folder gets:
    S.F                 the video (F = mp4, webm, gif, mov); for png: S/NN-beat.png, one still per beat
    S.srt, S.vtt        captions (the scene's subcaptions, which quote live values)
    S.chapters.vtt      one chapter per beat
    S.poster.png        a still for players and the lecture page
    S.json              what the numbers are: prompt, model fingerprint, layer/head and why, seed,
                        trace hash, library versions, render settings; the narration (voice,
                        speed, text, cue times)
    S.sections/         with --sections: one clip per beat, each with its slice of the sound and
                        its own captions
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

from model.cache import atomic_path, atomic_write_text

from . import captions
from .audio import sound_sections
from .gif import to_gif
from .jobs import SceneResult


def copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def swap_folder(src: Path, dst: Path) -> None:
    """Replace folder dst by a copy of src. Two renames (the earlier folder aside, the new one in);
    if interrupted between them the earlier folder is put back, and a process killed there
    leaves it under a name the next run's sweep puts back (`restore_folders`)."""
    tag = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
    staged = dst.with_name(f".{dst.name}.{tag}.new")
    shutil.copytree(src, staged)
    old = dst.with_name(f".{dst.name}.{tag}.old")
    try:
        if dst.exists():
            os.replace(dst, old)
        os.replace(staged, dst)
    except BaseException:
        if old.exists() and not dst.exists():
            os.replace(old, dst)
        shutil.rmtree(staged, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?:[0-9a-f]{8}\.(?P<kind>old|new)|[^.]+\.tmp)$")


def sweep_leftovers(out: Path, alive) -> None:
    """Clean what a killed render left in `out`: temporaries (.NAME.PID.XXXX.tmp) and staged
    folders are removed, an earlier folder moved aside (.NAME.PID.XXXX.old) is put back when its
    name is free. Only for processes that are gone (`alive(pid)` is False)."""
    for path in sorted(out.iterdir()):
        m = LEFTOVER.match(path.name)
        if not m or alive(int(m.group("pid"))):
            continue
        home = out / m.group("name")
        if m.group("kind") == "old" and not home.exists():
            os.replace(path, home)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def chapters_from_progress(progress: dict, total: float) -> list[dict]:
    """Beat start times recorded by the scene while it rendered -> [{name, start, end}]."""
    names, starts = progress.get("beats", []), progress.get("starts", [])
    ends = starts[1:] + [total]
    return [{"name": n, "start": s, "end": e} for n, s, e in zip(names, starts, ends)]


def publish(result: SceneResult, out: Path, sidecar: dict, progress: dict) -> dict:
    """Write one scene's outputs; returns what the summary and the lecture page need."""
    job, name = result.job, result.job.stem
    if result.srt:
        cues = captions.parse_srt(result.srt.read_text(encoding="utf-8"))
    else:  # png: no video, so no subtitle track from manim; the cues the scene reported, timed the same
        cues = [captions.Cue(c["start"], c["end"], c["text"]) for c in (result.narration or {}).get("cues", [])]
    total = float(progress.get("time", cues[-1].end if cues else 0.0))
    chapters = chapters_from_progress(progress, total)
    written = []

    if job.format == "png":
        folder = out / name
        staging = result.stills[0].parent.parent / "png-out"  # in the worker's own folder
        staging.mkdir(exist_ok=True)
        for still in result.stills:
            shutil.copyfile(still, staging / still.name)
        swap_folder(staging, folder)
        main_file = folder
    elif job.format == "gif":
        main_file = out / f"{name}.gif"
        with atomic_path(main_file) as tmp:
            to_gif(result.video, tmp, job.gif_fps)
    else:
        main_file = out / f"{name}.{job.format}"
        copy_atomic(result.video, main_file)
    written.append(main_file)

    captions_vtt, chapters_vtt = captions.to_vtt(cues), captions.chapters_vtt(chapters)
    atomic_write_text(out / f"{name}.srt", captions.to_srt(cues))
    atomic_write_text(out / f"{name}.vtt", captions_vtt)
    atomic_write_text(out / f"{name}.chapters.vtt", chapters_vtt)
    written += [out / f"{name}.srt", out / f"{name}.vtt", out / f"{name}.chapters.vtt"]
    poster = None
    if result.stills:
        poster = out / f"{name}.poster.png"
        copy_atomic(result.stills[min(1, len(result.stills) - 1)], poster)  # the second beat: the idea under way
        written.append(poster)
    section_clips = []
    if job.sections and result.sections_json:
        staging = result.sections_json.parent
        section_clips = finish_sections(result.video, result.sections_json, cues, job.format == "gif", job.gif_fps)
        swap_folder(staging, out / f"{name}.sections")
        written.append(out / f"{name}.sections")
    said = result.narration or {}
    sidecar = {**sidecar, "duration_s": round(total, 3), "chapters": chapters, "captions": [c.text for c in cues],
               "narration": {"voice": said.get("voice", "none"), "speed": said.get("speed"),
                             "text": said.get("narration", []), "cues": said.get("cues", [])}}
    with atomic_path(out / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(sidecar, indent=1, ensure_ascii=False), encoding="utf-8")
    written.append(out / f"{name}.json")
    return {"name": name, "file": main_file, "duration": total, "files": written, "poster": poster,
            "captions_vtt": captions_vtt, "chapters_vtt": chapters_vtt, "chapters": chapters, "cues": cues,
            "sections": [f"{name}.sections/{clip}" for clip in section_clips]}


def finish_sections(video: Path, index: Path, cues: list[captions.Cue], gif: bool = False,
                    gif_fps: float | None = None) -> list[str]:
    """Each section clip is named by its beat like the stills (NN-beat.mp4, manim calls it
    Scene_NNNN_beat.mp4) and gets its slice of the scene's sound and its own captions
    (NN-beat.srt/.vtt); with `gif`, each clip becomes a GIF (at gif_fps). The index (manim's
    JSON) is rewritten with the new names. Returns the clips' file names, in order."""
    sections = json.loads(index.read_text(encoding="utf-8"))
    start, clips = 0.0, []
    for number, section in enumerate(sections, 1):
        clip = index.parent / f"{number:02d}-{section['name']}{Path(section['video']).suffix}"
        os.replace(index.parent / section["video"], clip)
        section["video"] = clip.name
        length = float(section["duration"])
        clips.append((clip, start, length))
        mine = [captions.Cue(max(0.0, c.start - start), min(length, c.end - start), c.text)
                for c in cues if start - 0.01 <= c.start < start + length - 0.01]
        atomic_write_text(clip.with_suffix(".srt"), captions.to_srt(mine))
        atomic_write_text(clip.with_suffix(".vtt"), captions.to_vtt(mine))
        start += length
    if gif:
        for section, (clip, _, _) in zip(sections, clips):
            to_gif(clip, clip.with_suffix(".gif"), gif_fps)
            clip.unlink()
            section["video"] = clip.with_suffix(".gif").name
    else:
        sound_sections(video, clips)
    atomic_write_text(index, json.dumps(sections, indent=1))
    return [section["video"] for section in sections]


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
