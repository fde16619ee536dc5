"""Driver-style raster-only receipts with exact ground truth, for OCR tests and the OCR bench.

A Windows printer driver prints the POS's text as a picture: the text is rendered with a
desktop font at the printer's width (384 dots on 58 mm paper, 512-576 on 80 mm), sometimes in a
grey that is dithered to dots, and sent as GS v 0 raster bands. Here the text lines of generated
receipts (receipt_factory.py, Latin and Chinese) are rendered that way with PIL and the fonts of
this machine, and printed through python-escpos (``image(impl="bitImageRaster")``): the stream
holds no text at all, and the lines rendered are the ground truth.

    for receipt in driver_receipts(FontSpec(...), width=384, dithered=True, seed=1, count=4):
        receipt.stream, receipt.lines, receipt.language

Lines are re-laid to the width's column count (12 dots a column, as 58/80 mm printers' font A):
the parts of a line that the POS separated by runs of spaces stay apart, the last one flush
right; monospace fonts draw the padded line as it is, proportional ones draw each part at its
column, as drivers do with tab stops. The store name is drawn half as tall again, centred.
"""
from __future__ import annotations

import random
import re
import subprocess
import unicodedata
from dataclasses import dataclass

from escpos.printer import Dummy
from PIL import Image, ImageDraw, ImageFont

from tilltap_fw.receipt import parse_stream

from .receipt_factory import generate_receipts

DOTS_PER_COLUMN = 12
# The OCR was tuned on the first set (fonts and widths) and is measured on the second, which it
# never saw while being tuned (bench/bench_extract.py, tests/server/test_ocr.py).
TUNED = (("DejaVu Sans Mono", "Liberation Sans", "WenQuanYi Micro Hei Mono",
          "WenQuanYi Micro Hei"), (512, 576))
HELD_OUT = (("Liberation Mono", "DejaVu Serif", "Liberation Sans Narrow", "Liberation Serif",
             "DejaVu Sans", "WenQuanYi Zen Hei", "AR PL UMing CN"), (384, 448, 576))
_SPLIT = re.compile(r" {2,}")
_LINE_GAP = 0.35       # blank space between lines, in font heights


@dataclass(frozen=True)
class FontSpec:
    """A font of this machine (fc-list family name, file, collection index)."""

    family: str
    path: str
    index: int = 0
    monospace: bool = False
    han: bool = False               # has Chinese glyphs


@dataclass
class DriverReceipt:
    """One raster-only receipt: its ESC/POS bytes and the text lines drawn in it."""

    name: str
    language: str
    font: str
    width: int
    dithered: bool
    lines: list[str]
    stream: bytes
    total: str | None           # the receipt's total as the extractor gives it ("12.50")


def machine_fonts() -> list[FontSpec]:
    """Upright regular-weight fonts fc-list knows, Latin and Chinese, one per family."""
    out = subprocess.run(["fc-list", "-f", "%{file}|%{index}|%{family[0]}|%{style[0]}|%{lang}\\n"],
                         capture_output=True, text=True, check=False)
    fonts = {}
    for row in out.stdout.splitlines():
        path, index, family, style, languages = (row.split("|", 4) + [""] * 5)[:5]
        if style not in ("Regular", "Book", "Light") or "Math" in family or "Sharp" in family:
            continue
        face = ImageFont.truetype(path, 20, index=int(index or 0))
        fonts[family] = FontSpec(family, path, int(index or 0),
                                 face.getlength("i") == face.getlength("M"),
                                 "zh-cn" in languages.split("|"))
    return sorted(fonts.values(), key=lambda f: f.family)


def find_font(family: str) -> FontSpec | None:
    """The machine's regular font of that family, or None."""
    return next((f for f in machine_fonts() if f.family == family), None)


def columns(text: str) -> int:
    """Printed width in columns: Chinese and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def relay(line: str, cols: int) -> str:
    """A receipt line laid out again for cols columns: its parts (split at runs of spaces) kept
    apart, the last flush right, the first shortened if they no longer fit."""
    indent = len(line) - len(line.lstrip(" "))
    parts = _SPLIT.split(line.strip())
    if len(parts) == 1:
        text = " " * indent + parts[0]
        while columns(text) > cols:
            text = text[:-1]
        return text.rstrip()
    first, rest = " " * indent + parts[0], parts[1:]
    tail = "  ".join(rest)
    while columns(first) + 2 + columns(tail) > cols and len(first.strip()) > 1:
        first = first[:-1]
    first = first.rstrip()
    return first + " " * max(2, cols - columns(first) - columns(tail)) + tail


def render(lines: list[str], font: FontSpec, width: int, dithered: bool,
           rng: random.Random) -> Image.Image:
    """The receipt as a driver draws it: mode "1", width dots wide."""
    cols = width // DOTS_PER_COLUMN
    face = ImageFont.truetype(font.path, 20, index=font.index)
    # size the font so that a column of digits is DOTS_PER_COLUMN wide (monospace), or so that
    # the widest line fits (proportional)
    advance = face.getlength("0") / 20
    size = max(14, min(30, int(DOTS_PER_COLUMN / advance)))
    face = ImageFont.truetype(font.path, size, index=font.index)
    big = ImageFont.truetype(font.path, int(size * 1.5), index=font.index)
    height = int(size * (1 + _LINE_GAP))
    page = Image.new("L", (width, height * (len(lines) + 3)), 255)
    draw = ImageDraw.Draw(page)
    ink = rng.choice((70, 100, 120)) if dithered else 0
    y = height // 2
    for k, line in enumerate(lines):
        if not line:
            y += height
            continue
        if k == 0:
            draw.text(((width - big.getlength(line)) / 2, y), line, font=big, fill=ink)
            y += int(height * 1.5)
            continue
        if font.monospace:
            draw.text((0, y), line, font=face, fill=ink)
        else:
            _draw_parts(draw, line, face, width, cols, y, ink)
        y += height
    page = page.crop((0, 0, width, y + height // 2))
    if dithered:
        return page.convert("1")            # Floyd-Steinberg, as drivers dither grey
    return page.point(lambda v: 0 if v < 128 else 255).convert("1", dither=Image.Dither.NONE)


def _draw_parts(draw, line, face, width, cols, y, ink):
    """A proportional line: each part at its column, the last flush right."""
    indent = len(line) - len(line.lstrip(" "))
    spans = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", line)]
    for n, (start, text) in enumerate(spans):
        if n == len(spans) - 1 and n > 0:
            x = width - face.getlength(text)
        elif n == 0:
            x = indent * width / cols
        else:
            x = columns(line[:start]) * width / cols
        draw.text((x, y), text, font=face, fill=ink)


def to_escpos(page: Image.Image) -> bytes:
    """The page as a driver sends it: GS v 0 raster bands, then a feed and a cut."""
    printer = Dummy(profile="TM-T20II")   # states its paper width: no warning printed
    printer.hw("INIT")
    printer.image(page, impl="bitImageRaster", fragment_height=256)
    printer.cut()
    return printer.output


def driver_receipts(font: FontSpec, width: int, dithered: bool, seed: int = 0,
                    count: int = 4) -> list[DriverReceipt]:
    """count generated receipts rendered with font at width: Chinese ones if the font has Han
    glyphs, else Latin ones (English, German, French, Spanish)."""
    rng = random.Random("%s/%d/%d/%d" % (font.family, width, dithered, seed))
    out: list[DriverReceipt] = []
    batch = 0
    while len(out) < count:
        # the factory uses its stores in turn: taken in a random order, so that the Latin
        # receipts come from all its Latin stores (English, German, French, Spanish), not only
        # the first
        batch_receipts = generate_receipts(seed=seed * 1000 + batch, count=8)
        rng.shuffle(batch_receipts)
        for receipt in batch_receipts:
            if (receipt.language == "zh") != font.han or len(out) >= count:
                continue
            encoding = "gb18030" if receipt.language == "zh" else None
            (parsed,), _ = parse_stream(receipt.stream, encoding=encoding)
            cols = width // DOTS_PER_COLUMN
            lines = [relay(line, cols) for line in parsed["lines"]]
            while lines and not lines[-1]:
                lines.pop()
            page = render(lines, font, width, dithered, rng)
            out.append(DriverReceipt(receipt.name, receipt.language, font.family, width,
                                     dithered, [line for line in lines if line.strip()],
                                     to_escpos(page), receipt.fields["total"]))
        batch += 1
    return out


def normalise(line: str) -> str:
    """A line as compared: full-width forms as ASCII (NFKC), dashes alike, no spaces."""
    line = unicodedata.normalize("NFKC", line).replace("—", "-").replace("一", "-")
    return "".join(line.split())


def lines_exact(got: list[str], want: list[str]) -> int:
    """How many of the wanted lines were read exactly (spaces ignored), in order: the longest
    common subsequence of the two lists of lines."""
    a = [normalise(g) for g in got if normalise(g)]
    b = [normalise(w) for w in want if normalise(w)]
    row = [0] * (len(b) + 1)
    for line in a:
        previous = row[:]
        for k, wanted in enumerate(b):
            row[k + 1] = previous[k] + 1 if line == wanted else max(previous[k + 1], row[k])
    return row[-1]
