"""Text of raster-only receipts: reassemble a receipt's images and OCR them.

Windows printer drivers often print the whole receipt as images (GS v 0 bands, GS ( L graphics,
ESC * stripes): the parser then sees no text at all. Here each receipt's image payloads (parser
option keep_images=True) are decoded and stacked top to bottom into one tall page. The text
lines go through the same field extractor as printed text (server/analysis/extract.py).

How a page is read (figures: bench/bench_extract.py, README "Parsing print streams"):
    with PP-OCR   (server/ocr/ppocr.py, installed by make setup) every page: cut into lines and
                  each line into pieces at column gaps (server/ocr/layout.py), every piece read
                  by PP-OCRv4's recognizer (pieces of light grey dithered text blurred first;
                  pieces read as nothing or with repeated characters, and the pieces of narrow
                  print, read again wider),
                  pieces without Han read again by Tesseract (Latin script, else eng) to
                  correct what PP-OCR's Chinese model cannot read (combine), or taken from it
                  where PP-OCR is unsure and Tesseract sure; unsure pieces with Han read
                  again padded; rules become dashes (or "=") as in printed text.
    without it    Tesseract (Debian tesseract-ocr, tesseract-ocr-chi-sim): a crisp page whole,
                  a dithered page band by band blurred back to grey, Han first and English for
                  bands that are not.
    either way    the page's decimal marks made one ("," or ".", decimal_marks): with PP-OCR
                  the one measured in the print where its shapes tell (printed_mark).

    for receipt in ocr_stream(data, encoding="gb18030"):
        receipt.lines, receipt.fields

Payload layouts (1 = black dot):
    raster, graphics, star-raster  row by row, (width + 7) // 8 bytes a row, MSB = leftmost dot
    column (ESC *)                 stripes 8 or 24 dots tall; per stripe column by column,
                                   dots // 8 bytes per column, MSB = top dot
"""
from __future__ import annotations

import csv
import difflib
import functools
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image, ImageChops, ImageFilter

from tilltap.analysis.extract import ReceiptFields, extract_fields
from tilltap_fw import escpos_parser
from tilltap_fw.receipt import ReceiptAssembler

from . import layout
from .ppocr import LineReader, Reading

log = logging.getLogger(__name__)

# Settings measured on the raster corpus (bench/bench_extract.py: similarity with the
# transcription; raster.bin 0.836, print-from-pdf 0.655, raster-2.bin 0.949 with PP-OCR, 0.838
# with Tesseract alone).
# Crisp pages: Tesseract page segmentation 6 (one uniform block of text) beat 4 (one column,
# varying sizes); thermal glyphs are ~24 dots tall and read best scaled 2x with a slight blur that
# smooths the dot edges. Thickening the strokes or scaling 3x made the PDF-rendered receipts much
# worse; chi_sim alone read raster.bin better (0.885) but lost its date and total.
_PSM = "6"
_PSM_LINE = "7"      # one text line: a piece of a line (layout.py)
_SCALE = 2
_BLUR = 1.0
_MARGIN = 16
# a tesseract run that takes longer is hung (one reads a receipt's pieces in well under 1 s)
_TESSERACT_TIMEOUT_S = 60
# Dithered pages: raster-2.bin read as a crisp page gave 0.339. A page is dithered when more
# than 6% of its dots are specks, touching groups of at most 4 dots: 12.7% on raster-2.bin, at
# most 3.4% on the crisp pages. Its dots are blurred back to grey at print resolution and the
# grey darkened (gamma) so that thin strokes, dithered to a few scattered dots, count as much as
# solid ones. chi_sim and eng together read half of its Han lines as Latin letters (0.34-0.47
# whatever the blur); chi_sim alone: sigma 1.0-1.5 with gamma 2-6 gave 0.63-0.71 before rules,
# thresholding the grey 0.11-0.68, scaling it 2-4x no better than 1x, a horizontal-only blur
# 0.12-0.65, keeping per line the most confident of 3-7 blur settings +0.01-0.02 for 3-7 times
# the time. Reading band by band lets rules (a quarter of raster-2.bin's transcription) be
# written as dashes (0.70 -> 0.84) and a band chi_sim reads as less than a tenth Han be read
# again with eng (pages dithered from print-from-pdf: 0.85-0.89 -> 0.92-0.95).
# Still misread on raster-2.bin at every setting tried: 应收 and 实收 (Tesseract's alternative
# characters for those glyphs include neither 应 nor 收), so its total is not found; cutting the
# bands into pieces and voting over 6-36 renderings of each (dilated, blurred, darkened) found
# it in fewer than a third of the rendering sets tried. PP-OCR reads every label and amount of it
# from the dots as printed, piece by piece (0.949; in a trial with plainer text clean-up, pieces
# 0.965, whole bands 0.954 but with the columns run together, pieces blurred first 0.959).
# Crisp pages were left to Tesseract while pieces were cut at half a line height (PP-OCR read
# them worse: raster.bin 0.659, print-from-pdf 0.338); cut at a line height, with touching
# lines split and pictures left out (layout.py), PP-OCR reads them better than Tesseract:
# lines exact on held-out driver fonts 70.8% -> 92.5%, raster.bin 46.7% -> 76.7%.
# PP-OCR reads pieces from the dots as printed, except on pages where more than 10% of the dots
# touch no other dot above, below or beside (light grey text dithered to scattered dots: 24-64%
# on generated driver receipts in a grey of 120; crisp fonts 0-4.3%, raster.bin 3.8%,
# raster-2.bin's darker dithering 2.2%): those pieces are blurred (sigma 1 dot) and darkened
# (gamma 2) first, on generated dithered receipts 11/31 -> 27/31 lines (DejaVu Sans Mono),
# 15 -> 24 (Liberation Sans), 25 -> 28 (WenQuanYi Micro Hei); crisp pieces blurred lost 0-2.
_LONE_DOTS = 0.1
# Text dithered from a darker grey (70-100 of 255) leaves few lone dots (3-10%) but holes in its
# strokes (layout.holes): on generated driver receipts of the tuned fonts and of 7 other fonts
# (bench scratch), 0.12-0.22 of the dots on such pages, at most 0.028 on crisp pages; its pieces
# are softened too (threshold halfway), dithered lines read 879 -> 906 of 980, crisp the same
# (softening every page lost 6 crisp lines there and 4 of raster.bin's). The one-dot counters
# of bitmap fonts in text under _HOLES_HEIGHT dots (layout.py's H) look like such holes
# (raster.bin's bold 12-dot Han 0.072 at H 14, print-from-pdf's page printed at half size
# 0.096 at H 10, which lost 2 lines softened); on the generated dark dithered pages H is 17-21.
_HOLES = 0.075
_HOLES_HEIGHT = 16
# Lines less tall than this (dots, layout.py's H) are widened for PP-OCR in proportion: a PDF
# printed at half size (H 10) lost letters ("recepts"), raster.bin's 12-dot font repeated digits
_SMALL_PRINT = 20
_SOFTEN_SIGMA = 1.0
_SOFTEN_GAMMA = [round(255 * (v / 255) ** 2.0) for v in range(256)]
_SPECK_DOTS = 4
_SPECK_SHARE = 0.06
_DITHER_SIGMA = 1.25    # dots
_DITHER_GAMMA = 4.0
_BAND_GAP = 3           # blank rows between two lines (raster-2.bin has one inside a line)
_RULE_HEIGHT = 4        # a rule is at most 1/4 as tall as a text line...
_RULE_WIDTH = 2         # ...and at least 2 line heights wide
_HAN_SHARE = 0.1        # a reading less than 1/10 Han is read again with eng
# Tesseract does not read again a piece PP-OCR read as a number (_NUMBER) with every digit at
# least _SURE and no more than _UNREAD text heights of ink left unread at either end (a € or £
# PP-OCR dropped): it can only add a currency sign to it (see combine). The recognizer reads a
# piece's first character a step late: ~0.25 text heights unread on every piece.
_NUMBER = re.compile(r"[-+]?[\d., ]*\d")
_SURE = 0.95
_UNREAD = 0.5
# A Latin piece is Tesseract's alone where PP-OCR is unsure of a character (probability under
# _UNSURE) and Tesseract sure of its words (mean confidence _TESSERACT_SURE or more): on
# generated driver receipts of the tuned fonts (833 pieces) that read 16 more pieces right
# ("VielenDankfirthren", "0.536 k9", "n*" for "n°") and 3 fewer than combining the two, and
# held over 0.7-0.8 and 75-78; 2 fewer where Tesseract read no more digits than PP-OCR.
_UNSURE = 0.7
# A letter PP-OCR reads with a probability under _UNSURE_LETTER is Tesseract's letter read in its
# place (combine): on the tuned fonts' receipts 1 line righted ("Apfetstrudel"), none lost, at
# 0.4-0.5 (other seeds: none either way); at 0.6 1 and at 0.7 3 lost there (Tesseract's own t/l
# confusions in dithered print)
_UNSURE_LETTER = 0.5
_TESSERACT_SURE = 78
# A piece with Han that PP-OCR is unsure of is read again padded by _AGAIN_PAD of its width
# (as in a batch with wider pieces): raster-2.bin's 实收 (tendered), read 实妆 (0.55) alone, is
# read 实收 (0.76) padded to twice its width.
_AGAIN_PAD = 1.0
# Latin pieces are read by two tesseract runs at once, each loading its model (0.1 s CPU),
# when there are enough of them: a Latin receipt's ~35 took 0.45 s in one run
_TESSERACT_RUNS = 2
_SPLIT_IMAGES = 12
# dots of white around a piece given to PP-OCR: 7 rather than 4 made the recognizer's input
# ~10% narrower (it is scaled to 48 rows) and read as many lines of the tuned fonts' receipts
_PIECE_MARGIN = 7
# a piece with a run of this many of one character is read again this many times as wide
# (see _read_narrow_again)
_REPEATS = 3
_REPEAT_STRETCH = 1.5
_RUN = re.compile(r"(\S)\1{%d}" % (_REPEATS - 1))
_RUN_OF = re.compile(r"(.)\1+")
# On a page whose Latin pieces are read with more than _DENSE characters per recognizer step
# (the median), those pieces are read again _REPEAT_STRETCH times as wide (see
# _read_dense_again). Per piece (4 characters or more) of generated driver receipts monospace
# fonts read 0.26-0.41, proportional ones 0.33-0.66 (medians 0.33-0.48, the most Liberation Sans
# Narrow), print-from-pdf's serif pages 0.51-0.63 ("formating", "cilum"; its half-size page,
# widened as small print, 0.33-0.47). At 0.45 the held-out fonts' receipts read 1 line more
# ("Seriennr:", Liberation Sans Narrow), at 0.5 none; the tuned fonts' the same. Only pages that
# dense pay for it: a serif PDF page ~0.5 s more CPU (the wider reading is 1.5 times as long).
_DENSE = 0.45
_NARROW_MARKS = frozenset(".,;:")
_MIN_PAGE = 48          # dots: images less tall in all are a logo, not a receipt to read
_FEW_LINES = 3          # printed text lines a raster-only receipt may have besides its images


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
    assert best is not None  # candidates is never empty
    return best[1]


def _stripes(width, height, payload, dots):
    per_col = dots // 8
    img = Image.new("1", (width, height), 1)
    pixels = img.load()
    assert pixels is not None  # a new image is loaded
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


def ocr_image(page: Image.Image, languages: list[str] | None = None,
              pp_ocr: bool = True) -> list[str]:
    """Text lines read in a page image, normalised (see clean_line). With PP-OCR installed
    (server/ppocr.py) and pp_ocr, every page is read line by line and piece by piece by it;
    else by Tesseract, a dithered page band by band and a crisp one whole."""
    reader = LineReader.load() if pp_ocr else None
    if pp_ocr and reader is None:
        log.warning("PP-OCR is not installed (make setup): page read by Tesseract")
    if reader is not None:
        return _read_pieces(page, reader)
    if languages is None:
        installed = tesseract_languages()
        languages = [lang for lang in ("chi_sim", "eng") if lang in installed] or ["eng"]
    if is_dithered(page):
        return decimal_marks(_read_dithered(page, languages))
    return decimal_marks(_read_crisp(page, languages))


# a decimal mark between digits: an amount's ("7,00", "12.50"), a price's or a quantity's with
# one to three decimals, not a date's, a time's, a code's or a thousands separator's (marks on
# both sides of a group, "10.05.2026", "1.234,50") -- three decimals only after a lone 0
# ("0,536 kg"), which no thousands separator follows
_DECIMAL = re.compile(r"(?<![\d.,])(?:\d+[.,]\d{1,2}|0[.,]\d{3})(?!\d)(?![.,]\d)")
_AMOUNT = re.compile(r"(?<![\d.,])\d+([.,])\d{2}(?!\d)(?![.,]\d)")
# share of a page's amounts printed with one mark, and how many at least, for the others to be
# read with it: on dithered receipts of the tuned fonts 0.75 corrected 2 lines of 291, 0.6 and
# 0.51 7 (a dithered page's commas are misread that often); no generated receipt mixes marks
_MARK_MAJORITY = 0.6
_MARK_COUNT = 3


def decimal_marks(lines: list[str], printed: str | None = None) -> list[str]:
    """Decimal marks made the page's: a receipt prints all its amounts with one mark ("," in
    most of Europe, "." elsewhere), but in dithered print a comma is a speck that OCR reads
    as a full stop (and the other way round). The mark is printed (the one measured in the
    print, see printed_mark), else the one most of a page's amounts are read with (at least
    _MARK_COUNT of them, _MARK_MAJORITY); the other mark between digits is read as that one
    (see _DECIMAL for what is left alone)."""
    marks = [m.group(1) for line in lines for m in _AMOUNT.finditer(line)]
    if not marks:
        return lines
    mark = printed or max(".,", key=marks.count)
    if not printed and marks.count(mark) < max(_MARK_COUNT, _MARK_MAJORITY * len(marks)):
        return lines
    return [_DECIMAL.sub(lambda m: re.sub("[.,]", mark, m.group(0)), line) for line in lines]


def _read_pieces(page, reader):
    """Line by line (server/ocr/layout.py): rules become dashes; each text line's pieces are
    read by PP-OCR and joined by two spaces (columns apart, as printed text has them). Pieces
    PP-OCR reads without Han are read again by Tesseract (see _second_reading), which supplies
    what PP-OCR's Chinese character set lacks or confuses (see combine), or, where PP-OCR is
    unsure of a character and Tesseract sure of its reading, gives the piece's text."""
    dots = layout.ink(page)
    found = layout.lines(dots)
    pieces = [(k, box) for k, line in enumerate(found) for box in line.pieces]
    images = [layout.piece_image(dots, box, _PIECE_MARGIN, _PIECE_MARGIN) for _, box in pieces]
    height = layout.line_heights(dots)[1]
    soft = layout.lone_dots(dots) > _LONE_DOTS or (
        height >= _HOLES_HEIGHT and layout.holes(dots) >= _HOLES)
    if soft:
        # grey text dithered to scattered dots or to strokes full of holes: blurred back to grey
        # and darkened
        images = [_soften(image) for image in images]
    stretch = max(1.0, _SMALL_PRINT / height)
    readings = reader.recognise(images, stretch)
    _read_solid_again(reader, dots, [box for _, box in pieces], images, readings, stretch, soft)
    _read_narrow_again(reader, images, readings, stretch)
    wider = _read_dense_again(reader, images, readings, stretch)
    _read_han_again(reader, images, readings, stretch)
    texts = [r.text for r in readings]
    latin = [k for k, r in enumerate(readings) if _second_reading(r, images[k])]
    second: list[tuple[str, float]] = []
    if latin and shutil.which("tesseract"):
        language, tessdata = _latin_model()
        try:
            second = tesseract_split([images[k] for k in latin], [language], _PSM_LINE,
                                     tessdata)
        except RuntimeError as e:      # PP-OCR's reading alone rather than no page
            log.warning("OCR: Latin pieces read by PP-OCR alone: %s", e)
        for k, (text, confidence) in zip(latin, second):
            if _tesseract_alone(readings[k], text, confidence):
                texts[k] = text.strip()
                if k in wider:      # Tesseract merges double letters as PP-OCR ("cilum")
                    texts[k] = _added(texts[k], wider[k]) or texts[k]
            else:
                texts[k] = combine(texts[k], text.strip(), reader.charset,
                                   readings[k].probabilities, specks=soft)
    for k in latin:
        texts[k] = latin_letters(texts[k])
    parts: list[list[str]] = [[] for _ in found]
    for (k, _), text in zip(pieces, texts):
        parts[k].append(clean_line(text))
    lines = []
    for line, words in zip(found, parts):
        text = line.text or "  ".join(filter(None, words))
        if text:
            lines.append(text)
    shapes = [layout.mark_shape(dots, box) for (_, box), text in zip(pieces, texts)
              if _ONE_AMOUNT.fullmatch(clean_line(text))]
    return decimal_marks(lines, printed_mark([s for s in shapes if s is not None]))


# a piece read as one amount: its decimal mark is measured in the print (layout.mark_shape)
_ONE_AMOUNT = re.compile(r"[-+]?\d+[.,]\d\d")
# Depths of a mark below the digits' baseline (digit heights) that only a comma's tail reaches:
# on generated driver receipts of the tuned fonts and of 8 other fonts at other widths (bench
# scratch), Latin full stops measured -0.08-0.0 (one 0.09 in a thin dithered font), commas
# 0.06-0.25 crisp and 0-0.3 dithered (a light grey comma's tail often lost); depths above 0.5
# were another glyph taken for the mark. A brush font's full stop (AR PL UKai), a teardrop
# beside digits that do not share a baseline, measured 0-0.56 but no taller than wide: a
# comma is _COMMA_ASPECT times taller than wide (commas 1.0-2.5, that full stop 0.8-1.0)
_COMMA_DEPTH = (0.05, 0.5)
_COMMA_ASPECT = 1.1
# a page prints commas if at least _COMMA_MARKS of its measured marks, and _COMMA_SHARE of them,
# are that deep and tall (dithered commas: 2 of 7 to all; full stops: at most 1 of 10); full
# stops if none reaches that deep and at least _MARK_COUNT sit within _STOP_DEPTH of the
# baseline; else the page's readings decide (decimal_marks). On those receipts (104 pages) the
# marks decided 85 pages, all right, and left 19 to the readings.
_COMMA_MARKS = 2
_COMMA_SHARE = 0.25
_STOP_DEPTH = 0.05


def printed_mark(shapes: list[tuple[float, float]]) -> str | None:
    """The decimal mark a page prints, "," or ".", from the shapes (depth, aspect) of its
    amounts' marks (layout.mark_shape), or None if they do not tell."""
    low, high = _COMMA_DEPTH
    deep = [aspect for depth, aspect in shapes if low <= depth <= high]
    commas = sum(aspect > _COMMA_ASPECT for aspect in deep)
    if commas >= max(_COMMA_MARKS, _COMMA_SHARE * len(shapes)):
        return ","
    if not deep and sum(abs(depth) < _STOP_DEPTH for depth, _ in shapes) >= _MARK_COUNT:
        return "."
    return None


# a word's 1s between lowercase letters, in a word with no other digit ("Vo11milch": both
# engines read some fonts' dithered l as 1; _better does not mend two in a row): on generated
# driver receipts of the tuned fonts, other seeds, 1 line of 391 righted, none lost
_ONES_IN_WORD = re.compile(r"(?<=[a-zß])1+(?=[a-zß])")
# an i or j opening a capitalised word before a "!" later in the piece: Spanish "¡", which
# neither engine reads ("iGracias ... !", "jGracias ... !"); 1 line of 188 righted on the tuned
# fonts' receipts, 2 of 391 with other seeds, none lost
_OPENING_MARK = re.compile(r"(?<![^\s(\"'])[ij](?=[A-ZÁÉÍÓÚÑ][a-záéíóúñü][^!¡]*!)")
# the shapes PP-OCR gives a German ß, which its set lacks, after two lowercase letters and
# before a lowercase letter or the word's end ("groB", "Hauptstrabe"): a ß where PP-OCR is
# unsure of them (see _sharp_s; a sure capital B stays: "MacBook")
_SHARP_S_SHAPES = re.compile(r"(?<=[a-zäöü]{2})[Bbf8](?=[a-zäöü]|\W|$)")


def latin_letters(text: str) -> str:
    """A Latin piece's letters the engines read as look-alikes made letters again, by rules that
    need no word list: 1s inside a word with no other digit are l (_ONES_IN_WORD), and an i or j
    opening a capitalised word before a "!" is "¡" (_OPENING_MARK)."""
    text = re.sub(r"\S+", _ones_to_l, text)
    return _OPENING_MARK.sub("¡", text)


def _ones_to_l(word: re.Match) -> str:
    """The word's 1s between lowercase letters as l, if it has no other digit (a code such as
    "a1b2" keeps them)."""
    token = word.group(0)
    if any(c.isdigit() and c != "1" for c in token):
        return token
    return _ONES_IN_WORD.sub(lambda m: "l" * len(m.group(0)), token)


# a mark between digits: a decimal mark or a thousands separator
_MARK_IN_NUMBER = re.compile(r"\d[.,]\d")


def _tesseract_alone(reading, text: str, confidence: float) -> bool:
    """True if a Latin piece is Tesseract's reading (text, confidence) alone rather than PP-OCR's
    reading combined with it: PP-OCR unsure of a character, Tesseract sure of its words and
    reading no more digits than PP-OCR (Tesseract makes digits of dithering's specks:
    "3 x 1,909", "690902 Lyon"), no fewer marks between digits (it lost a dithered decimal
    comma: "3,49" read "349"; 2 lines of the tuning fonts' dithered receipts righted, none lost)
    and no accent of another language (see _WESTERN_ACCENTS)."""
    return min(reading.probabilities) < _UNSURE and confidence >= _TESSERACT_SURE and \
        sum(c.isdigit() for c in text) <= sum(c.isdigit() for c in reading.text) and \
        len(_MARK_IN_NUMBER.findall(text)) >= len(_MARK_IN_NUMBER.findall(reading.text)) and \
        all(_western_accent(c) or _plain(c) == c for c in text)


# what drawing a piece's dithered dashes solid may change in its reading (see _read_solid_again):
# the dots, dashes and underscore PP-OCR reads for a light dithered dash or underscore; on
# generated driver receipts in other fonts (bench xtune), letting other characters change too
# (the reading kept where surer) lost 3 lines of 1297
_DASH_MARKS = frozenset(".,·・_-‐‑–—―…")


def _read_solid_again(reader, dots, boxes, images, readings, stretch, soft) -> None:
    """Pieces with dithered dashes or underscores (layout.solid_strokes) read again with them
    drawn solid (and softened as the first images were, if soft); that reading and image kept
    (in place) if it differs from the first only in such marks and spaces ("2016-03·25" ->
    "2016-03-25", "10002.002" -> "10002_002"). Solid, the fragments of other flat strokes
    change letters: a dithered T's crossbar beside its stem made it I (generated driver
    receipts in other fonts, bench xtune)."""
    solid = {}
    for k, box in enumerate(boxes):
        if not _DASH_MARKS.intersection(readings[k].text):
            continue            # only marks may change (see _marks_only): none to mend
        left, top, right, bottom = box
        piece = dots[top:bottom, left:right]
        if layout.solid_strokes(piece) is not piece:
            image = layout.piece_image(dots, box, _PIECE_MARGIN, _PIECE_MARGIN, solid=True)
            solid[k] = _soften(image) if soft else image
    if not solid:
        return
    again = reader.recognise(list(solid.values()), stretch)
    for (k, image), reading in zip(solid.items(), again):
        if reading.text != readings[k].text and _marks_only(readings[k].text, reading.text):
            readings[k], images[k] = reading, image


# a digit, a decimal mark and two digits that end the number: an amount's cents
_CENTS = re.compile(r"\d[.,]\d\d(?!\d)")


def _marks_only(first: str, second: str) -> bool:
    """True if two readings differ only in _DASH_MARKS replaced by _DASH_MARKS, and spaces
    (a piece read again must have one of them to change), never in an amount's decimal mark
    (_CENTS: solid_strokes leaves marks on the baseline as they are, so a change there would be
    the recognizer's, not the print's; "10002.002" is no amount)."""
    a, b = first.replace(" ", ""), second.replace(" ", "")
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if tag != "replace" or not set(a[i1:i2] + b[j1:j2]) <= _DASH_MARKS:
            return False
        if any(_CENTS.match(a, i - 1) for i in range(max(i1, 1), i2)):
            return False
    return True


def _read_narrow_again(reader, images, readings, stretch) -> None:
    """Pieces read as nothing, or with a run of _REPEATS or more of one character, read again
    _REPEAT_STRETCH times as wide; that reading kept (in place) if the first was empty and it
    has a letter or digit, every character at least _UNSURE likely (not a speck of dithering
    read as a quote, nor a QR code read as "8."), or if it is longer and differs only in how
    many times characters repeat. CTC merges a repeated character unless a
    blank step lies between two of them, and a narrow digit gets under two steps (raster.bin's
    11 4s read as 9); a lone narrow letter gets too few steps to be read at all (raster.bin's
    size "S")."""
    again = [k for k, r in enumerate(readings) if not r.text.strip() or _RUN.search(r.text)]
    if not again:
        return
    wider = reader.recognise([images[k] for k in again], stretch * _REPEAT_STRETCH)
    for k, reading in zip(again, wider):
        if (not readings[k].text.strip() and any(c.isalnum() for c in reading.text) and
                min(reading.probabilities) >= _UNSURE) or (
                len(reading.text) > len(readings[k].text) and
                _RUN_OF.sub(r"\1", reading.text) == _RUN_OF.sub(r"\1", readings[k].text)):
            readings[k] = reading


def _read_dense_again(reader, images, readings, stretch) -> dict[int, str]:
    """On a page whose Latin pieces are read with more than _DENSE characters per recognizer
    step (the median; narrow letters: a proportional serif font, a condensed one), the pieces
    that dense read again _REPEAT_STRETCH times as wide, and the characters that reading adds
    put into the first one (see _added): a letter twice where the first reading has it once
    (greedy CTC merges two of one character unless a blank step lies between them:
    "formating", "cilum") and narrow marks the squeezed reading lost ("proident sunt",
    "Seriennr:"). The first reading's spaces are kept: read wider, words split ("forma tting").
    Returns the wider readings' texts by piece (Tesseract misses the same letters and marks)."""
    latin = {k: len(r.text) / r.steps for k, r in enumerate(readings)
             if r.steps and r.text.strip() and _han_share(r.text) == 0}
    if not latin or statistics.median(latin.values()) <= _DENSE:
        return {}
    dense = [k for k, density in latin.items() if density > _DENSE]
    wider = reader.recognise([images[k] for k in dense], stretch * _REPEAT_STRETCH)
    for k, reading in zip(dense, wider):
        text = _added(readings[k].text, reading.text)
        if text is not None:
            readings[k] = Reading(text, _spread(readings[k], text), readings[k].span,
                                  readings[k].steps)
    return {k: reading.text for k, reading in zip(dense, wider)}


def _added(first: str, wider: str) -> str | None:
    """first with the characters wider adds (spaces aside) put in place, if wider differs from
    it only by such additions, each a letter next to its twin ("tt"; not a digit: an amount's
    digits are left to _read_narrow_again's stricter test) or marks of _NARROW_MARKS after a
    letter; else None (also when it adds nothing)."""
    where = [k for k, c in enumerate(first) if not c.isspace()]
    a, b = "".join(first[k] for k in where), "".join(wider.split())
    inserts: dict[int, str] = {}
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        added = b[j1:j2]
        twin = added.isalpha() and len(added) == 1 and added in (a[i1 - 1:i1], a[i1:i1 + 1])
        marks = set(added) <= _NARROW_MARKS and a[i1 - 1:i1].isalpha()
        if op != "insert" or not (twin or marks):
            return None
        at = where[i1 - 1] + 1 if i1 else 0
        inserts[at] = inserts.get(at, "") + added
    if not inserts:
        return None
    return "".join(inserts.get(k, "") + c for k, c in enumerate(first)) + \
        inserts.get(len(first), "")


def _spread(reading, text: str) -> list[float]:
    """One probability per character of text (the first reading with characters added): the
    added ones get the reading's least (its other uses need one per character)."""
    least = min(reading.probabilities, default=0.0)
    out, k = [], 0
    for c in text:
        if k < len(reading.text) and c == reading.text[k]:
            out.append(reading.probabilities[k])
            k += 1
        else:
            out.append(least)
    return out


def _read_han_again(reader, images, readings, stretch) -> None:
    """Pieces with Han read with a character less likely than _UNSURE read again padded (see
    _AGAIN_PAD), the more certain reading kept (in place); Latin pieces get their second
    reading from Tesseract."""
    unsure = [k for k, r in enumerate(readings) if _han_share(r.text) > 0
              and min(r.probabilities) < _UNSURE]
    if not unsure:
        return
    again = reader.recognise([images[k] for k in unsure], stretch, _AGAIN_PAD)
    for k, reading in zip(unsure, again):
        # a reading that dropped the doubtful character would look surer: it must keep them all
        if len(reading.text) >= len(readings[k].text) and \
                min(reading.probabilities) > min(readings[k].probabilities):
            readings[k] = reading


def _second_reading(reading, image) -> bool:
    """True if Tesseract should read the piece too: PP-OCR read it without Han (see combine),
    unless PP-OCR is sure of a number that covers all the piece's ink (Tesseract only adds the
    € or £ PP-OCR drops next to amounts, which leaves ink unread)."""
    text = reading.text
    if not text.strip() or _han_share(text) > 0:
        return False
    return not (_NUMBER.fullmatch(text) and min(reading.probabilities) >= _SURE
                and _unread(reading, image) <= _UNREAD)


def _unread(reading, image) -> float:
    """Width of the piece's ink left or right of what PP-OCR read, in text heights."""
    text_height = image.height - 2 * _PIECE_MARGIN
    left = reading.span[0] * image.width - _PIECE_MARGIN
    right = (1.0 - reading.span[1]) * image.width - _PIECE_MARGIN
    return max(left, right, 0.0) / max(text_height, 1)


@functools.lru_cache(maxsize=1)
def _latin_model() -> tuple[str, str | None]:
    """(language, tessdata directory or None) for reading Latin pieces again: Tesseract's Latin
    script model if installed (Debian tesseract-ocr-script-latn; on generated driver receipts
    it read pieces 96% right to eng's 88%, most of the difference accents), without its 89 MB
    word list (_lean_model); else eng."""
    if "Latin" not in tesseract_languages():
        return "eng", None
    try:
        return "Latin", _lean_model("Latin")
    except (OSError, subprocess.CalledProcessError) as exc:
        log.warning("Tesseract Latin model used whole (%s)", exc)
        return "Latin", None


def _lean_model(language: str) -> str:
    """A tessdata directory (in the user's cache) holding the language's model without its
    word list, made once with combine_tessdata: loading the whole Latin model took 0.4 s of
    each run, the word list nearly all of it, and reading without it lost 3 of 486 lines
    (generated driver receipts). Receipts are mostly names, codes and amounts."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                         "tilltap", "tessdata")
    target = os.path.join(cache, language + ".traineddata")
    if os.path.exists(target):
        return cache
    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True,
                         check=True)
    installed = re.search(r'"(.+?)"', out.stdout.splitlines()[0] if out.stdout else "")
    if installed is None:
        raise OSError("tessdata directory not found")
    os.makedirs(cache, exist_ok=True)
    configs = os.path.join(cache, "configs")   # the txt and tsv output configs
    if not os.path.exists(configs):
        os.symlink(os.path.join(installed.group(1), "configs"), configs)
    with tempfile.TemporaryDirectory(prefix="tilltap-tessdata-") as tmp:
        parts = os.path.join(tmp, language + ".")
        subprocess.run(["combine_tessdata", "-u",
                        os.path.join(installed.group(1), language + ".traineddata"), parts],
                       capture_output=True, check=True)
        os.remove(parts + "lstm-word-dawg")
        subprocess.run(["combine_tessdata", parts], capture_output=True, check=True)
        os.replace(parts + "traineddata", target)
    return cache


def combine(primary: str, second: str, charset: frozenset[str],
            probabilities: list[float] | None = None, specks: bool = True) -> str:
    """PP-OCR's reading (primary) of a Latin piece, corrected by Tesseract's (second) where
    PP-OCR is measured to be wrong and Tesseract right (generated driver receipts): letters and
    currency signs PP-OCR's Chinese set lacks (accented letters, €, £, ß, ñ, Œ) that Tesseract
    read in place of or next to PP-OCR's; a capital PP-OCR read in lower case (C, W, X of some
    fonts); a capital I PP-OCR read as l ("USt-ldNr."); look-alike digits and letters by their
    neighbours (PP-OCR's "0xford", "N0.", "Til1", "40og", "20%0n", "Bele9-Nr."); a symbol PP-OCR
    made of a digit ("©.465"), a "%" ("19%" read "198") or a date's "T" it read as a digit; a
    currency sign PP-OCR dropped beside an amount whose digits Tesseract misread ("8,11" read
    "&,li€"); a full stop after a word that Tesseract does not see (a speck of dithering:
    "TOTAL."), if specks (a page whose pieces are softened: crisp print leaves none, and
    Tesseract missed a PDF's small full stop, "pariatur."); a letter PP-OCR gave a probability
    (probabilities: one per character of primary) under _UNSURE_LETTER. Everything else stays
    PP-OCR's, which reads digits and amounts better. The two readings are aligned without their
    spaces, which the engines place differently ("Cashier:oliver", "Cashier: Oliver"),
    Tesseract's with its marks made the printed ones first (_tesseract_marks: "¡")."""
    unsure = _unsure(primary, probabilities)
    primary = _sharp_s(primary, unsure)
    where = [k for k, c in enumerate(primary) if not c.isspace()]
    ours = "".join(primary[k] for k in where)
    theirs_all = "".join(_tesseract_marks(second).split())
    text = list(primary)
    inserts: dict[int, str] = {}
    matcher = difflib.SequenceMatcher(None, ours, theirs_all, autojunk=False)
    for op, i1, i2, j1, j2 in _merged(matcher.get_opcodes()):
        theirs = theirs_all[j1:j2]
        at = where[i1] if i1 < len(where) else len(primary)
        lead, trail = _signs(ours[i1:i2], theirs) if op == "replace" else ("", "")
        if lead or trail:
            # an amount read with a currency sign PP-OCR dropped ("8,11" read "&,li€"): the
            # sign is taken, the digits compared one by one as any others
            inserts[at] = inserts.get(at, "") + lead
            inserts[where[i2 - 1] + 1] = trail + inserts.get(where[i2 - 1] + 1, "")
            theirs = theirs[len(lead):len(theirs) - len(trail)]
            j1, j2 = j1 + len(lead), j2 - len(trail)
        if op == "insert" and i1 and not any(unicodedata.category(c) == "Sc" for c in theirs):
            at = where[i1 - 1] + 1      # a sign after a word ("n°"), not before an amount ("£5")
        twin = _twin(ours, i1, theirs) if op == "insert" else None
        if twin is not None:
            # an accented letter read beside the plain or accented letter PP-OCR read in its
            # place ("Tél." read "TéÉl.", "brûlée" aligned as "brûlé" + "e"): one letter
            if _plain(ours[twin]) == ours[twin]:      # in PP-OCR's case ("CAFE": "CAFÉ")
                text[where[twin]] = theirs.upper() if ours[twin].isupper() else theirs.lower()
        elif op in ("replace", "insert") and _accented(ours[i1:i2], theirs, charset) \
                and not _tax_code(primary, where[i1:i2]):
            for k in where[i1:i2]:
                text[k] = ""
            inserts[at] = inserts.get(at, "") + theirs
        elif op == "replace" and i2 - i1 == j2 - j1:
            for n in range(i2 - i1):    # left to right, each with its corrected neighbours
                k = where[i1 + n]
                text[k] = _better(text, k, theirs[n])
                if unsure[k] and text[k].isalpha() and _printed_letter(theirs[n]):
                    text[k] = theirs[n]     # a letter PP-OCR is unsure of ("Apfetstrudel")
        elif specks and op == "delete" and i2 == len(ours) and ours[i1:i2] in (".", ",") \
                and ours[i1 - 1:i1].isalpha():
            text[where[i1]] = ""        # a speck of dithering after a word ("TOTAL.")
    return "".join(inserts.get(k, "") + c for k, c in enumerate(text)) + inserts.get(len(text), "")


def _sharp_s(primary: str, unsure: list[bool]) -> str:
    """primary with the letters of ß's shapes PP-OCR is unsure of inside a lowercase word
    (_SHARP_S_SHAPES) read as ß: its set lacks ß, and in thin dithered print it gave one the
    nearest shape under _UNSURE_LETTER ("grof" 0.39, "Hauptstrabe" 0.29; 3 lines of the tuning
    fonts' dithered receipts righted, none lost), where Tesseract read no ß either ("gro8",
    "Hauptstraĝe")."""
    return _SHARP_S_SHAPES.sub(lambda m: "ß" if unsure[m.start()] else m.group(0), primary)


# an i with a grave accent before a letter: Italian puts it only at a word's end ("più"), so in
# a word it is a dithered i's dot Tesseract read as an accent ("Amerìcano", "dìd"; 2 lines of
# the tuning fonts' dithered receipts righted, none lost)
_GRAVE_I = re.compile(r"[ìÌ](?=[^\W\d_])")


def _tesseract_marks(second: str) -> str:
    """Tesseract's reading with its marks made what is printed before it is combined: an i or j
    opening a capitalised word before a "!" is "¡" (_OPENING_MARK: PP-OCR reads nothing there,
    so the mark is taken as a sign PP-OCR left out) and an ì inside a word is i (_GRAVE_I)."""
    second = _GRAVE_I.sub(lambda m: "i" if m.group(0) == "ì" else "I", second)
    return _OPENING_MARK.sub("¡", second)


_CURRENCY = "$£€¥￥"


def _signs(ours: str, theirs: str) -> tuple[str, str]:
    """(leading, trailing) currency signs of theirs, Tesseract's reading of what PP-OCR read
    as ours, if ours is a number and theirs is as long as ours besides them; else ("", "")."""
    if not ours or not all(c.isdigit() or c in ".," for c in ours):
        return "", ""
    body = theirs.lstrip(_CURRENCY)
    lead = theirs[:len(theirs) - len(body)]
    core = body.rstrip(_CURRENCY)
    trail = body[len(core):]
    if len(core) != len(ours):
        return "", ""
    return lead, trail


def _unsure(primary: str, probabilities: list[float] | None) -> list[bool]:
    """Per character of primary: True where PP-OCR's probability is under _UNSURE_LETTER (all
    False without one probability per character)."""
    if probabilities is None or len(probabilities) != len(primary):
        return [False] * len(primary)
    return [p < _UNSURE_LETTER for p in probabilities]


def _printed_letter(c: str) -> bool:
    """True for a plain letter or one with an accent of _WESTERN_ACCENTS."""
    return c.isalpha() and (_plain(c) == c or _western_accent(c))


def _merged(opcodes):
    """difflib opcodes with neighbouring differences joined into one replace ("B" -> "ß" comes
    as an insert and a delete when the next letter matches either)."""
    out: list[tuple[str, int, int, int, int]] = []
    for op in opcodes:
        if out and op[0] != "equal" and out[-1][0] != "equal":
            _, i1, _, j1, _ = out[-1]
            out[-1] = ("replace", i1, op[2], j1, op[4])
        else:
            out.append(op)
    return out


_LATIN_EXTRA = frozenset("ßŒœ€£¥¡¿°")


def _tax_code(primary: str, span: list[int]) -> bool:
    """True if span is one capital standing alone in primary: a tax code ("7,90 A"), on which
    Tesseract puts accents dithering leaves ("7,90 Á") and receipts do not print."""
    if len(span) != 1 or not primary[span[0]].isupper():
        return False
    k = span[0]
    return not primary[k - 1:k].strip() and not primary[k + 1:k + 2].strip()


# the accents of the Latin receipts' languages (grave, acute, circumflex, tilde, diaeresis,
# ring, cedilla); Tesseract's others on dithered print were specks ("TVĀ", "Ẹuf", "Núřez")
_WESTERN_ACCENTS = frozenset("\u0300\u0301\u0302\u0303\u0308\u030a\u0327")
# the letters of the Western European code page (Windows-1252: the languages' own letters, as a
# driver's text has them); on the dithered receipts of the tuning fonts (bench scratch) 2 lines
# righted with _sharp_s ("Hauptstraßĝe"), none lost
_WESTERN_LETTERS = frozenset(c for c in bytes(range(0x80, 0x100)).decode("cp1252", "ignore")
                             if c.isalpha())


def _western_accent(c: str) -> bool:
    """True for a letter with one of _WESTERN_ACCENTS that Western European text has ("é", "ñ",
    "ç"; not "ā" or "ř", nor "ĝ" or "ů", which Tesseract read in dithered print beside a "ß" and
    for a "ú": see _WESTERN_LETTERS)."""
    marks = unicodedata.normalize("NFD", c)[1:]
    return c.isalpha() and len(marks) == 1 and marks in _WESTERN_ACCENTS and \
        c in _WESTERN_LETTERS


def _plain(c: str) -> str:
    """A letter without its accent ("é" -> "e")."""
    return unicodedata.normalize("NFD", c)[0]


def _twin(ours: str, at: int, theirs: str) -> int | None:
    """Where in ours (just before or at at) stands the letter that theirs, one accented letter
    Tesseract read in addition, is a form of (same letter, either case), or None."""
    if len(theirs) != 1 or not theirs.isalpha() or _plain(theirs) == theirs:
        return None
    for k in (at - 1, at):
        if 0 <= k < len(ours) and _plain(ours[k]).lower() == _plain(theirs).lower():
            return k
    return None


def _accented(ours: str, theirs: str, charset: frozenset[str]) -> bool:
    """True if Tesseract's theirs, read where PP-OCR read ours, is letters or currency signs
    with one PP-OCR's set lacks or an accent PP-OCR left off ("Especes" for "Espèces", "ri"
    for "ñ"), in place of at most one character more (Tesseract's other symbols, "×", "“",
    are more often noise than print)."""
    def printed(c):     # what Latin receipts print beyond PP-OCR's set: not "æ", "ł", "þ"
        return c in charset or _western_accent(c) or c in _LATIN_EXTRA

    allowed = all((c.isalpha() or unicodedata.category(c) == "Sc" or c in "¡¿°") and printed(c)
                  for c in theirs)
    # something PP-OCR could not read, or a sign it left out ("n°" read "n")
    new = any(c not in charset or (c.isalpha() and _plain(c) != c) or
              (not ours and c in _LATIN_EXTRA) for c in theirs)
    ours_plain = all(_plain(c) == c for c in ours)
    # an accent Tesseract puts on a letter whose case it also changed is a misread shape
    # ("Anneliese" read "ánneliese")
    same_case = len(ours) != len(theirs) or all(
        a.isupper() == b.isupper() or _plain(a).lower() != _plain(b).lower()
        for a, b in zip(ours, theirs))
    return allowed and new and ours_plain and same_case and len(ours) <= len(theirs) + 1


_LOOKALIKE = {"0": "oO", "1": "lI", "5": "sS", "8": "B", "9": "g"}
# capitals Tesseract reads for digits ("O", "I", "S", "B", "Z" for 2, "G" for 6): between digits
# they stay PP-OCR's digits; another capital Tesseract reads between the digits of a code or a
# date and time (_CODE), where PP-OCR read a digit, is printed ("22T16" read "22116" and
# "28719" in dithered FreeMono: 3 lines of the tuning fonts' dithered receipts righted, none
# lost)
_DIGIT_SHAPES = frozenset("OISBZG")
_CODE = re.compile(r"\d[-:/]\d")
_PUNCTUATION = set(".,:;-/%()'&+*#@$!?\"")


def _better(chars, k, theirs):
    """chars[k] or Tesseract's character in its place (see combine); chars: the reading so
    far, one string per character of PP-OCR's (empty where dropped)."""
    text = "".join(c or "\0" for c in chars)
    ours = text[k]
    if ours.islower() and theirs.isupper() and ours.upper() == theirs:
        return theirs       # PP-OCR reads some fonts' C, W, X in lower case; never the reverse
    if ours == "l" and theirs == "I" and text[k + 1:k + 2].isalpha():
        return theirs       # a capital I starting a word or inside one ("USt-IdNr.")
    if theirs in _LOOKALIKE.get(ours, "") and _in_word(text, k):
        return theirs
    if ours in _LOOKALIKE.get(theirs, "") and _in_number(text, k):
        return theirs
    if not ours.isalnum() and ours not in _PUNCTUATION and theirs.isalnum():
        return theirs
    if theirs == "%" and ours.isdigit() and text[k - 1:k].isdigit() and \
            not text[k + 1:k + 2].isdigit() and _whole_number_before(text, k):
        return theirs       # a thin dithered % PP-OCR read as a digit ending a whole number
        #                     ("19%" read "198"; 7 lines of the tuning fonts' dithered receipts
        #                     righted, none lost); never an amount's last digit ("12.98")
    if ours.isdigit() and theirs.isupper() and theirs not in _DIGIT_SHAPES and \
            text[k - 1:k].isdigit() and text[k + 1:k + 2].isdigit() and _in_code(text, k):
        return theirs       # a capital between digits of a date and time ("2026-03-22T16:49")
    return ours


def _in_word(text, k):
    """True if text[k] stands in a word: a letter after it and a letter or a word start before
    it, or a letter before it and no digits after it (an amount: "RM0.50" keeps its 0)."""
    before, after, then = text[k - 1:k] if k else "", text[k + 1:k + 2], text[k + 2:k + 3]
    if after.isalpha():
        return not before.isdigit() and (after.islower() or before in ("", " ") or
                                         before.isalpha())
    return before.isalpha() and not after.isdigit() and not (after in ".," and then.isdigit())


def _whole_number_before(text, k):
    """True if the digits before text[k] are a rate's: one or two, after no decimal mark (not
    "12.9" of "12.98", nor "198" of a whole-number amount "1980")."""
    start = k
    while start and text[start - 1].isdigit():
        start -= 1
    return k - start <= 2 and not (start > 1 and text[start - 1] in ".," and
                                   text[start - 2].isdigit())


def _in_code(text, k):
    """True if the word around text[k] (itself left out) is a date and time or a code whose
    digits are joined by "-", ":" or "/" (_CODE); not an amount, even with a currency or a
    label glued on ("RM175.00", "TOTAL:1450.00")."""
    start = text.rfind(" ", 0, k) + 1
    end = text.find(" ", k)
    return _CODE.search(text[start:k] + " " + text[k + 1:end if end >= 0 else len(text)]) \
        is not None


def _in_number(text, k):
    """True if text[k] stands among digits: a digit on one side and a digit, a decimal point or
    nothing on the other; or alone before an "x" alone, a count ("Toilettenpapier 8x" read "Bx"
    in dithered print: 1 line of 391 righted on the tuned fonts' receipts, other seeds)."""
    before, after = text[k - 1:k] if k else "", text[k + 1:k + 2]
    return (before.isdigit() and (after.isdigit() or after in ("", " ", ".", ",") or
                                  (after.isalpha() and after.islower()))) or \
        (after.isdigit() and (before in ("", " ", ".", ",") or before.isdigit())) or \
        (before in ("", " ") and after == "x" and text[k + 2:k + 3] in ("", " "))


def _soften(image):
    """A dithered piece blurred back to grey, the grey darkened so that thin strokes count."""
    return image.filter(ImageFilter.GaussianBlur(_SOFTEN_SIGMA)).point(_SOFTEN_GAMMA)


def _dashes(width, line_height):
    """A rule as printed text writes it: receipt fonts are about half as wide as tall, so one
    dash per half line height."""
    return "-" * max(3, round(2 * width / line_height))


def _read_crisp(page, languages):
    """The whole page scaled up and slightly blurred, read as one block of text."""
    big = page.convert("L").resize((page.width * _SCALE, page.height * _SCALE),
                                   Image.Resampling.LANCZOS)
    big = big.filter(ImageFilter.GaussianBlur(_BLUR))
    ((text, _),) = tesseract([big], languages, _PSM)
    return _lines(text)


def is_dithered(page: Image.Image) -> bool:
    """True if the page is grey text dithered to dots rather than solid strokes: a share of its
    dots lie in specks (touching groups of at most _SPECK_DOTS dots), which whole glyphs,
    however thin, do not leave."""
    dots, specks = 0, 0
    for size in _component_sizes(page):
        dots += size
        if size <= _SPECK_DOTS:
            specks += size
    return dots > 0 and specks > _SPECK_SHARE * dots


def _component_sizes(page):
    """Dot counts of the page's 8-connected groups of black dots."""
    width, height = page.size
    black = bytearray(page.convert("L").tobytes().translate(_BLACK))   # 1 = an unvisited dot
    sizes = []
    start = black.find(1)
    while start >= 0:
        black[start] = 0
        stack, size = [start], 0
        while stack:
            i = stack.pop()
            size += 1
            y, x = divmod(i, width)
            for ny in range(max(y - 1, 0), min(y + 2, height)):
                for nx in range(max(x - 1, 0), min(x + 2, width)):
                    j = ny * width + nx
                    if black[j]:
                        black[j] = 0
                        stack.append(j)
        sizes.append(size)
        start = black.find(1, start + 1)
    return sizes


_BLACK = bytes([1] + [0] * 255)     # grey level -> 1 for black


def _read_dithered(page, languages):
    """Band by band by Tesseract from the de-dithered page: rules become dashes."""
    bands = line_bands(page)
    if not bands:
        return []
    line_height = sorted(bottom - top for top, bottom in bands)[len(bands) // 2]
    rules = {band: _rule_width(page, band, line_height) for band in bands}
    texts = [band for band in bands if rules[band] is None]
    grey = dedither(page)
    readings = _read_bands([grey.crop((0, top, grey.width, bottom)) for top, bottom in texts],
                           languages)
    text_of = dict(zip(texts, readings))
    lines = []
    for band in bands:
        if rules[band] is None:
            lines += _lines(text_of[band])
        else:
            lines.append(_dashes(rules[band], line_height))
    return lines


def _read_bands(images, languages):
    """Text of each band image: read with the languages other than eng (a Han language read
    together with eng turns degraded Han glyphs into Latin letters), and again with eng where
    that reading is mostly not Han; the more confident of the two readings is kept."""
    first = [lang for lang in languages if lang != "eng"] or languages
    readings = tesseract(images, first, _PSM)
    if first != languages:
        again = [k for k, (text, _) in enumerate(readings) if _han_share(text) < _HAN_SHARE]
        english = tesseract([images[k] for k in again], ["eng"], _PSM)
        for k, reading in zip(again, english):
            if reading[1] > readings[k][1]:
                readings[k] = reading
    return [text for text, _ in readings]


def dedither(page: Image.Image) -> Image.Image:
    """Dithered dots blurred back to grey, the grey darkened so that light strokes count."""
    grey = page.convert("L").filter(ImageFilter.GaussianBlur(_DITHER_SIGMA))
    return grey.point([round(255 * (v / 255) ** _DITHER_GAMMA) for v in range(256)])


def line_bands(page: Image.Image, gap: int = _BAND_GAP) -> list[tuple[int, int]]:
    """(top, bottom) row ranges with ink, split where at least gap rows are blank."""
    width = page.width
    data = page.convert("L").tobytes()
    inked = [data.find(0, y * width, (y + 1) * width) >= 0 for y in range(page.height)]
    bands, top, blank = [], None, 0
    for y, ink in enumerate(inked + [False] * gap):
        if ink:
            if top is None:
                top = y
            blank, bottom = 0, y + 1
        elif top is not None:
            blank += 1
            if blank >= gap:
                bands.append((top, bottom))
                top = None
    return bands


def _rule_width(page, band, line_height):
    """Ink width of the band if it is a rule (thin and wide), else None."""
    top, bottom = band
    ink = ImageChops.invert(page.convert("L").crop((0, top, page.width, bottom)))
    box = ink.getbbox()
    assert box is not None  # a band's rows have ink
    left, _, right, _ = box
    if (bottom - top) * _RULE_HEIGHT <= line_height and right - left >= _RULE_WIDTH * line_height:
        return right - left
    return None


def _han_share(text):
    text = "".join(text.split())
    return sum(_is_han(c) for c in text) / len(text) if text else 0.0


def _lines(text):
    lines = [clean_line(line) for line in text.splitlines()]
    return [line for line in lines if line]


def tesseract_split(images: list[Image.Image], languages: list[str], psm: str,
                    tessdata: str | None = None) -> list[tuple[str, float]]:
    """tesseract() on the images in _TESSERACT_RUNS runs at once, each on a share of them (one
    tesseract run uses one core), if there are at least _SPLIT_IMAGES."""
    if not images:
        return []
    runs = _TESSERACT_RUNS if len(images) >= _SPLIT_IMAGES else 1
    size = -(-len(images) // runs)
    parts = [images[start:start + size] for start in range(0, len(images), size)]
    with ThreadPoolExecutor(len(parts)) as pool:
        results = pool.map(lambda part: tesseract(part, languages, psm, tessdata), parts)
        return [reading for result in results for reading in result]


def tesseract(images: list[Image.Image], languages: list[str], psm: str,
              tessdata: str | None = None) -> list[tuple[str, float]]:
    """(text, mean word confidence 0-100) per image, from one run of the tesseract binary (a
    list file of images: the language data is loaded once); tessdata: a directory of models
    other than the installed one."""
    if not images:
        return []
    with tempfile.TemporaryDirectory(prefix="tilltap-ocr-") as tmp:
        paths = []
        for k, image in enumerate(images):
            framed = Image.new("L", (image.width + 2 * _MARGIN, image.height + 2 * _MARGIN), 255)
            framed.paste(image.convert("L"), (_MARGIN, _MARGIN))
            paths.append(os.path.join(tmp, "%04d.png" % k))
            framed.save(paths[-1])
        listing = os.path.join(tmp, "images.txt")
        with open(listing, "w") as f:
            f.write("\n".join(paths) + "\n")
        base = os.path.join(tmp, "out")
        # one thread: PP-OCR and the server's other work share the cores
        models = ["--tessdata-dir", tessdata] if tessdata else []
        try:
            out = subprocess.run(["tesseract", *models, listing, base, "-l",
                                  "+".join(languages), "--psm", psm, "txt", "tsv"],
                                 capture_output=True, text=True, timeout=_TESSERACT_TIMEOUT_S,
                                 env={**os.environ, "OMP_THREAD_LIMIT": "1"})
            if out.returncode != 0:
                raise RuntimeError("tesseract failed: %s" % out.stderr.strip()[-500:])
            with open(base + ".txt", encoding="utf-8") as f:
                texts = f.read().split("\f")   # one page per image, each ended by a form feed
            with open(base + ".tsv", encoding="utf-8", newline="") as f:
                rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        except (subprocess.TimeoutExpired, OSError) as e:
            raise RuntimeError("tesseract failed: %s" % e) from e
    confidences: list[list[float]] = [[] for _ in images]
    for row in rows:
        if row["level"] == "5" and (row["text"] or "").strip() and float(row["conf"]) >= 0:
            confidences[int(row["page_num"]) - 1].append(float(row["conf"]))
    return [(texts[k] if k < len(texts) else "", sum(c) / len(c) if c else 0.0)
            for k, c in enumerate(confidences)]


# spaces an OCR engine puts inside an amount, dropped: "242. 00", "7, 00", "80 .41", "$ 80.41"
# (not "1. 2x Latte", "2 x 1.35" or "Qty 2 .5kg")
_AMOUNT_GAPS = (re.compile(r"(?<=\d[.,]) (?=\d\d(?!\d))"),
                re.compile(r"(?<=\d) (?=[.,]\d\d(?!\d))"),
                re.compile(r"(?<=[$£€¥￥]) (?=\d)"))


# punctuation read in its ASCII form beside Han characters, where Chinese print has the
# full-width form (raster.bin's "光临！" read "光临!"): a mark after a Han character, an opening
# parenthesis before one
_FULL_AFTER_HAN = re.compile(r"(?<=[\u3400-\u9fff])[,!?;:)]")
_FULL_BEFORE_HAN = re.compile(r"\((?=[\u3400-\u9fff])")
# full-width letters and digits (PP-OCR reads a lone "S" as "Ｓ") as the ASCII ones printed
_HALF_WIDTH = {code: code - 0xFEE0 for code in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B),
                                                *range(0xFF41, 0xFF5B))}


def clean_line(line: str) -> str:
    """Spaces inside amounts (see _AMOUNT_GAPS), and those Tesseract's chi_sim puts between
    Han characters, dropped, the others kept; punctuation beside Han characters made full-width
    and full-width letters and digits ASCII (see _FULL_AFTER_HAN, _HALF_WIDTH)."""
    line = line.translate(_HALF_WIDTH)
    line = _FULL_AFTER_HAN.sub(lambda m: chr(ord(m.group(0)) + 0xFEE0), line)
    line = _FULL_BEFORE_HAN.sub("（", line)
    for gap in _AMOUNT_GAPS:
        line = gap.sub("", line)
    out: list[str] = []
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


def receipt_pages(data: bytes, **parser_options) -> list[tuple[list[str], list[tuple],
                                                                  Image.Image | None]]:
    """Per receipt in a stream: (printed text lines, image specs (kind, width, height), stacked
    page or None). The receipts are assembled as everywhere else (receipt.ReceiptAssembler),
    with the image payloads kept."""
    parser = escpos_parser.Parser(keep_images=True, **parser_options)
    out = []
    for receipt in ReceiptAssembler().add(parser.feed(data) + parser.close()):
        pictures = [decode_image(image[0], image[1], image[2], image[4])
                    for image in receipt.images
                    if len(image) > 4 and image[4] and image[1] and image[2]]
        out.append(([line for line in receipt.lines if line],
                    [image[:3] for image in receipt.images],
                    stack(pictures) if pictures else None))
    return out


def raster_only(record: dict, min_height: int = _MIN_PAGE) -> bool:
    """True for a stored record printed as images (a driver's raster receipt): images at least
    min_height dots tall in all, and next to no text (raster-2.bin prints one stray "T")."""
    images = [i for i in record.get("images") or () if isinstance(i, dict)]
    height = sum(i["height"] for i in images if isinstance(i.get("height"), int))
    text = [line for line in record.get("lines") or () if (line or "").strip()]
    return height >= min_height and len(text) < _FEW_LINES


def raw_page(raw: bytes, min_height: int = _MIN_PAGE, **parser_options) -> Image.Image | None:
    """The page of a receipt's ESC/POS bytes: its images stacked, if they are at least
    min_height dots tall; else None. parser_options: the printer's (protocol.parser_options)."""
    for _, _, page in receipt_pages(raw, **parser_options):
        if page is not None and page.height >= min_height:
            return page
    return None


def ocr_stream(data: bytes, languages: list[str] | None = None, min_height: int = _MIN_PAGE,
               pp_ocr: bool = True, **parser_options) -> list[OcrReceipt]:
    """OCR every receipt of a stream that has images at least min_height dots tall in total
    (logos alone are skipped); fields are extracted from the OCR text plus any printed text."""
    receipts = []
    for printed, specs, page in receipt_pages(data, **parser_options):
        if page is None or page.height < min_height:
            continue
        started = time.perf_counter()
        lines = ocr_image(page, languages, pp_ocr)
        seconds = time.perf_counter() - started
        receipts.append(OcrReceipt(lines, printed, page, extract_fields(printed + lines),
                                   seconds, specs))
    return receipts
