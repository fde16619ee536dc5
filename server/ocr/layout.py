"""Layout of a raster receipt page: its lines, each line's pieces (columns) and its rules.

A driver's page is text lines one under the other, sometimes touching (no blank row between
them), columns within a line apart by wide gaps, rules drawn as dashes or a stroke, and
pictures (a logo in a frame, a barcode). PP-OCR's recognizer reads one line of text at a time,
so the page is cut here into what it reads: line bands split at blank rows, bands holding
several lines split again at the rows with least ink (an underscore kept with the line above),
pictures left out, and each line cut into pieces at column gaps. A band that cannot be split so
may be blocks side by side whose lines do not line up: its rules and underlines are peeled off
and the blocks' lines are read row by row. Numbers are in dots; H is the page's line height
(line_heights()).

    ink = layout.ink(page)                      # bool array, True = a printed dot
    for line in layout.lines(ink):
        line.pieces                             # [(left, top, right, bottom), ...] or []
        line.dashes                             # a rule: as many dashes as printed text has
    mark_shape(ink, box)                        # (depth, aspect) of a number's decimal mark
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

BAND_GAP = 3            # blank rows between two lines (raster-2.bin has one inside a line)
RULE_HEIGHT = 4         # a rule's strokes are at most 1/4 as tall as a line of text...
RULE_WIDTH = 2          # ...and at least 2 line heights wide
PICTURE_RUN = 2.5       # H: a stroke this tall is a picture's (frame, barcode), not a glyph's
SEVERAL_LINES = 1.6     # H: a band this tall may hold several lines (cut where ink is least)
VALLEY = 0.2            # ...if a row has at most this share of the band's usual ink per row
COLUMN_GAP = 1.0        # H (or the band's height if taller): blank columns between two pieces;
#                         a word space in a monospace font is ~0.8 H (advance plus side
#                         bearings), two spaces ~1.4 H; half a line height split words and
#                         amounts ("2 .70") on generated driver receipts
MARKS = 0.4             # short lines: a band this low is marks over letters (umlaut dots are
MARKS_GAP = 0.5         # ~0.2 tall, ~0.2 above a capital), if this close above a text line:
#                         read apart, "MÜLLER" lost its dots (4 of 579 lines of generated
#                         receipts in the tuned fonts, all righted; the corpus reads the same)
UNDERSCORE = 0.5        # short lines: the least length of an underscore's stroke (_flat_mark)
SIDE_LINE = 0.6         # short lines: the least height of a line in a block beside others
PERIOD_MULTIPLE = 8     # a rule's dash period is measured at this multiple (see _refined)
CELL = 12               # dots a column of printed text takes (font A on 58/80 mm printers)
# mark_shape: the first settings tried (the blur of reader._soften), kept as they separated
# commas from full stops on generated driver receipts of the tuned and 7 other fonts
MARK_BLUR = 1.0         # dots: dithered glyphs blurred into solid shapes before measuring a mark
MARK_INK = 0.25         # ...whose ink is where the blurred grey is at least this dark
MARK_LOW = 0.55         # digit heights: a glyph whose top is this far below the digits' tops is
#                         a mark (",", "."), not a digit nor a minus sign (~0.5)
FEWEST_DOTS = 9         # dots a column of printed text takes at least (font B on 80 mm
#                         printers): a rule's dashes are no closer (see _fundamental)
PEAK_MARGIN = 0.2       # see _dash_count: a dithered rule's dashes' period is its first peak
#                         of autocorrelation this close to its highest: thin strokes dithered
#                         into dot pairs (a monospace "=" of 12-dot dashes: "#.##.##.##..")
#                         peak at 6 dots at 0.65 and at 12 at 0.97, and were counted double
#                         (6 rules of the tuning fonts' dithered receipts righted)
HARMONIC = 0.25         # see _fundamental: between the -0.4 at half a true period (dashes 0.7
#                         of it long) and the 0.32-0.42 at lags by a fractional one


@dataclass
class Line:
    """One line of the page: text pieces to read, or a rule (dashes > 0)."""

    top: int
    bottom: int
    pieces: list[tuple[int, int, int, int]] = field(default_factory=list)
    dashes: int = 0
    rule: str = "-"         # "=" for a rule of two strokes

    @property
    def text(self) -> str:
        """A rule as printed text writes it ("" for a line of text)."""
        return self.rule * self.dashes


def ink(page: Image.Image) -> np.ndarray:
    """The page's dots as a bool array (rows, columns), True where printed."""
    return np.asarray(page.convert("L")) < 128


def lone_dots(dots: np.ndarray) -> float:
    """Share of the printed dots with no printed dot above, below or beside them."""
    padded = np.pad(dots, 1)
    neighbours = (padded[:-2, 1:-1].astype(np.uint8) + padded[2:, 1:-1] + padded[1:-1, :-2]
                  + padded[1:-1, 2:])
    return float(((neighbours == 0) & dots).sum() / max(int(dots.sum()), 1))


def holes(dots: np.ndarray) -> float:
    """Blank dots with printed dots on at least three of their four sides, per printed dot: the
    holes dithering leaves in dark grey strokes (and the one-dot counters of small glyphs)."""
    padded = np.pad(dots, 1)
    neighbours = (padded[:-2, 1:-1].astype(np.uint8) + padded[2:, 1:-1] + padded[1:-1, :-2]
                  + padded[1:-1, 2:])
    return float(((neighbours >= 3) & ~dots).sum() / max(int(dots.sum()), 1))


def runs(flags: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """(start, end) of the runs of True in flags, two runs apart only where at least gap
    Falses lie between them (gap >= 1)."""
    where = np.flatnonzero(flags)
    if where.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(where) > gap)  # diff = blanks + 1
    starts = np.concatenate(([where[0]], where[breaks + 1]))
    ends = np.concatenate((where[breaks], [where[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist()))


def line_heights(dots: np.ndarray) -> tuple[int, int]:
    """(a short line's height, H) from the page's bands that are not rules. A short line is
    the 25th percentile (a line of capitals and digits, ~0.7 em: where lines touch, most bands
    may be two lines, as in a PDF printed small). H is the height of text lines with
    descenders: the 80th percentile of the bands up to SEVERAL_LINES short lines tall."""
    heights = [b - t for t, b in runs(dots.any(axis=1), BAND_GAP) if b - t > 3]
    if not heights:
        return 24, 24
    short = float(np.percentile(heights, 25))
    single = [h for h in heights if h <= SEVERAL_LINES * short]
    return int(short), int(np.percentile(single, 80))


def lines(dots: np.ndarray) -> list[Line]:
    """The page's lines top to bottom (pictures left out)."""
    dots = dots.copy()
    short, height = line_heights(dots)
    out: list[Line] = []
    for top, bottom in runs(dots.any(axis=1), BAND_GAP):
        if bottom - top > PICTURE_RUN * height:
            _drop_pictures(dots[top:bottom], height)
        for sub_top, sub_bottom in runs(dots[top:bottom].any(axis=1), BAND_GAP):
            for line_top, line_bottom in _split(dots, top + sub_top, top + sub_bottom, short):
                if line_bottom - line_top > SEVERAL_LINES * short:
                    out += _side_by_side(dots, line_top, line_bottom, short, height)
                else:
                    out.append(_line(dots, line_top, line_bottom, height))
    return _double_rules(_join_marks([_clipped(dots, line) for line in out], short), height)


def _clipped(dots: np.ndarray, line: Line) -> Line:
    """A rule that runs off the paper's right edge (from within a CELL of its left edge) with
    as many dashes as the paper has columns of printed text: the POS wrote a rule as wide as
    its columns, which a driver's font with dashes wider than a CELL drew too long and the
    paper clipped (generated receipts in DejaVu Sans Condensed at 416 dots: 28 of 34 dashes
    counted)."""
    if not line.dashes:
        return line
    inked = np.flatnonzero(dots[line.top:line.bottom].any(axis=0))
    if inked[0] < CELL and inked[-1] >= dots.shape[1] - 1:
        return Line(line.top, line.bottom, dashes=dots.shape[1] // CELL, rule=line.rule)
    return line


def _side_by_side(dots: np.ndarray, top: int, bottom: int, short: int,
                  height: int) -> list[Line]:
    """A band _split could not cut: rules a blank row or less away and underlines touching the
    text peeled off (see _peel_rules); then, if it is blocks side by side (BAND_GAP blank
    columns apart) whose lines do not line up (raster.bin: two lines of large type beside three
    of small), each block cut into its lines and the blocks' lines joined by rank, first with
    first, as a table's cells are read row by row. Else the band is one line, as before."""
    before, top, bottom, after = _peel_rules(dots, top, bottom, height)
    blocks = [[(line_top, line_bottom, left, right)
               for line_top, line_bottom in _block_lines(dots[:, left:right], top, bottom, short)]
              for left, right in runs(dots[top:bottom].any(axis=0), BAND_GAP)]
    rows = max((len(block) for block in blocks), default=0)
    # a block of several lines, each as tall as text (not the dots of a large ":" or "i")
    lined = len(blocks) > 1 and any(
        len(block) > 1 and all(b - t >= SIDE_LINE * short for t, b, _, _ in block)
        for block in blocks)
    if not lined:
        return before + [_line(dots, top, bottom, height)] + after
    out = []
    for rank in range(rows):
        pieces = []
        for block in blocks:
            if rank < len(block):
                line_top, line_bottom, left, right = block[rank]
                line = _line(dots[:, left:right], line_top, line_bottom, height)
                pieces += [(a + left, t, z + left, b) for a, t, z, b in line.pieces]
        if pieces:
            pieces = _joined(sorted(pieces), int(COLUMN_GAP * height))
            out.append(Line(min(p[1] for p in pieces), max(p[3] for p in pieces), pieces))
    return before + out + after


def _joined(pieces: list[tuple[int, int, int, int]],
            gap: int) -> list[tuple[int, int, int, int]]:
    """Neighbouring pieces (left to right) of one row of blocks less than gap columns apart and
    level (rows overlapping by half the lower one) made one piece, as _line would have cut them
    ("应收", "：" and "242.00" in three blocks: one piece, read with its context)."""
    out = [pieces[0]]
    for left, top, right, bottom in pieces[1:]:
        a, t, z, b = out[-1]
        overlap = min(b, bottom) - max(t, top)
        if left - z < gap and 2 * overlap >= min(b - t, bottom - top):
            out[-1] = (a, min(t, top), max(z, right), max(b, bottom))
        else:
            out.append((left, top, right, bottom))
    return out


def _block_lines(dots: np.ndarray, top: int, bottom: int, short: int) -> list[tuple[int, int]]:
    """A block's lines (rows top to bottom): its bands cut as _split cuts them."""
    out = []
    for sub_top, sub_bottom in runs(dots[top:bottom].any(axis=1), BAND_GAP):
        out += _split(dots, top + sub_top, top + sub_bottom, short)
    return out


def _peel_rules(dots: np.ndarray, top: int, bottom: int,
                height: int) -> tuple[list[Line], int, int, list[Line]]:
    """(rules above, top, bottom, rules below) of a band: a rule at its top or bottom one blank
    row from the text (BAND_GAP joined them), or an underline touching it (its last rows, each
    holding one run of ink at least RULE_WIDTH line heights long), each made its own line."""
    before: list[Line] = []
    after: list[Line] = []
    strokes = [(top + a, top + b) for a, b in runs(dots[top:bottom].any(axis=1), 1)]
    if len(strokes) > 1:
        rule = _line(dots, *strokes[0], height)
        if rule.dashes:
            before.append(rule)
            strokes.pop(0)
    if len(strokes) > 1:
        rule = _line(dots, *strokes[-1], height)
        if rule.dashes:
            after.append(rule)
            strokes.pop()
    top, bottom = strokes[0][0], strokes[-1][1]
    under = bottom
    while under > top + height and bottom - under < max(1, height // RULE_HEIGHT) and \
            _longest_run(dots[under - 1:under]) >= RULE_WIDTH * height:
        under -= 1
    if under < bottom:
        after.insert(0, _line(dots, under, bottom, height))
        rows = np.flatnonzero(dots[top:under].any(axis=1))
        bottom = top + int(rows[-1]) + 1
    return before, top, bottom, after


def _join_marks(found: list[Line], short: int) -> list[Line]:
    """A band of marks (at most MARKS short lines tall, not a rule) less than MARKS_GAP short
    lines above a line of text, within its width, joined to it: the umlaut dots or accent over
    a capital, which stand BAND_GAP or more blank rows above a line without ascenders."""
    out: list[Line] = []
    for line in found:
        marks = out[-1] if out else None
        if marks is not None and marks.pieces and line.pieces \
                and marks.bottom - marks.top <= MARKS * short \
                and line.top - marks.bottom < MARKS_GAP * short \
                and line.pieces[0][0] <= marks.pieces[0][0] \
                and marks.pieces[-1][2] <= line.pieces[-1][2]:
            out[-1] = Line(marks.top, line.bottom,
                           [(left, marks.top, right, bottom)
                            for left, _, right, bottom in line.pieces])
        else:
            out.append(line)
    return out


def _double_rules(found: list[Line], height: int) -> list[Line]:
    """Two rules of about the same length less than half a line height apart are one rule
    of "=" (its two strokes further apart than BAND_GAP)."""
    out: list[Line] = []
    for line in found:
        previous = out[-1] if out else None
        if previous is not None and line.dashes and previous.dashes and previous.rule == "-" \
                and line.top - previous.bottom < height / 2 \
                and abs(line.dashes - previous.dashes) <= 1:
            out[-1] = Line(previous.top, line.bottom, dashes=min(previous.dashes, line.dashes),
                           rule="=")
        else:
            out.append(line)
    return out


def _drop_pictures(band: np.ndarray, height: int) -> None:
    """Clear (in place) the blocks of a tall band (columns apart by BAND_GAP blank ones) that
    hold a stroke taller than any glyph: a logo's frame, a barcode's bars."""
    for left, right in runs(band.any(axis=0), BAND_GAP):
        block = band[:, left:right]
        if _longest_vertical_run(block) > PICTURE_RUN * height:
            block[:] = False


def _longest_vertical_run(block: np.ndarray) -> int:
    """The tallest run of consecutive printed dots in any column of block."""
    longest = 0
    current = np.zeros(block.shape[1], dtype=np.int32)
    for row in block:
        current = np.where(row, current + 1, 0)
        longest = max(longest, int(current.max()))
    return longest


def _split(dots: np.ndarray, top: int, bottom: int, height: int) -> list[tuple[int, int]]:
    """A band cut into its lines: while taller than SEVERAL_LINES short lines, cut at the row
    with least ink at least 0.6 of one from either end, if that row is a valley."""
    if bottom - top <= SEVERAL_LINES * height:
        return [(top, bottom)]
    profile = dots[top:bottom].sum(axis=1)
    margin = int(0.6 * height)
    middle = profile[margin:len(profile) - margin]
    if middle.size == 0:
        return [(top, bottom)]
    cut = margin + int(middle.argmin())
    if profile[cut] > VALLEY * float(np.median(profile[profile > 0])):
        return [(top, bottom)]
    upper, lower = top + cut, top + cut + 1
    inked = np.flatnonzero(dots[lower:bottom].any(axis=1))
    if inked.size:
        flat = _flat_mark(dots, lower + int(inked[0]), bottom, height)
        if flat:
            upper = lower = lower + int(inked[0]) + flat
    out = []
    for part_top, part_bottom in ((top, upper), (lower, bottom)):
        rows = np.flatnonzero(dots[part_top:part_bottom].any(axis=1))
        if rows.size:
            out += _split(dots, part_top + int(rows[0]), part_top + int(rows[-1]) + 1, height)
    return out


def _flat_mark(dots: np.ndarray, row: int, bottom: int, short: int) -> int:
    """Rows (1 or 2, else 0) from row down that hold only flat strokes (each run of ink at least
    UNDERSCORE short lines long) touching nothing in the row after them: an underscore hanging
    below the line above the cut ("10002_002", its stroke a blank row under the digits and
    touching the next line's top), not an accent or umlaut dots over the line below."""
    for rows in (1, 2):
        if row + rows >= bottom:
            return 0
        mark = dots[row:row + rows].any(axis=0)
        strokes = runs(mark, 1)
        if not all(b - a >= UNDERSCORE * short for a, b in strokes):
            continue
        below = dots[row + rows]
        if not (np.convolve(mark, np.ones(3), "same") > 0)[below].any():
            return rows
    return 0


def _line(dots: np.ndarray, top: int, bottom: int, height: int) -> Line:
    band = dots[top:bottom]
    columns = band.any(axis=0)
    inked = np.flatnonzero(columns)
    left, right = int(inked[0]), int(inked[-1]) + 1
    # a rule: one stroke, or two ("="), each at most 1/RULE_HEIGHT of a line tall
    strokes = runs(band.any(axis=1), 1)
    if len(strokes) <= 2 and all((b - a) * RULE_HEIGHT <= height for a, b in strokes) \
            and right - left >= RULE_WIDTH * height:
        return Line(top, bottom, dashes=_dash_count(columns[left:right], right - left),
                    rule="=" if len(strokes) == 2 else "-")
    gap = int(COLUMN_GAP * max(height, bottom - top))
    return Line(top, bottom, [(a, top, b, bottom) for a, b in runs(columns, gap)])


def _dash_count(columns: np.ndarray, width: int) -> int:
    """Dashes a rule stands for: if drawn as dashes of a font (strokes repeating evenly, even
    when dithered), one per period (from the autocorrelation's peaks, see _refined);
    else (a drawn line) one per CELL dots."""
    fill = float(columns.mean())
    signal = columns.astype(np.float32) - fill
    power = float((signal * signal).sum())
    if power > 0.05 * len(signal):             # a line with gaps, not a solid stroke
        correlation = np.correlate(signal, signal, "full")[len(signal) - 1:] / power
        # periods under 5 dots are dithering's, not a font's hyphens (>= 14 px fonts)
        lags = range(5, min(2 * CELL, len(correlation) - 1))
        strongest = max((correlation[lag] for lag in lags), default=0.0)
        for lag in lags:
            here = correlation[lag]
            left, right = correlation[lag - 1], correlation[lag + 1]
            # a fractional period's peak is split over two lags: both count against strongest
            if here > 0.5 and left < here >= right and \
                    here + max(left, right, 0.0) >= strongest - PEAK_MARGIN:
                period = _fundamental(correlation, lag + _vertex(left, here, right))
                period = _refined(correlation, period, len(signal))
                # n dashes of fill * period dots: width = (n - 1) * period + fill * period
                estimate = width / period + 1 - fill
                # dashes printed apart (not dithered to fragments) are counted as they are:
                # the estimate came out one short for a proportional font's narrow hyphens
                apart = len(runs(columns, 1))
                return max(3, apart if abs(apart - estimate) <= 1.5 else round(estimate))
    return max(3, round(width / CELL))


def _fundamental(correlation: np.ndarray, period: float) -> float:
    """The period, or a half or third of it if the correlation peaks at every multiple of that
    up to twice the period (at least HARMONIC at a neighbouring lag): a dithered rule of dashes
    printed a fractional number of dots apart (11.4) correlates at lags 11 and 12 under 0.5
    each, at twice the period at 0.79, and was counted half its dashes. A true period
    correlates negatively at half of it; dithering's own patterns peak at some short lags, not
    at all their multiples, and at periods under FEWEST_DOTS."""
    for parts in (3, 2):
        lags = [int(k * period / parts) for k in range(1, 2 * parts) if k % parts]
        if period / parts >= FEWEST_DOTS and lags[-1] + 1 < len(correlation) and all(
                max(correlation[lag], correlation[lag + 1]) >= HARMONIC for lag in lags):
            return period / parts
    return period


def _vertex(left: float, here: float, right: float) -> float:
    """Where a parabola through three neighbouring values peaks, from the middle one."""
    curve = left - 2 * here + right
    return 0.5 * (left - right) / curve if curve else 0.0


def _refined(correlation: np.ndarray, period: float, length: int) -> float:
    """The period measured again at its PERIOD_MULTIPLE-th multiple (at most a third of the
    rule's length), to a fraction of a dot divided by that multiple. Measured at the first peak
    alone, a dithered rule's period was off enough to count a dash too many or too few (28 of
    the 96 rules of generated driver receipts in the tuned fonts, counted by the period alone;
    at the 4th-16th multiple, none)."""
    multiple = min(PERIOD_MULTIPLE, int(length / (3 * period)))
    if multiple < 2:
        return period
    centre = round(multiple * period)
    lag = centre - 2 + int(np.argmax(correlation[centre - 2:centre + 3]))
    if not 0 < lag < len(correlation) - 1:
        return period
    left, here, right = correlation[lag - 1:lag + 2]
    return (lag + _vertex(left, here, right)) / multiple


def piece_image(dots: np.ndarray, box: tuple[int, int, int, int], side: int,
                above: int, solid: bool = False) -> Image.Image:
    """One piece as a black-on-white greyscale image with blank margins (side dots left and
    right, above dots above and below); only its line's rows, so that a touching line above or
    below does not show. solid: dithered dashes and underscores drawn solid (see
    solid_strokes)."""
    left, top, right, bottom = box
    piece = dots[top:bottom, left:right]
    canvas = np.full((bottom - top + 2 * above, right - left + 2 * side), 255, dtype=np.uint8)
    canvas[above:above + bottom - top, side:side + right - left][
        solid_strokes(piece) if solid else piece] = 0
    return Image.fromarray(canvas, "L")


def solid_strokes(piece: np.ndarray) -> np.ndarray:
    """The piece's dots (rows, columns) with its dithered dashes and underscores drawn solid (the
    same array if it has none). Dithered light, a hyphen or an underscore is a few dots with
    blanks between them (raster-2.bin's "2016-03-25" and "10002_002": 4-6 dots in 2 rows, 4-5
    blank dots apart), which PP-OCR read as "·" and "."; drawn solid, they read "-" and "_".
    A dash is a glyph of its own columns: runs of columns each at most 1/RULE_HEIGHT of the
    piece tall, their rows overlapping, less than FEWEST_DOTS apart (marks in columns that are
    not neighbours are at least a column apart), together at least twice as long as tall, and
    off the baseline (the median of the columns' lowest dots): above it by their own height at
    least, or wholly under it (full stops and dot leaders sit on it). A run with a row of dots
    at least half of FEWEST_DOTS long is a printed dash, not dithering's fragment of one, and
    stays apart (printed dashes 1-2 blank dots apart; raster-2.bin's fragments are 2-3 dots
    long). Only rows with dots are filled ("=" keeps its blank rows)."""
    height = piece.shape[0]
    columns = piece.any(axis=0)
    if not columns.any():
        return piece
    lowest = height - 1 - np.argmax(piece[::-1], axis=0)
    baseline = float(np.median(lowest[columns]))
    groups: list[list[tuple[int, int, int, int]]] = []
    for a, b in runs(columns, 1):
        rows = np.flatnonzero(piece[:, a:b].any(axis=1))
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        if (bottom - top) * RULE_HEIGHT > height or 2 * _longest_run(piece[top:bottom, a:b]) \
                >= FEWEST_DOTS:
            groups.append([])               # a glyph's columns, or a solid dash: drawn as is
            continue
        last = groups[-1] if groups else []
        if last and a - last[-1][1] < FEWEST_DOTS and \
                top < max(g[3] for g in last) and bottom > min(g[2] for g in last):
            last.append((a, b, top, bottom))
        else:
            groups.append([(a, b, top, bottom)])
    out = piece
    for group in groups:
        if len(group) < 2:
            continue                        # one run of columns: drawn as it is
        left, right = group[0][0], group[-1][1]
        top, bottom = min(g[2] for g in group), max(g[3] for g in group)
        if right - left < 2 * (bottom - top) or (bottom - top) * RULE_HEIGHT > height:
            continue
        if not (bottom - 1 < baseline - (bottom - top) or top > baseline):
            continue
        if out is piece:
            out = piece.copy()
        for row in range(top, bottom):
            if piece[row, left:right].any():
                out[row, left:right] = True
    return out


def _longest_run(block: np.ndarray) -> int:
    """The longest run of consecutive printed dots in any row of block."""
    return max((b - a for row in block for a, b in runs(row, 1)), default=0)


def mark_shape(dots: np.ndarray,
               box: tuple[int, int, int, int]) -> tuple[float, float] | None:
    """(depth, aspect) of the decimal mark of a piece read as one number (None where no mark is
    found): how far below the digits' baseline it reaches, in digit heights (a comma's tail
    reaches below it, 0.06-0.25 on generated driver receipts; a full stop sits on it, 0), and
    how many times taller than wide it is. The mark is the rightmost glyph (a run of columns
    with ink, after the dots are blurred so that dithered strokes join) whose top lies MARK_LOW
    digit heights below the tallest top; the baseline is the glyphs' median bottom."""
    left, top, right, bottom = box
    piece = Image.fromarray(np.where(dots[top:bottom, left:right], 0, 255).astype(np.uint8))
    grey = np.asarray(piece.filter(ImageFilter.GaussianBlur(MARK_BLUR)), dtype=np.float32)
    mask = grey <= 255 * (1 - MARK_INK)
    glyphs = runs(mask.any(axis=0), 1)
    if len(glyphs) < 3:
        return None
    tops, bottoms = [], []
    for a, b in glyphs:
        rows = np.flatnonzero(mask[:, a:b].any(axis=1))
        tops.append(int(rows[0]))
        bottoms.append(int(rows[-1]) + 1)
    highest, baseline = min(tops), float(np.median(bottoms))
    height = baseline - highest
    low = [k for k, t in enumerate(tops) if t > highest + MARK_LOW * height]
    if not low or height <= 0:
        return None
    mark = low[-1]
    a, b = glyphs[mark]
    return (bottoms[mark] - baseline) / height, (bottoms[mark] - tops[mark]) / (b - a)
