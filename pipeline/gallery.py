"""Contact sheets: one still per beat, tiled into one PNG (for README and reviews).

    python render.py render overview tokens embeddings word-vectors --format png --out media
    python -m pipeline.gallery media assets/gallery

reads media/SCENE/NN-beat.png (written by --format png) and writes assets/gallery/SCENE.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from model.cache import atomic_path

GAP = 8


def contact_sheet(stills: list[Path], out: Path, columns: int = 2) -> None:
    images = [Image.open(p).convert("RGB") for p in stills]
    w, h = images[0].size
    cols = min(columns, len(images))
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w + (cols - 1) * GAP, rows * h + (rows - 1) * GAP), (70, 70, 70))
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", max(12, h // 30))
    except OSError:
        font = ImageFont.load_default()
    for k, (im, path) in enumerate(zip(images, stills)):
        x, y = (k % cols) * (w + GAP), (k // cols) * (h + GAP)
        sheet.paste(im, (x, y))
        draw.text((x + w - 8, y + 6), path.stem.split("-", 1)[-1].replace("beat_", "beat: "), fill=(150, 150, 150),
                  font=font, anchor="ra")
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)


def main(argv: list[str]) -> int:
    src, dest = Path(argv[0]), Path(argv[1])
    for folder in sorted(p for p in src.iterdir() if p.is_dir() and list(p.glob("[0-9][0-9]-*.png"))):
        out = dest / f"{folder.name}.png"
        contact_sheet(sorted(folder.glob("[0-9][0-9]-*.png")), out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
