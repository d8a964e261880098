"""A PNG of digits in rows, one row per label: how a reviewer sees the collected digits a change adds.

Each row starts with its label, then up to PER_ROW digits as stored (light ink on MNIST's black)
at SCALE times their size, then "+N more" when the row has more. A framed digit is one that was
relabelled (the same image stored under another label at the base). PIL only; the same rows give
the same bytes (no timestamps, nothing from the machine but Pillow's own font).
"""

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from pipeline.core.datasets import IMAGE_SHAPE

PER_ROW = 50  # a row stays under 3,100 pixels wide, and a reviewer looks at every digit
SCALE = 2  # 56 pixels a digit: a stroke is seen, 50 of them still fit a screen's width or two
GAP = 4  # between digits: room for the 2-pixel frame of a relabelled one
MARGIN = 8
LABEL_WIDTH = 44  # the label's column: one digit at LABEL_SIZE
LABEL_SIZE = 36
MORE_SIZE = 18
MORE_WIDTH = 120  # "+9,950 more" at MORE_SIZE
BACKGROUND = (64, 64, 64)  # gray: each digit's black square shows where the image ends
TEXT = (255, 255, 255)
FRAME = (255, 140, 0)  # orange: relabelled
BROKEN = (200, 0, 0)  # a cross on a file that is not an image


@dataclass(frozen=True)
class Digit:
    png: bytes  # the stored file
    framed: bool = False  # relabelled since the base


@dataclass(frozen=True)
class Row:
    label: str
    digits: tuple[Digit, ...]  # at most PER_ROW are drawn
    more: int = 0  # digits of this label not drawn, shown as "+N more"


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font at `size` (its bitmap font, size ignored, where FreeType is missing)."""
    return ImageFont.load_default(size=size)


def tile(raw: bytes) -> Image.Image:
    """The digit at SCALE, nearest neighbour (its pixels as the model saw them); a cross if unreadable."""
    side = IMAGE_SHAPE[0] * SCALE
    try:
        with Image.open(io.BytesIO(raw)) as image:
            digit = image.convert("L").resize((side, side), Image.Resampling.NEAREST)
    except (OSError, ValueError, Image.DecompressionBombError):  # not an image, or a truncated one
        broken = Image.new("RGB", (side, side), (0, 0, 0))
        pen = ImageDraw.Draw(broken)
        pen.line([(0, 0), (side, side)], fill=BROKEN, width=3)
        pen.line([(0, side), (side, 0)], fill=BROKEN, width=3)
        return broken
    return digit.convert("RGB")


def draw(rows: list[Row], legend: str = "") -> bytes:
    """The gallery as PNG bytes: `rows` top to bottom, `legend` (if any) on a line below them."""
    side = IMAGE_SHAPE[0] * SCALE
    step = side + GAP
    widest = max((min(len(row.digits), PER_ROW) for row in rows), default=0)
    more = any(row.more or len(row.digits) > PER_ROW for row in rows)
    label_font, small_font = font(LABEL_SIZE), font(MORE_SIZE)
    width = MARGIN + LABEL_WIDTH + widest * step + (MORE_WIDTH if more else 0) + MARGIN
    width = max(width, 2 * MARGIN + round(small_font.getlength(legend)))
    height = MARGIN + len(rows) * (side + MARGIN) + (MORE_SIZE + MARGIN if legend else 0)
    image = Image.new("RGB", (width, height), BACKGROUND)
    canvas = ImageDraw.Draw(image)
    for index, row in enumerate(rows):
        top = MARGIN + index * (side + MARGIN)
        canvas.text((MARGIN + LABEL_WIDTH // 2, top + side // 2), row.label, fill=TEXT, font=label_font, anchor="mm")
        left = MARGIN + LABEL_WIDTH
        for digit in row.digits[:PER_ROW]:
            if digit.framed:
                canvas.rectangle([left - 2, top - 2, left + side + 1, top + side + 1], outline=FRAME, width=2)
            image.paste(tile(digit.png), (left, top))
            left += step
        hidden = row.more + max(len(row.digits) - PER_ROW, 0)
        if hidden:
            canvas.text((left + GAP, top + side // 2), f"+{hidden:,} more", fill=TEXT, font=small_font, anchor="lm")
    if legend:
        canvas.text((MARGIN, height - MARGIN - MORE_SIZE), legend, fill=FRAME, font=small_font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
