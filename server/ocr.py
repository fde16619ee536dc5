"""Text of raster-only receipts: reassemble a receipt's images and OCR them with Tesseract.

Windows printer drivers often print the whole receipt as images (GS v 0 bands, GS ( L graphics,
ESC * stripes): the parser then sees no text at all. Here each receipt's image payloads (parser
option keep_images=True) are decoded, stacked top to bottom into one tall page, and read by the
`tesseract` binary (Debian packages tesseract-ocr, tesseract-ocr-chi-sim). The text lines go
through the same field extractor as printed text (server/extract.py).

    for receipt in ocr_stream(data, encoding="gb18030"):
        receipt.lines, receipt.fields

Payload layouts (1 = black dot):
    raster, graphics, star-raster  row by row, (width + 7) // 8 bytes a row, MSB = leftmost dot
    column (ESC *)                 stripes 8 or 24 dots tall; per stripe column by column,
                                   dots // 8 bytes per column, MSB = top dot
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from PIL import Image, ImageChops, ImageFilter

import escpos_parser
from escpos_parser import IMAGE, LINE, RECEIPT_END

from .extract import ReceiptFields, extract_fields

# Settings measured on the raster corpus (bench/bench_extract.py): Tesseract page segmentation
# 6 (one uniform block of text) beat 4 (one column, varying sizes); thermal glyphs are ~24 dots
# tall and read best scaled 2x with a slight blur that joins dithered strokes. Thickening the
# strokes or scaling 3x made the PDF-rendered receipts much worse.
_PSM = "6"
_SCALE = 2
_BLUR = 1.0
_MARGIN = 16


class OcrUnavailable(RuntimeError):
    """The tesseract binary is not installed."""


def tesseract_languages() -> list[str]:
    """Installed Tesseract languages; raises OcrUnavailable without tesseract."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise OcrUnavailable("tesseract is not installed (apt-get install -y tesseract-ocr "
                             "tesseract-ocr-chi-sim)")
    out = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines()[1:] if line.strip()]


def decode_image(kind: str, width: int, height: int, payload: bytes) -> Image.Image:
    """One IMAGE event's payload as a black-on-white PIL image (mode "1")."""
    if kind == "column":
        return _column_image(width, height, payload)
    row = (width + 7) // 8
    rows = min(height, len(payload) // row) if row else 0
    if rows <= 0:
        return Image.new("1", (max(width, 1), 1), 1)
    img = Image.frombytes("1", (row * 8, rows), bytes(payload[:row * rows]))
    # frombytes reads 1 as white: invert so that printed dots are black
    return ImageChops.invert(img).crop((0, 0, width, rows))


def _column_image(width: int, height: int, payload: bytes) -> Image.Image:
    """ESC * stripes stacked. The parser merges consecutive stripes into one event, so the
    stripe height (8 or 24 dots) is not given: take the one whose rows join up smoothly."""
    candidates = [d for d in (24, 8) if height % d == 0] or [8]
    best = None
    for dots in candidates:
        img = _stripes(width, height, payload, dots)
        score = _roughness(img)
        if best is None or score < best[0]:
            best = (score, img)
    return best[1]


def _stripes(width, height, payload, dots):
    per_col = dots // 8
    img = Image.new("1", (width, height), 1)
    pixels = img.load()
    stripe_bytes = width * per_col
    for s in range(min(height // dots, len(payload) // max(stripe_bytes, 1))):
        base = s * stripe_bytes
        for x in range(width):
            for b in range(per_col):
                byte = payload[base + x * per_col + b]
                if byte:
                    y0 = s * dots + b * 8
                    for bit in range(8):
                        if byte & (0x80 >> bit):
                            pixels[x, y0 + bit] = 0
    return img


def _roughness(img):
    """How many dots differ between each row and the next: low for a real picture."""
    shifted = img.crop((0, 1, img.width, img.height))
    diff = ImageChops.logical_xor(img.crop((0, 0, img.width, img.height - 1)), shifted)
    return diff.convert("L").histogram()[255]


def stack(images: list[Image.Image]) -> Image.Image:
    """Images one under the other, left-aligned, on white: the printed page."""
    width = max(i.width for i in images)
    page = Image.new("1", (width, sum(i.height for i in images)), 1)
    y = 0
    for img in images:
        page.paste(img, (0, y))
        y += img.height
    return page


def ocr_image(page: Image.Image, languages: list[str] | None = None) -> list[str]:
    """Text lines Tesseract reads in a page image, normalised (see clean_line)."""
    if languages is None:
        installed = tesseract_languages()
        languages = [lang for lang in ("chi_sim", "eng") if lang in installed] or ["eng"]
    big = page.convert("L").resize((page.width * _SCALE, page.height * _SCALE), Image.LANCZOS)
    big = big.filter(ImageFilter.GaussianBlur(_BLUR))
    framed = Image.new("L", (big.width + 2 * _MARGIN, big.height + 2 * _MARGIN), 255)
    framed.paste(big, (_MARGIN, _MARGIN))
    with tempfile.TemporaryDirectory(prefix="tilltap-ocr-") as tmp:
        path = os.path.join(tmp, "page.png")
        framed.save(path)
        out = subprocess.run(["tesseract", path, "stdout", "-l", "+".join(languages),
                              "--psm", _PSM], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("tesseract failed: %s" % out.stderr.strip()[-500:])
    lines = [clean_line(line) for line in out.stdout.splitlines()]
    return [line for line in lines if line]


def clean_line(line: str) -> str:
    """Tesseract's chi_sim puts spaces between Han characters: drop those, keep the others."""
    out = []
    for k, c in enumerate(line):
        if c == " " and out and _is_han(out[-1]):
            nxt = line[k + 1:k + 2]
            if nxt and (_is_han(nxt) or nxt in "：:，。（）"):
                continue
        out.append(c)
    return "".join(out).strip()


def _is_han(c):
    return "\u3000" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef"


@dataclass
class OcrReceipt:
    """One receipt read from its images."""

    lines: list[str]                 # OCR text lines
    printed: list[str]               # text lines the stream printed as text (often none)
    page: Image.Image | None         # the stacked images
    fields: ReceiptFields | None = None
    seconds: float = 0.0             # OCR time
    images: list[tuple] = field(default_factory=list)  # (kind, width, height) per image


def receipt_pages(data: bytes, **parser_options) -> list[tuple[list[str], list[tuple], Image.Image | None]]:
    """Per receipt in a stream: (printed text lines, image specs, stacked page or None)."""
    parser = escpos_parser.Parser(keep_images=True, **parser_options)
    out, text, images = [], [], []

    def end():
        specs = [(k, w, h) for k, w, h, _ in images]
        pictures = [decode_image(k, w, h, p) for k, w, h, p in images if p and w and h]
        out.append((text[:], specs, stack(pictures) if pictures else None))

    for event in parser.feed(data) + parser.close():
        if event[0] == LINE and event[1]:
            text.append(event[1])
        elif event[0] == IMAGE and len(event) > 5:
            images.append((event[1], event[2], event[3], event[5]))
        elif event[0] == RECEIPT_END:
            end()
            text, images = [], []
    return out


def ocr_stream(data: bytes, languages: list[str] | None = None, min_height: int = 48,
               **parser_options) -> list[OcrReceipt]:
    """OCR every receipt of a stream that has images at least min_height dots tall in total
    (logos alone are skipped); fields are extracted from the OCR text plus any printed text."""
    receipts = []
    for printed, specs, page in receipt_pages(data, **parser_options):
        if page is None or page.height < min_height:
            continue
        started = time.perf_counter()
        lines = ocr_image(page, languages)
        seconds = time.perf_counter() - started
        receipts.append(OcrReceipt(lines, printed, page, extract_fields(printed + lines),
                                   seconds, specs))
    return receipts
