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


# Fragments of every command that makes a printer answer, and of commands around them, so
# that random streams hit requests, their look-alikes and requests inside payloads.
_ASKING = [b"\x10\x04\x01", b"\x10\x04\x07\x01", b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08",
           b"\x1bu\x00", b"\x1bv", b"\x1d\x61\x0f", b"\x1dr\x01", b"\x1dI\x41", b"\x1dg2\x00",
           b"\x1d(H\x06\x000\x30abcd", b"\x1d(E\x03\x00\x06\x01\x02", b"\x1d(k\x03\x001R0",
           b"\x1d(L\x02\x000\x31", b"\x1c(e\x02\x003\x01", b"\x1cg2\x00\x00\x00\x00\x00\x01\x00",
           b"\x1b\x06\x01", b"\x1b\x1dyI", b"\x1b\x1dxI", b"\x04", b"\x05", b"\x1b\x1d",
           b"\x1d8L\x10\x00\x00\x000p0\x01\x01\x011\x01\x00\x01\x00", b"\x1b@", b"\x10", b"\x1d",
           b"\x1c", b"\x1b", b"\x1d(", b"Coffee 3.50\n", b"\x1dV\x00"]


@SETTINGS
@given(st.lists(st.sampled_from(_ASKING) | st.binary(max_size=6), max_size=40),
       st.integers(0, 10 ** 6), st.sampled_from(["epson", "star"]))
def test_bytes_that_may_ask_nothing_make_no_request(parts, cut, profile):
    """The tap ends a job without waiting for capture's parse when Parser.may_ask says the
    bytes not parsed yet ask nothing: then parsing them must indeed make no REQUEST event."""
    from tilltap_fw.escpos_parser import REQUEST
    stream = b"".join(parts)
    cut %= len(stream) + 1
    p = Parser(profile=profile)
    p.feed(stream[:cut])
    if not p.may_ask(stream, cut, len(stream)):
        rest = p.feed(stream[cut:]) + p.close()
        assert not [e for e in rest if e[0] == REQUEST], (stream, cut)


def test_every_asking_command_may_ask():
    """Each command fragment above, alone and after text, in both profiles: a request is
    never where may_ask sees none."""
    from tilltap_fw.escpos_parser import REQUEST
    asked = 0
    for profile in ("epson", "star"):
        for fragment in _ASKING:
            for stream in (fragment, b"Total 3.50\n" + fragment):
                p = Parser(profile=profile)
                events = p.feed(stream) + p.close()
                if [e for e in events if e[0] == REQUEST]:
                    asked += 1
                    assert Parser(profile=profile).may_ask(stream, 0, len(stream)), stream
    assert asked >= 30        # the fragments do ask


def test_answers_of_known_size():
    from tilltap_fw.escpos_parser import reply_bytes
    assert [reply_bytes(r) for r in ("DLE EOT 1", "GS r 49", "ESC v", "ENQ", "GS I 65", "GS a",
                                     "ESC ACK SOH", "DLE EOT")] == [1, 1, 1, 1, 0, 0, 0, 0]
