"""Property tests: random, mutated and grammar-built streams (hypothesis)."""
import os
import tracemalloc

from corpus import corpus_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tilltap_fw.escpos_parser import BARCODE, CODE2D, LINE, Parser

SOAK = bool(os.environ.get("TILLTAP_SOAK"))
EXAMPLES = 2000 if SOAK else 150
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def run(stream, cuts, **options):
    p = Parser(**options)
    out = []
    pos = 0
    for cut in sorted({c % (len(stream) + 1) for c in cuts}) + [len(stream)]:
        out += p.feed(stream[pos:cut])
        pos = cut
    return out + p.close(), p.stats()


@SETTINGS
@given(st.binary(max_size=6000), st.lists(st.integers(0, 10 ** 6), max_size=12))
def test_random_bytes_no_exception_and_chunk_invariant(data, cuts):
    whole = run(data, [])
    assert run(data, cuts) == whole


def _seed_streams():
    seeds = []
    for path in corpus_files():
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < 20000:
            seeds.append(data)
    return seeds or [b"\x1b@Shop\n\x1dV\x00"]


SEEDS = _seed_streams()


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.sampled_from([b"\x1b", b"\x1d", b"\x1c", b"\x10", b"\x1d(k",
                                                  b"\x1d8L", b"\x1dv0", b"\x1b*!", b"\x1dk"]))
        elif op == 2:
            del data[pos:pos + draw(st.integers(1, 50))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=40))
    return bytes(data)


@SETTINGS
@given(mutated(), st.lists(st.integers(0, 10 ** 6), max_size=12))
def test_mutated_corpus_streams(data, cuts):
    tracemalloc.start()
    whole = run(data, [], max_payload=1 << 20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 * 1024 * 1024          # bounded: caps hold whatever the bytes say
    assert run(data, cuts, max_payload=1 << 20) == whole


# ---- grammar-built streams: every element's text and codes must come back exactly ----------

WORD = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 .,:-",
               min_size=1, max_size=40).map(str.strip).filter(bool)
TRAPS = st.binary(max_size=300).map(lambda b: b + b"\n\x1b@\x1dV\x00\x10\x04\x01\x1dk\x02")


def _u16(n):
    return bytes((n & 0xFF, n >> 8))


@st.composite
def element(draw):
    kind = draw(st.sampled_from(["text", "raster", "column", "graphics", "barcode", "qr",
                                 "style", "udc"]))
    if kind == "text":
        word = draw(WORD)
        return word.encode(), [("line", word)]
    payload = draw(TRAPS)
    if kind == "raster":
        x = draw(st.integers(1, 8))
        y = len(payload) // x
        return b"\x1dv0\x00" + _u16(x) + _u16(y) + payload[:x * y], []
    if kind == "column":
        n = len(payload) // 3
        return b"\x1b*\x21" + _u16(n) + payload[:3 * n] + b"\n", []
    if kind == "graphics":
        body = b"\x30\x70\x30\x01\x01\x31" + _u16(8) + _u16(len(payload)) + payload
        return b"\x1d(L" + _u16(len(body)) + body + b"\x1d(L\x02\x000\x32", []
    if kind == "barcode":
        digits = draw(st.text(alphabet="0123456789", min_size=1, max_size=20))
        return b"\x1dkE" + bytes((len(digits),)) + digits.encode(), [("barcode", digits)]
    if kind == "qr":
        data = draw(st.text(min_size=1, max_size=200))
        raw = data.encode("utf-8")
        return (b"\x1d(k" + _u16(len(raw) + 3) + b"1P0" + raw + b"\x1d(k\x03\x001Q0",
                [("qr", data)])
    if kind == "style":
        return draw(st.sampled_from([b"\x1bE\x01", b"\x1b!\x30", b"\x1da\x00", b"\x1b-\x01",
                                     b"\x1d!\x11", b"\x1bt\x00", b"\x1b$\x00\x00"])), []
    return b"\x1b&\x03\x21\x21\x02" + (payload * 6)[:6], []


@SETTINGS
@given(st.lists(element(), min_size=1, max_size=25), st.lists(st.integers(0, 10 ** 6),
                                                               max_size=10))
def test_grammar_streams_come_back_exactly(elements, cuts):
    stream = b""
    expected = []
    for raw, exp in elements:
        # text goes on a line of its own so that line content is known exactly
        stream += (b"\n" + raw + b"\n") if exp and exp[0][0] == "line" else raw
        expected += exp
    events, stats = run(stream, cuts)
    got = []
    for e in events:
        if e[0] == LINE and e[1]:
            got.append(("line", e[1]))
        elif e[0] == BARCODE:
            got.append(("barcode", e[2]))
        elif e[0] == CODE2D:
            got.append(("qr", e[2]))
    assert got == expected
    assert stats["desync"] == 0 and stats["unknown_commands"] == 0


@settings(max_examples=EXAMPLES // 3, deadline=None)
@given(st.lists(st.integers(0, 10 ** 6), max_size=20))
def test_corpus_streams_any_split(cuts):
    for data in SEEDS[:20]:
        assert run(data, cuts) == run(data, [])
