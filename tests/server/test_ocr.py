"""OCR of raster-only receipts (tilltap.ocr) against the corpus transcriptions.

Needs the `tesseract` binary (apt-get install -y tesseract-ocr tesseract-ocr-chi-sim); the
tests that run it skip without it. Image decoding is tested without Tesseract.
"""
import difflib
import os
import re
import shutil
import unicodedata

import numpy as np
import pytest
from corpus import CORPUS
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from tilltap.ocr import layout, ppocr
from tilltap.ocr import reader as ocr
from tilltap_host import raster_receipts
from tilltap_host.receipt_factory import generate_receipts

RASTER = [  # stream, parser options, minimum share of lines read exactly (spaces ignored), a
    # little under what bench/bench_extract.py measures (0.733, 0.724, 0.614)
    ("taoyuan__npos/raster.bin", {"encoding": "gb18030"}, 0.70),
    ("taoyuan__npos/raster-2.bin", {"encoding": "gb18030"}, 0.68),  # dithered grey glyphs
    ("mike42__escpos-php/print-from-pdf.bin", {}, 0.57),
]


def need_tesseract(language=None):
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract not installed: "
                    "apt-get install -y tesseract-ocr tesseract-ocr-chi-sim")
    if language and language not in ocr.tesseract_languages():
        pytest.skip("Tesseract language %s not installed: apt-get install -y tesseract-ocr-chi-sim"
                    % language)


def stream(name):
    path = os.path.join(CORPUS, "real", name)
    if not os.path.exists(path):
        pytest.skip("ESC/POS corpus not found at %s (set TILLTAP_CORPUS)" % CORPUS)
    with open(path, "rb") as f:
        return f.read()


def normalise(text):
    """Compare characters only: full-width forms as ASCII, dashes alike, no whitespace."""
    text = unicodedata.normalize("NFKC", text).replace("—", "-").replace("一", "-")
    return "".join(text.split())


def similarity(got, want):
    return difflib.SequenceMatcher(None, normalise(got), normalise(want), autojunk=False).ratio()


def test_raster_payload_decodes_msb_first_row_by_row():
    # 16 x 2 dots: first row dots 0 and 15, second row dot 8
    img = ocr.decode_image("raster", 16, 2, bytes([0x80, 0x01, 0x00, 0x80]))
    black = [(x, y) for y in range(2) for x in range(16) if img.getpixel((x, y)) == 0]
    assert black == [(0, 0), (15, 0), (8, 1)]


def test_column_stripes_decode_column_major():
    # ESC * 24-dot: 2 columns x 3 bytes; dot (0, 0) and dot (1, 23)
    payload = bytes([0x80, 0, 0, 0, 0, 0x01])
    img = ocr.decode_image("column", 2, 24, payload)
    black = [(x, y) for y in range(24) for x in range(2) if img.getpixel((x, y)) == 0]
    assert black == [(0, 0), (1, 23)]


def test_generated_logos_decode_the_same_in_all_three_image_commands():
    """The factory prints its logo as GS v 0, GS ( L and ESC *: all three give one picture."""
    pages = {}
    for receipt in generate_receipts(seed=2, count=6):
        if receipt.language == "zh":
            continue
        (_printed, specs, page), = ocr.receipt_pages(receipt.stream)
        if page is not None:
            pages.setdefault(specs[0][0], page)
    assert set(pages) == {"raster", "graphics", "column"}
    for page in pages.values():
        inked = ImageChops.invert(page.convert("L")).getbbox()
        assert inked is not None and inked[2] - inked[0] > 60  # a drawn frame, not noise


@pytest.mark.parametrize("name, options, minimum", RASTER)
def test_ocr_matches_the_transcription(name, options, minimum):
    need_tesseract("chi_sim" if "npos" in name else None)
    receipts = ocr.ocr_stream(stream(name), **options)
    with open(os.path.join(CORPUS, "expected", name + ".txt"), encoding="utf-8") as f:
        want = [line for line in f.read().splitlines() if line.strip()]
    exact = raster_receipts.lines_exact([line for r in receipts for line in r.lines], want)
    assert exact >= minimum * len(want)


def test_ocr_text_goes_through_the_extractor():
    need_tesseract("chi_sim")
    (receipt,) = ocr.ocr_stream(stream("taoyuan__npos/raster.bin"), encoding="gb18030")
    assert receipt.fields.total == "242.00"
    assert receipt.fields.datetime == "2016-03-25"
    assert receipt.fields.member_id == "10001703"
    assert receipt.page.width == 464 and receipt.page.height == 576


def test_dithered_receipt_gives_its_total_and_payment():
    """raster-2.bin: the driver's grey labels 应收/实收/找零 that Tesseract cannot read."""
    (receipt,) = ocr.ocr_stream(stream("taoyuan__npos/raster-2.bin"), encoding="gb18030")
    fields = receipt.fields
    assert (fields.total, fields.tendered, fields.change) == ("242.00", "246.00", "4.00")
    assert [(p.type, p.amount) for p in fields.payments] == [("cash", "242.00")]
    assert fields.member_id == "10001703" and fields.receipt_no == "10002_XPD000009"
    # columns stay apart, as the extractor needs them
    assert "269.00  0.900  242" in receipt.lines


def test_dithered_page_without_pp_ocr_is_read_by_tesseract():
    need_tesseract("chi_sim")
    page = ocr.receipt_pages(stream("taoyuan__npos/raster-2.bin"), encoding="gb18030")[0][2]
    with open(os.path.join(CORPUS, "expected", "taoyuan__npos/raster-2.bin.txt"),
              encoding="utf-8") as f:
        assert similarity("\n".join(ocr.ocr_image(page, pp_ocr=False)), f.read()) >= 0.8


def test_pp_ocr_reads_a_rendered_line():
    image = Image.new("L", (360, 48), 255)
    ImageDraw.Draw(image).text((8, 6), "TOTAL 12.50", fill=0,
                               font=ImageFont.load_default(size=30))
    ((text, confidence),) = ppocr.LineReader.load().read([image])
    assert text.replace(" ", "") == "TOTAL12.50" and confidence > 0.8
    assert ppocr.LineReader.load().read([]) == []


def test_receipts_with_only_a_logo_are_not_read():
    need_tesseract()
    receipts = ocr.ocr_stream(b"\x1b@" + b"\x1dv0\x00\x02\x00\x08\x00" + b"\xff" * 16
                              + b"\x1dV\x00")
    assert receipts == []


def test_clean_line_joins_han_characters():
    assert ocr.clean_line("会 员 卡 ： 10001703") == "会员卡： 10001703"
    assert ocr.clean_line("Total  12.00") == "Total  12.00"


def test_clean_line_closes_the_gap_after_a_decimal_point():
    assert ocr.clean_line("现金 242. 00") == "现金 242.00"
    assert ocr.clean_line("Page 1. Next") == "Page 1. Next"


def strokes(grey):
    """A page of glyph-like strokes (bars and frames) in the given grey, mode "1"."""
    page = Image.new("L", (240, 120), 255)
    draw = ImageDraw.Draw(page)
    for x in range(10, 230, 24):
        draw.rectangle((x, 10, x + 3, 50), fill=grey)
        draw.rectangle((x, 70, x + 16, 73), fill=grey)
        draw.rectangle((x, 80, x + 16, 110), outline=grey, width=2)
    return page


def test_dithered_grey_text_is_told_from_solid_strokes():
    solid = strokes(0).convert("1", dither=Image.Dither.NONE)
    # a driver's grey text: soft edges, then Floyd-Steinberg dithered to dots
    dithered = strokes(110).filter(ImageFilter.GaussianBlur(1)).convert("1")
    assert not ocr.is_dithered(solid)
    assert ocr.is_dithered(dithered)
    assert not ocr.is_dithered(Image.new("1", (8, 8), 1))


def test_corpus_pages_dithered_or_crisp():
    pages = {name: ocr.receipt_pages(stream(name), **options)[0][2] for name, options, _ in RASTER}
    assert ocr.is_dithered(pages["taoyuan__npos/raster-2.bin"])
    assert not ocr.is_dithered(pages["taoyuan__npos/raster.bin"])
    assert not ocr.is_dithered(pages["mike42__escpos-php/print-from-pdf.bin"])


def test_line_bands_split_at_blank_rows():
    page = Image.new("1", (50, 40), 1)
    draw = ImageDraw.Draw(page)
    draw.rectangle((5, 2, 40, 9), fill=0)
    draw.rectangle((5, 11, 40, 14), fill=0)     # 1 blank row: same line
    draw.line((0, 25, 49, 25), fill=0)          # 10 blank rows: a new band, a rule
    draw.point((7, 39), fill=0)
    assert ocr.line_bands(page) == [(2, 15), (25, 26), (39, 40)]


def test_rules_in_a_dithered_page_become_dashes():
    need_tesseract("chi_sim")
    page = ocr.receipt_pages(stream("taoyuan__npos/raster-2.bin"), encoding="gb18030")[0][2]
    lines = ocr.ocr_image(page)
    rules = [k for k, line in enumerate(lines) if set(line) == {"-"}]
    assert len(rules) == 3 and all(len(lines[k]) >= 30 for k in rules)
    # where the receipt prints them: around the item line, above the member's phone number
    assert any("1031061" in line for line in lines[rules[0]:rules[1]])
    assert any("1234567890" in line for line in lines[rules[2]:])


def test_which_stored_records_are_raster_only():
    page = {"kind": "raster", "width": 576, "height": 1248, "size": 89856}
    logo = {"kind": "raster", "width": 128, "height": 40, "size": 640}
    assert ocr.raster_only({"lines": ["T"], "images": [page]})
    assert not ocr.raster_only({"lines": ["Shop", "Latte 3.50", "TOTAL 3.50"], "images": [page]})
    assert not ocr.raster_only({"lines": [], "images": [logo]})
    assert not ocr.raster_only({"lines": [], "images": [{"height": "x"}, 5]})


def test_raw_bytes_inflate_bounded():
    """A re-parse inflates at most protocol.MAX_RAW_BYTES (what an identity record can carry),
    far below the old 4 MiB, and never a truncated stream."""
    import zlib

    from tilltap.ingest.rawbytes import raw_bytes
    from tilltap_fw import protocol

    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(b"\x1b@" * 10) + deflate.flush()
    assert raw_bytes(packed, "deflate") == b"\x1b@" * 10
    assert raw_bytes(b"\x1b@", "identity") == b"\x1b@"
    with pytest.raises(ValueError):
        raw_bytes(b"not deflate at all", "deflate")
    with pytest.raises(ValueError, match="truncated"):
        raw_bytes(packed[:-2], "deflate")
    for size, fits in ((protocol.MAX_RAW_BYTES, True), (protocol.MAX_RAW_BYTES + 1, False)):
        bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = bomb.compress(bytes(size)) + bomb.flush()
        if fits:
            assert len(raw_bytes(packed, "deflate")) == size
        else:
            with pytest.raises(ValueError, match="more than"):
                raw_bytes(packed, "deflate")
    assert protocol.MAX_RAW_BYTES <= 128 * 1024


# Driver-style raster receipts (tools/tilltap_host/raster_receipts.py): fonts and widths the OCR
# was not tuned on (bench/bench_extract.py tunes on DejaVu Sans Mono, Liberation Sans and
# WenQuanYi Micro Hei at 512-576 dots). Minimum share of lines read exactly, a little under
# what these receipts measured.
DRIVER = [  # font family, width (dots), dithered, minimum lines exact (measured 18/19, 17/19,
    # 30/30)
    ("Liberation Mono", 384, False, 0.9),
    ("Liberation Serif", 576, True, 0.85),
    ("WenQuanYi Zen Hei", 448, False, 0.95),
]
SPLIT_AMOUNT = re.compile(r"\d [.,]\d\d(?!\d)|\d[.,] \d\d(?!\d)|[$£€¥￥] \d")


def driver_font(family):
    font = raster_receipts.find_font(family)
    if font is None:
        pytest.skip("font %s not installed (make setup installs the fonts)" % family)
    return font


@pytest.mark.parametrize("family, width, dithered, minimum", DRIVER)
def test_driver_raster_receipt_is_read(family, width, dithered, minimum):
    (receipt,) = raster_receipts.driver_receipts(driver_font(family), width, dithered, seed=11,
                                                 count=1)
    assert not any(receipt.lines[0] in line for line in ocr.receipt_pages(receipt.stream)[0][0])
    (read,) = ocr.ocr_stream(receipt.stream)
    exact = raster_receipts.lines_exact(read.lines, receipt.lines)
    assert exact >= minimum * len(receipt.lines), (exact, len(receipt.lines), read.lines)
    assert read.fields.total == receipt.total
    assert not [line for line in read.lines if SPLIT_AMOUNT.search(line)]


def test_combine_takes_from_tesseract_what_pp_ocr_cannot_read():
    charset = ppocr.LineReader.load().charset
    assert "£" not in charset and "ñ" not in charset
    assert ocr.combine("TOTAL 21.65", "TOTAL £21.65", charset) == "TOTAL £21.65"
    assert ocr.combine("Jalapeio", "Jalapeño", charset) == "Jalapeño"
    assert ocr.combine("wholemeal 8oog", "Wholemeal 800g", charset) == "Wholemeal 800g"
    assert ocr.combine("0xford N0. Til1", "Oxford No. Till", charset) == "Oxford No. Till"
    # digits stay PP-OCR's: Tesseract misreads them more often
    assert ocr.combine("2.70", "2.40", charset) == "2.70"
    assert ocr.combine("RM0.50", "RMO.50", charset) == "RM0.50"
    assert ocr.combine("TOTAL", "TOTAL.", charset) == "TOTAL"
    assert ocr.combine("TOTAL.", "TOTAL", charset) == "TOTAL"
    assert ocr.combine("VAT0%0n3.37", "VAT0%on3.37", charset) == "VAT0%on3.37"
    assert ocr.combine("100g", "10og", charset) == "100g"
    assert ocr.combine("269.00", "369. OU", charset) == "269.00"
    # an accented letter read beside PP-OCR's plain one replaces it, in PP-OCR's case
    assert ocr.combine("CAFE", "CAFéE", charset) == "CAFÉ"
    assert ocr.combine("creme brulee", "crème brûléee", charset) == "crème brûlée"


def test_a_page_prints_its_amounts_with_one_decimal_mark():
    """Where most of a page's amounts use one mark, the other between digits is read as it (a
    dithered comma reads as a full stop); dates, times, codes and thousands groups stay."""
    page = ["Brot 2,49", "Milch 1.19", "Summe 3,68", "Bar 5,00", "10.05.2026 14:35",
            "1.234,50", "Art. 4006381.333931"]
    assert ocr.decimal_marks(page) == ["Brot 2,49", "Milch 1,19", "Summe 3,68", "Bar 5,00",
                                       "10.05.2026 14:35", "1.234,50",
                                       "Art. 4006381.333931"]
    # no clear majority, or too few amounts: left as read
    assert ocr.decimal_marks(["A 2,49", "B 1.19"]) == ["A 2,49", "B 1.19"]
    assert ocr.decimal_marks(["A 2,49", "B 1.19", "C 3,00", "D 4.00"]) == [
        "A 2,49", "B 1.19", "C 3,00", "D 4.00"]
    assert ocr.decimal_marks([]) == []


def test_tesseract_on_no_pieces_reads_nothing():
    assert ocr.tesseract_split([], ["eng"], "7") == []


def test_clean_line_joins_amounts_split_by_spaces():
    assert ocr.clean_line("TOTAL  $80 .41") == "TOTAL  $80.41"
    assert ocr.clean_line("TOTAL  $ 80.41") == "TOTAL  $80.41"
    assert ocr.clean_line("Summe 7, 00") == "Summe 7,00"
    assert ocr.clean_line("2 x 1.35") == "2 x 1.35"


def test_layout_splits_touching_lines_and_leaves_pictures_out():
    page = Image.new("L", (300, 200), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=20)
    draw.text((4, 2), "Coffee   3.50", font=font, fill=0)
    draw.text((4, 20), "Tea     2.10", font=font, fill=0)          # touches the line above
    draw.rectangle((200, 0, 290, 75), outline=0, width=3)            # a logo's frame beside
    for k, text in enumerate(("Subtotal  5.60", "Tax  0.00", "TOTAL  5.60")):
        draw.text((4, 90 + 25 * k), text, font=font, fill=0)
    draw.text((4, 170), "-" * 12, font=font, fill=0)
    found = layout.lines(layout.ink(page))
    text = [line for line in found if line.pieces]
    assert len(text) == 5 and all(line.pieces[-1][2] < 200 for line in text)
    assert text[0].bottom <= text[1].top
    assert [line.dashes for line in found if line.dashes] == [12]


def test_layout_joins_umlaut_dots_to_the_capitals_below():
    """Dots drawn BAND_GAP blank rows above a line of capitals are its umlauts, not a line."""
    page = Image.new("L", (200, 80), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle((10, 20, 120, 40), fill=0)                        # a line of capitals
    draw.rectangle((30, 12, 32, 14), fill=0)                         # two dots over one of them
    draw.rectangle((38, 12, 40, 14), fill=0)
    draw.rectangle((10, 60, 120, 80), fill=0)                        # the next line
    found = layout.lines(layout.ink(page))
    assert [(line.top, line.bottom) for line in found] == [(12, 41), (60, 80)]
    assert found[0].pieces == [(10, 12, 121, 41)]


def test_latin_letters_read_as_look_alikes():
    assert ocr.latin_letters("Vo11milch 3,5% 1L") == "Vollmilch 3,5% 1L"
    assert ocr.latin_letters("iGracias por su compra!") == "¡Gracias por su compra!"
    assert ocr.latin_letters("jGracias!") == "¡Gracias!"
    # a code with other digits, a word without "!" after it, and amounts stay
    assert ocr.latin_letters("a1b2 iPhone 11,00") == "a1b2 iPhone 11,00"


def test_combine_reads_a_count_before_x_as_digits():
    charset = ppocr.LineReader.load().charset
    assert ocr.combine("Toilettenpapier Bx", "Toilettenpapier 8x", charset) == \
        "Toilettenpapier 8x"
    assert ocr.combine("Bxy", "8xy", charset) == "Bxy"         # not a count alone


def test_combine_takes_tesseract_letters_where_pp_ocr_is_unsure():
    charset = ppocr.LineReader.load().charset
    sure, unsure = [1.0] * 6, [1.0, 1.0, 1.0, 1.0, 0.35, 1.0]
    assert ocr.combine("Apfetx", "Apfelx", charset, unsure) == "Apfelx"
    assert ocr.combine("Apfetx", "Apfelx", charset, sure) == "Apfetx"
    assert ocr.combine("Apfetx", "Apfeṭx", charset, unsure) == "Apfetx"   # not a printed accent


def test_the_printed_decimal_mark_decides_the_page():
    """A mark measured as a comma (below the baseline, taller than wide) on enough amounts makes
    the page's marks commas even where most were read as full stops; marks on the baseline make
    them full stops; no clear shape leaves it to the readings."""
    page = ["A 2.49", "B 1.19", "C 3.00", "D 5,00"]
    commas = [(0.2, 2.0), (0.15, 1.8), (0.0, 1.0)]
    assert ocr.printed_mark(commas) == ","
    assert ocr.decimal_marks(page, ocr.printed_mark(commas)) == ["A 2,49", "B 1,19", "C 3,00",
                                                                 "D 5,00"]
    assert ocr.printed_mark([(0.0, 1.0), (0.01, 0.9), (-0.02, 1.0)]) == "."
    assert ocr.printed_mark([(0.3, 0.9), (0.0, 1.0)]) is None   # a brush full stop: not tall


def test_a_solid_redrawing_may_change_dashes_but_never_an_amount():
    assert ocr._marks_only("2016-03·25", "2016-03-25")
    assert ocr._marks_only("10002.002", "10002_002")                 # no amount: 3 digits after
    assert not ocr._marks_only("TOTAL 12.50", "TOTAL 12-50")         # an amount's decimal mark
    assert not ocr._marks_only("TTC 3.00", "TIC 3.00")               # a letter


def test_narrow_print_read_wider_adds_only_twin_letters_and_marks():
    # greedy CTC merges a letter printed twice, and a squeezed reading loses narrow marks
    assert ocr._added("formating", "forma tting") == "formatting"
    assert ocr._added("proident sunt", "proident, sunt") == "proident, sunt"
    assert ocr._added("pariatur", "pariatur.") == "pariatur."
    assert ocr._added("TOTAL 12.50", "TOTAL 122.50") is None        # never an amount's digit
    assert ocr._added("velit", "vclit") is None                      # a change is no addition
    assert ocr._added("velit", "velit") is None                      # nothing added


def test_dithered_print_corrections_never_touch_an_amount():
    # a thin dithered "%" read as a digit ending a whole number is Tesseract's "%"; an amount's
    # last digit stays PP-OCR's
    assert ocr._whole_number_before("MwSt 198", 7)
    assert not ocr._whole_number_before("12.98", 4)
    # a ß's shapes are a ß only where PP-OCR is unsure of them; a sure capital B stays
    assert ocr._sharp_s("Hauptstrabe", [False] * 9 + [True, False]) == "Hauptstraße"
    assert ocr._sharp_s("MacBook", [False] * 7) == "MacBook"
    # Tesseract's marks made the printed ones: an opening "¡", an ì inside a word is an i
    assert ocr._tesseract_marks("iGracias por su compra!") == "¡Gracias por su compra!"
    assert ocr._tesseract_marks("Amerìcano più") == "Americano più"


def test_dithered_holes_tell_dark_grey_text_from_crisp_strokes():
    crisp = np.zeros((20, 20), dtype=bool)
    crisp[5:15, 5:15] = True
    holed = crisp.copy()
    holed[6:14:2, 6:14:2] = False                                    # dithering's one-dot holes
    assert layout.holes(crisp) == 0.0
    assert layout.holes(holed) > 0.1
