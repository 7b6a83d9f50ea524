"""The README's Jupyter route, run as written: a notebook (made here with nbformat) whose cells
set a parameter and render a scene with manim's %%manim magic, executed headless by nbclient in
a real IPython kernel; the cell displays the rendered video, and the video is of that prompt."""

from __future__ import annotations

import base64
import importlib.util
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("IPython", "nbclient", "nbformat", "ipykernel")),
    reason="the jupyter extra is not installed (pip install -e '.[jupyter]'; make setup does)")]


@pytest.fixture()
def media():
    """A media folder inside the project: the magic shows a video by its path relative to the
    notebook's folder (the project root, as the README says)."""
    (ROOT / ".cache").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="jupyter-test-", dir=ROOT / ".cache"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_notebook_cell_renders_and_shows_a_scene(media):
    import nbformat
    from nbclient import NotebookClient

    prompt = "The capital of France is"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f'import os; os.environ["MT_PROMPT"] = {prompt!r}; os.environ["MT_VOICE"] = "none"\n'
                                  f'from manim import config; config.media_dir = {str(media)!r}'),
        nbformat.v4.new_code_cell("%%manim -ql --fps 2 -v WARNING Tokens\nfrom scenes.tokens import Tokens"),
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = nb.cells[1].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    shown = [o for o in outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert shown, outputs
    html = shown[-1].data["text/html"]
    assert "<video" in html
    src = re.search(r'src="data:video/mp4;base64,([^"]+)"', html) or re.search(r'src="([^"]+\.mp4)"', html)
    assert src, html[:300]
    videos = list(media.rglob("Tokens.mp4"))
    assert videos and videos[0].stat().st_size > 5_000
    shown_bytes = (ROOT / src.group(1)).read_bytes() if src.group(1).endswith(".mp4") else base64.b64decode(src.group(1))
    assert shown_bytes == videos[0].read_bytes()  # the video shown is the one rendered
    srt = next(media.rglob("Tokens.srt")).read_text(encoding="utf-8")
    assert "France" in srt  # the scene read the prompt the first cell set
