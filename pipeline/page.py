"""index.html: the rendered lecture as one self-contained page.

Every clip in order, with its poster still, captions, a chapter list that seeks the video,
and where its numbers came from. No CDN, no server: it works opened from file://. Caption
and chapter tracks are inlined as data: URLs because browsers refuse <track> files from
file:// (each file counts as another origin).
"""

from __future__ import annotations

import base64
import html
import json

from .captions import chapter_title

STYLE = """
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 0; background: #14161b; color: #e8e8e8; }
main { max-width: 1000px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
.sub { color: #9aa0a6; margin-top: 0; }
section { margin: 2.2rem 0; }
h2 { font-size: 1.25rem; margin-bottom: .4rem; }
video { width: 100%; background: #000; border-radius: 6px; }
.stills figure { margin: 0 0 1.2rem; }
img.gif { width: 100%; border-radius: 6px; }
.stills img { width: 100%; border-radius: 6px; display: block; }
.stills figcaption { font-size: .9rem; margin-top: .35rem; }
ol.chapters { columns: 2; padding-left: 1.4rem; }
ol.chapters a, .files a { color: #8ab4f8; cursor: pointer; text-decoration: none; }
.files { font-size: .9rem; margin: .3rem 0; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .8rem; font-size: .85rem; color: #b8bcc2; }
dl.provenance dt { color: #9aa0a6; }
code { font-family: "DejaVu Sans Mono", monospace; }
.failed { color: #f28b82; }
.notes { white-space: pre-line; border-left: 3px solid #8ab4f8; padding-left: .7rem; }
body.light { background: #fafafa; color: #202124; }
body.light .sub, body.light dl.provenance dt { color: #5f6368; }
body.light dl.provenance { color: #3c4043; }
body.light ol.chapters a, body.light .files a { color: #1a73e8; }
body.light video { background: #fff; }
body.light .failed { color: #c5221f; }
"""

SCRIPT = """
// Load the chapter tracks too (a track that is not showing is otherwise never fetched).
document.querySelectorAll('video').forEach(function (video) {
  Array.from(video.textTracks).forEach(function (t) { if (t.kind === 'chapters') t.mode = 'hidden'; });
});
document.querySelectorAll('a[data-seek]').forEach(function (a) {
  a.addEventListener('click', function (event) {
    event.preventDefault();
    var video = document.getElementById(a.dataset.video);
    video.currentTime = parseFloat(a.dataset.seek);
    video.play().catch(function () {});
  });
});
"""


def data_url(text: str, mime: str = "text/vtt") -> str:
    return f"data:{mime};charset=utf-8;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")


def clip_html(index: int, clip: dict) -> str:
    """clip: name, line, video, poster, captions_vtt, chapters (list of {name, start}), chapters_vtt, provenance (dict);
    title and notes when a lecture file gives them (the heading, and the lecturer's notes under it)."""
    e = html.escape
    vid = f"clip-{index}"
    heading = f'<h2>{index}. {e(clip.get("title") or clip["name"])}</h2>'
    notes = f'<p class="notes">{e(clip["notes"])}</p>' if clip.get("notes") else ""
    if clip.get("error"):
        return f'<section id="{e(clip["name"])}">{heading}{notes}<p class="failed">not rendered: {e(clip["error"])}</p></section>'
    tracks = f'<track kind="captions" label="Captions" srclang="en" src="{data_url(clip["captions_vtt"])}" default>'
    if clip.get("chapters_vtt"):
        tracks += f'<track kind="chapters" label="Chapters" srclang="en" src="{data_url(clip["chapters_vtt"])}">'
    poster = f' poster="{e(clip["poster"])}"' if clip.get("poster") else ""
    sections = clip.get("sections") or []
    chapters = "".join(
        f'<li><a href="#" data-video="{vid}" data-seek="{c["start"]:.3f}">{e(chapter_title(c["name"]))}</a>'
        + (f' · <a href="{e(sections[i])}" download>clip</a>' if i < len(sections) else "") + "</li>"
        for i, c in enumerate(clip.get("chapters", []))
    )
    prov = "".join(f"<dt>{e(k)}</dt><dd>{e(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))}</dd>"
                   for k, v in clip.get("provenance", {}).items())
    if not clip.get("video"):  # png: the beats' stills, each with its chapter and what is said over it
        figures = "".join(f'<figure><img src="{e(s["src"])}" alt="{e(chapter_title(s["beat"]))}" loading="lazy">'
                          f'<figcaption><b>{e(chapter_title(s["beat"]))}.</b> {e(s["said"])}</figcaption></figure>'
                          for s in clip.get("stills", []))
        return f"""<section id="{e(clip['name'])}">
{heading}
<p class="sub">{e(clip.get('line', ''))}</p>{notes}
<div class="stills">{figures}</div>
<dl class="provenance">{prov}</dl>
</section>"""
    stem = clip["name"]  # a download link for the clip and its captions
    files = (f'<p class="files"><a href="{e(clip["video"])}" download>download {e(clip["video"])}</a> · '
             f'<a href="{e(stem)}.srt" download>captions (.srt)</a> · <a href="{e(stem)}.vtt" download>(.vtt)</a></p>')
    if clip.get("mime") == "image/gif":  # a GIF is an image: it plays by itself, with no tracks
        player = f'<img class="gif" src="{e(clip["video"])}" alt="{e(clip["name"])}">'
    else:
        player = (f'<video id="{vid}" controls preload="metadata"{poster}><source src="{e(clip["video"])}" '
                  f'type="{e(clip.get("mime", "video/mp4"))}">{tracks}</video>')
    return f"""<section id="{e(clip['name'])}">
{heading}
<p class="sub">{e(clip.get('line', ''))}</p>{notes}
{player}
{files}
<ol class="chapters">{chapters}</ol>
<dl class="provenance">{prov}</dl>
</section>"""


def lecture_page(title: str, subtitle: str, clips: list[dict], theme: str = "dark") -> str:
    """theme: the clips' theme ("light" when every clip is light), so the page around them matches."""
    body = "\n".join(clip_html(i, clip) for i, clip in enumerate(clips, 1))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body class="{'light' if theme == 'light' else 'dark'}">
<main>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(subtitle)}</p>
{body}
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""
