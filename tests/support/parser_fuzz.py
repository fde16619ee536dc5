"""A seeded, deterministic, structure-aware mutation fuzzer for the ESC/POS parser.

Inputs are slices of real print streams (the shared corpus, python-escpos receipts from
tilltap_host.receipt_factory) mutated by what breaks parsers: bytes inserted, deleted,
flipped; command prefixes (ESC, GS, FS, DLE, Star's ESC GS) with random arguments; huge length
fields; macro definitions and GS ^ bursts; runs of control bytes; splices of other streams.
Each input comes with random chunk boundaries. The same seed gives the same inputs on every
run (random.Random, nothing from the clock).

check() runs one input through the parser on CPython and checks the invariants:
- no exception;
- chunk invariance: the events and stats of the chunked run equal those of one feed();
- bounded output: events per input byte, and text per event, under constants derived from
  the parser's own limits (macro budgets, line and code caps): see events_bound();
- stats consistent with the events (bytes, cuts, receipts, requests; replayed events only
  where a GS ^ is in the input, and never more than the macro budgets allow).
The MicroPython side (tests/firmware/parser_fuzz_mp.py) reads a batch written by write_batch().
"""
import json
import random
import struct

from tilltap_fw import escpos_parser
from tilltap_fw.escpos_parser import (
    BARCODE,
    CODE2D,
    CUT,
    DRAWER,
    IMAGE,
    LINE,
    RECEIPT_END,
    REQUEST,
    Parser,
)

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
MAX_LINE = 512          # Parser's default max_line: the fuzz runs with the defaults
MAX_CODE = 8192         # ... and max_code
# Parser defaults for everything but the profile and encoding (the board's own settings).
PROFILES = (("epson", None), ("epson", None), ("epson", None), ("star", None),
            ("epson", "gb18030"), ("epson", "shift_jis"))

# Bounds on the output, derived from the parser's limits.
# Without replays an event needs at least one input byte of its own (an LF is one line, a
# Star BEL one drawer kick, a cut's 3 bytes a CUT and, later, its RECEIPT_END); close() adds
# at most a pending line, image and the receipt end.
EVENTS_PER_BYTE = 2
CLOSE_EVENTS = 4
# Replays: _MACRO_CHUNK_BUDGET per _MACRO_WINDOW bytes of stream (a stream of L bytes touches
# at most L // _MACRO_WINDOW + 1 windows).
REPLAY_BUDGET = escpos_parser._MACRO_CHUNK_BUDGET
REPLAY_WINDOW = escpos_parser._MACRO_WINDOW
# A line holds max_line bytes; a byte no codec takes reads as "\xNN", 4 characters.
LINE_CHARS = 4 * MAX_LINE
# A 2D code holds max_code bytes plus its 3-byte prefix; a barcode 255, CODE128 "%02d" pairs.
CODE_CHARS = MAX_CODE + 3
BARCODE_CHARS = 2 * 255


def replay_bound(length):
    """Most events GS ^ replays may add to a stream of `length` bytes."""
    return REPLAY_BUDGET * (length // REPLAY_WINDOW + 1)


def events_bound(length):
    """Most events a stream of `length` bytes may give, replays included."""
    return EVENTS_PER_BYTE * length + CLOSE_EVENTS + replay_bound(length)


def seed_streams(generated=12):
    """Real streams to mutate: every corpus file, then python-escpos generated receipts."""
    from tilltap_host.corpus import corpus_files
    from tilltap_host.receipt_factory import generate_receipts

    streams = []
    for path in corpus_files():
        with open(path, "rb") as f:
            streams.append(f.read())
    streams += [r.stream for r in generate_receipts(11, generated)]
    return streams


# Command starts worth hitting: every command byte after ESC/GS/FS is tried at random too.
_PREFIXES = [b"\x1b", b"\x1d", b"\x1c", b"\x10\x04", b"\x10\x05", b"\x10\x14", b"\x1b\x1d",
             b"\x1b*r", b"\x1b\x1dy", b"\x1b\x1dx", b"\x1b\x1d(", b"\x1bb"]
# Commands with a length field (the bytes before it), for huge or odd lengths.
_LENGTHS = [b"\x1d(k", b"\x1d(L", b"\x1d(E", b"\x1d(H", b"\x1d(C", b"\x1b(A", b"\x1c(A",
            b"\x1c(e", b"\x1d(G", b"\x1dv0\x00", b"\x1b*\x21", b"\x1dQ0\x00", b"\x1d8L",
            b"\x1cg1\x00\x00\x00\x00\x00", b"\x1dkE", b"\x1b\x1dyD1\x00",
            b"\x1dD0C\x00\x01\x01\x01\x01BM", b"\x1b\x1dS\x01", b"\x1cq\x02", b"\x1b&\x03\x21\x7e"]
_CONTROLS = bytes(range(32))
_TEXT = b"Coffee 3.50 TOTAL 12.00 Visa **** 1234 \xe9\x82\xa0\xb3\xc4"


class Fuzzer:
    """Deterministic inputs from a seed: next_input() -> (data, cuts, profile, encoding)."""

    def __init__(self, seed, streams, max_len=512):
        self.rng = random.Random(seed)
        self.streams = streams
        self.max_len = max_len

    def _slice(self, most):
        r = self.rng
        s = self.streams[r.randrange(len(self.streams))]
        if not s:
            return b""
        n = r.randint(1, min(most, len(s)))
        at = r.randrange(len(s) - n + 1)
        return s[at:at + n]

    def _args(self, most=8):
        r = self.rng
        return bytes(r.choice((0, 1, 2, 48, 49, 255, r.randrange(256)))
                     for _ in range(r.randint(0, most)))

    def _piece(self):
        """A structured fragment to insert: a command, a length bomb, a macro burst, a run."""
        r = self.rng
        kind = r.randrange(9)
        if kind == 0:          # a command prefix, a command byte, arguments
            return r.choice(_PREFIXES) + bytes((r.randrange(256),)) + self._args()
        if kind == 1:          # a command of a known kind with arguments
            return bytes((r.choice((ESC, GS, FS)), r.randrange(0x20, 0x80))) + self._args()
        if kind == 2:          # a length field: huge, zero, one, or random
            size = r.choice((0xFFFF, 0xFFFF, 0, 1, 2, 3, r.randrange(1 << 16)))
            head = r.choice(_LENGTHS)
            if head == b"\x1d8L":
                return head + struct.pack("<I", r.choice((0xFFFFFFFF, 1 << 24, size)))
            return head + struct.pack("<H", size) + self._args(12)
        if kind == 3:          # a macro: GS : events GS :, then a burst of GS ^
            body = b"".join(r.choice((b"Macro line\n", b"\n", b"\x1dV\x00", b"\x1bp\x00\x05\x05",
                                      b"\x1dkE\x0312", b"\x1d(k\x03\x001Q0", b"\x07",
                                      b"\x1d/\x00"))
                            for _ in range(r.randint(0, 70 if r.randrange(4) else 8)))
            burst = bytes((GS, 0x5E, r.randrange(256), r.randrange(256), r.randrange(256)))
            return b"\x1d:" + body + b"\x1d:" + burst * r.randint(1, 1 + self.max_len // 8)
        if kind == 4:          # GS ^ alone (a macro may already be recorded)
            return b"\x1d^" + self._args(3) * r.randint(1, 20)
        if kind == 5:          # a run of control bytes
            byte = r.choice((b"\x00", b"\x01", b"\x0d", b"\x09", b"\x18", b"\x0c",
                             bytes((r.choice(_CONTROLS),))))
            return byte * r.randint(1, 4 * self.max_len)
        if kind == 6:          # mixed control bytes and text
            return bytes(r.choice(_CONTROLS + _TEXT) for _ in range(r.randint(1, self.max_len)))
        if kind == 7:          # a 2D code stored (maybe big) and printed many times
            # up to max_code (8 KB) now and then, else about the input's size
            most = 128 if r.randrange(16) == 0 else 1 + self.max_len // 16
            data = r.randbytes(r.randint(0, 64)) * r.randint(1, most)
            return (b"\x1d(k" + struct.pack("<H", len(data) + 3) + b"1P0" + data +
                    b"\x1d(k\x03\x001Q0" * r.randint(1, 40))
        return self._slice(self.max_len)   # a splice of another stream

    def mutate(self, data):
        r = self.rng
        data = bytearray(data)
        for _ in range(r.choice((1, 1, 2, 3, 4, 8, 16))):
            op = r.randrange(6)
            pos = r.randint(0, len(data))
            if op == 0 and data:
                data[min(pos, len(data) - 1)] ^= 1 << r.randrange(8)
            elif op == 1 and data:
                data[min(pos, len(data) - 1)] = r.randrange(256)
            elif op == 2:
                del data[pos:pos + r.randint(1, 64)]
            elif op == 3:
                data[pos:pos] = r.randbytes(r.randint(1, 16))
            else:
                data[pos:pos] = self._piece()
        return bytes(data)

    def cuts(self, length):
        """Chunk boundaries: none, a few at random, or every n bytes."""
        r = self.rng
        way = r.randrange(4)
        if way == 0 or length < 2:
            return []
        if way == 3:
            step = r.choice((1, 2, 3, 5, 7, 64, 128))
            return list(range(step, length, step))
        return sorted({r.randrange(1, length) for _ in range(r.randint(1, 12))})

    def next_input(self):
        r = self.rng
        data = self.mutate(self._slice(self.max_len))
        profile, encoding = PROFILES[r.randrange(len(PROFILES))]
        return data, self.cuts(len(data)), profile, encoding


def parse(data, cuts, profile="epson", encoding=None):
    """(events, stats) of data fed in the chunks cuts makes, then close()."""
    p = Parser(profile=profile, encoding=encoding)
    out = []
    pos = 0
    for cut in list(cuts) + [len(data)]:
        out += p.feed(data[pos:cut])
        pos = cut
    out += p.close()
    return out, p.stats()


def _count(events, kind):
    return sum(1 for e in events if e[0] == kind)


def check(data, cuts, profile="epson", encoding=None):
    """Run one input; raises AssertionError naming the broken invariant. Returns the whole
    run's (events, stats)."""
    events, stats = parse(data, [], profile, encoding)
    if cuts:
        assert parse(data, cuts, profile, encoding) == (events, stats), "chunk invariance"
    n = len(data)
    assert stats["bytes"] == n, "bytes counted"
    assert len(events) <= events_bound(n), ("events per byte", len(events), n)
    assert _count(events, CUT) == stats["cuts"], "cuts"
    assert _count(events, RECEIPT_END) == stats["receipts"], "receipts"
    assert _count(events, REQUEST) == stats["requests"], "requests"
    ends = [e[3] for e in events if e[0] == RECEIPT_END]
    assert ends == sorted(ends) and all(0 <= x <= n for x in ends), ("offsets", ends)
    replayed = (_count(events, LINE) - stats["lines"]) + \
        (_count(events, BARCODE) - stats["barcodes"]) + \
        (_count(events, CODE2D) - stats["codes2d"]) + \
        (_count(events, DRAWER) - stats["drawer_kicks"])
    if b"\x1d^" in data:
        assert 0 <= replayed <= replay_bound(n), ("replays", replayed, n)
    else:
        assert replayed == 0 and stats["macro_events_dropped"] == 0, ("replays", replayed)
    assert _count(events, IMAGE) <= stats["images"] + replay_bound(n), "images"
    for e in events:
        if e[0] == LINE and e[1] is not None:
            assert len(e[1]) <= LINE_CHARS, ("line length", len(e[1]))
        elif e[0] == CODE2D:
            assert len(e[2]) <= CODE_CHARS, ("code length", len(e[2]))
        elif e[0] == BARCODE:
            assert len(e[2]) <= BARCODE_CHARS, ("barcode length", len(e[2]))
    return events, stats


def run(seed, count, streams, max_len=512):
    """count inputs from seed through check(); returns (inputs, bytes, failures) where
    failures lists (index, data, cuts, profile, encoding, error) for the first few."""
    fuzzer = Fuzzer(seed, streams, max_len)
    failures = []
    total = 0
    for index in range(count):
        data, cuts, profile, encoding = fuzzer.next_input()
        total += len(data)
        try:
            check(data, cuts, profile, encoding)
        except Exception as e:   # noqa: BLE001 -- every failure is collected and reported
            if len(failures) < 5:
                failures.append((index, data, cuts, profile, encoding, repr(e)[:300]))
            else:
                failures.append((index, None, None, None, None, repr(e)[:100]))
    return count, total, failures


def write_batch(path, seed, count, streams, max_len=512):
    """count inputs from seed into a file for parser_fuzz_mp.py; returns the bytes written.

    The file: write_header(), then the records. A record: data length (4 bytes, little-endian),
    profile index (1, into PROFILES), chunk step (2: chunks of that many bytes, or 0), number
    of cuts (2), the cuts (4 each), the data."""
    fuzzer = Fuzzer(seed, streams, max_len)
    with open(path, "wb") as f:
        written = write_header(f)
        for _ in range(count):
            data, cuts, profile, encoding = fuzzer.next_input()
            written += write_record(f, data, cuts, PROFILES.index((profile, encoding)))
    return written


def write_header(f):
    """A batch file's first line: PROFILES as JSON (the record's profile index reads it)."""
    line = (json.dumps(PROFILES) + "\n").encode()
    f.write(line)
    return len(line)


def write_record(f, data, cuts=(), profile=0, step=0):
    """One record of a batch file (see write_batch); returns its size. Regular cuts are
    written as their step; step alone (no cuts): chunks of that many bytes."""
    if cuts and list(cuts) == list(range(cuts[0], len(data), cuts[0])):
        step, cuts = cuts[0], ()
    record = struct.pack("<IBHH", len(data), profile, step, len(cuts)) + \
        b"".join(struct.pack("<I", c) for c in cuts) + data
    f.write(record)
    return len(record)
