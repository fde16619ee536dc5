"""Parser framing, decoding and splitting; runs under pytest and under MicroPython."""
import fwtest

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
    decode_text,
)

ESC = b"\x1b"
GS = b"\x1d"
FS = b"\x1c"
DLE = b"\x10"
# Payload bytes that look like commands and line feeds: a parser that loses framing shows them.
TRAP = b"\n\x1b@\x1dV\x00\x10\x04\x01\x1b\x64\x05\n"


def events(stream, chunk=0, **options):
    p = Parser(**options)
    out = []
    step = chunk or max(1, len(stream))
    for i in range(0, len(stream), step):
        out += p.feed(memoryview(stream)[i:i + step])
    return out + p.close()


def kinds(evs, kind):
    return [e for e in evs if e[0] == kind]


def lines(evs):
    return [e[1] for e in evs if e[0] == LINE and e[1] != ""]


def u16(n):
    return bytes((n & 0xFF, n >> 8))


def test_plain_lines_and_line_ends():
    stream = b"one\ntwo\r\nthree\n\rfour\rfive   \n"
    evs = events(stream)
    assert lines(evs) == ["one", "two", "three", "four", "five"]
    assert kinds(evs, RECEIPT_END) == [(RECEIPT_END, "end", None, len(stream))]


def test_blank_lines_kept_between_text():
    evs = events(b"a\n\nb\n")
    assert [e[1] for e in evs if e[0] == LINE] == ["a", "", "b"]


def test_raster_image_payload_never_desyncs():
    x, y = 4, 3
    payload = (TRAP * 2)[:x * y]
    stream = b"before\n" + GS + b"v0\x00" + u16(x) + u16(y) + payload + b"after\n" + GS + b"V\x00"
    for chunk in (0, 1, 5):
        evs = events(stream, chunk)
        assert lines(evs) == ["before", "after"], (chunk, evs)
        assert kinds(evs, IMAGE) == [(IMAGE, "raster", 32, 3, 12)]
        assert kinds(evs, REQUEST) == []
        assert kinds(evs, CUT) == [(CUT, "full")]


def test_column_image_stripes_merge_into_one_image():
    stripe8 = ESC + b"*\x00" + u16(6) + TRAP[:6] + b"\n"
    stripe24 = ESC + b"*\x21" + u16(4) + (TRAP * 2)[:12] + b"\n"
    evs = events(ESC + b"3\x10" + stripe8 * 3 + ESC + b"2" + b"text\n" + stripe24 * 2)
    assert kinds(evs, IMAGE) == [(IMAGE, "column", 6, 24, 18), (IMAGE, "column", 4, 48, 24)]
    assert lines(evs) == ["text"]
    assert [e[1] for e in evs if e[0] == LINE] == ["text"]


def test_graphics_gs_paren_l_and_gs_8_l():
    x, y = 16, 2
    data = (TRAP * 3)[:x // 8 * y]
    body = b"\x30\x70\x30\x01\x01\x31" + u16(x) + u16(y) + data
    gs_paren = GS + b"(L" + u16(len(body)) + body
    gs8 = GS + b"8L" + u16(len(body)) + b"\x00\x00" + body
    print_buf = GS + b"(L\x02\x00\x30\x32"
    evs = events(b"a\n" + gs_paren + print_buf + b"b\n" + gs8 + print_buf + b"c\n")
    assert lines(evs) == ["a", "b", "c"]
    assert kinds(evs, IMAGE) == [(IMAGE, "graphics", 16, 2, 4), (IMAGE, "graphics", 16, 2, 4)]


def test_barcodes_function_a_and_b():
    stream = (GS + b"k\x02" + b"4006381333931\x00" + b"x\n" +
              GS + b"k\x04" + b"CODE-39\x00" +
              GS + b"kI\x0b{B" + b"No.{C" + bytes((12, 34, 56, 0)) + b"y\n" +
              GS + b"kE\x05ABC12" + b"z\n")
    for chunk in (0, 1, 3):
        evs = events(stream, chunk)
        assert kinds(evs, BARCODE) == [
            (BARCODE, "EAN13", "4006381333931"),
            (BARCODE, "CODE39", "CODE-39"),
            (BARCODE, "CODE128", "No.12345600"),
            (BARCODE, "CODE39", "ABC12"),
        ], evs
        assert lines(evs) == ["x", "y", "z"]


def test_barcode_function_a_ends_at_fixed_digit_count():
    evs = events(GS + b"k\x03" + b"12345678" + b"rest\n")
    assert kinds(evs, BARCODE) == [(BARCODE, "EAN8", "12345678")]
    assert lines(evs) == ["rest"]


def test_qr_code_reported_when_printed_not_when_stored():
    data = b"https://e.example/inv?id=42&" + TRAP
    store = GS + b"(k" + u16(len(data) + 3) + b"1P0" + data
    size = GS + b"(k\x03\x001C\x06"
    printq = GS + b"(k\x03\x001Q0"
    evs = events(size + store + b"mid\n" + printq + printq)
    qr = (CODE2D, "QR", data.decode())
    assert kinds(evs, CODE2D) == [qr, qr]
    assert lines(evs) == ["mid"]
    assert kinds(events(store + b"x\n"), CODE2D) == []


def test_pdf417_store_and_print():
    data = b"PDF|417|DATA"
    evs = events(GS + b"(k" + u16(len(data) + 3) + b"0P0" + data + GS + b"(k\x03\x000Q0")
    assert kinds(evs, CODE2D) == [(CODE2D, "PDF417", "PDF|417|DATA")]


def test_definitions_and_other_length_prefixed_commands_are_skipped():
    amp = ESC + b"&\x03\x41\x42" + b"\x02" + TRAP[:6] + b"\x01" + TRAP[:3]
    nv = FS + b"q\x01" + u16(1) + u16(1) + (TRAP * 2)[:8]
    bmp = b"BM" + (22).to_bytes(4, "little") + (TRAP * 2)[:16]
    gsd = GS + b"D0C0\x20\x20\x011" + bmp
    dl = GS + b"*\x01\x01" + (TRAP * 2)[:8]
    kanji = FS + b"2\xa1\xa1" + (TRAP * 6)[:72]
    nvmem = FS + b"g1\x00\x00\x00\x00\x00" + u16(5) + TRAP[:5]
    beep = ESC + b"(A" + u16(4) + b"\x30\x0a\x0a\x0a"
    unknown_p16 = GS + b"(Z" + u16(6) + TRAP[:6]
    counter = GS + b"C;" + b"1;2;3;4;5;"
    stream = b"a\n" + amp + nv + gsd + dl + kanji + nvmem + beep + unknown_p16 + counter + b"b\n"
    for chunk in (0, 1, 7):
        p = Parser()
        out = []
        for i in range(0, len(stream), chunk or len(stream)):
            out += p.feed(stream[i:i + (chunk or len(stream))])
        out += p.close()
        assert lines(out) == ["a", "b"], (chunk, out)
        assert p.stats()["desync"] == 0
        assert p.stats()["unknown_commands"] == 0


def test_tab_positions_and_absolute_position_make_columns():
    evs = events(ESC + b"D\x04\x0a\x00" + b"a\tb\tc\n" + b"Item" + ESC + b"$" + u16(240) +
                 b"9.99\n")
    assert lines(evs) == ["a   b     c", "Item                9.99"]


def test_cuts_of_every_form_end_receipts():
    cuts = [GS + b"V\x00", GS + b"V\x01", GS + b"V0", GS + b"V1", GS + b"VA\x03", GS + b"VB\x03",
            GS + b"Va\x00", GS + b"Vb\x00", GS + b"Vg\x00", GS + b"Vh\x00", ESC + b"i", ESC + b"m"]
    stream = b"".join(b"r%d\n" % k + c for k, c in enumerate(cuts))
    evs = events(stream)
    ends = kinds(evs, RECEIPT_END)
    assert [e[2] for e in ends] == ["full", "partial", "full", "partial", "full", "partial",
                                    "full", "partial", "full", "partial", "partial", "partial"]
    assert lines(evs) == ["r%d" % k for k in range(len(cuts))]


def test_receipt_end_offsets_split_the_stream_exactly():
    first = ESC + b"@" + b"a\n" + GS + b"V\x00"
    second = ESC + b"@" + b"b\n" + ESC + b"i"
    third = ESC + b"@" + b"c\n"
    stream = first + second + third + ESC + b"@" + b"d"
    for chunk in (0, 1, 3):
        ends = kinds(events(stream, chunk, split_on_init=True), RECEIPT_END)
        assert ends == [(RECEIPT_END, "cut", "full", len(first)),
                        (RECEIPT_END, "cut", "partial", len(first + second)),
                        (RECEIPT_END, "init", None, len(first + second + third)),
                        (RECEIPT_END, "end", None, len(stream))], (chunk, ends)


def test_cut_without_content_makes_no_receipt():
    evs = events(GS + b"V\x00" + b"x\n" + GS + b"V\x00" + GS + b"V\x00")
    assert len(kinds(evs, RECEIPT_END)) == 1
    assert len(kinds(evs, CUT)) == 3


def test_idle_gap_ends_a_receipt():
    p = Parser()
    p.feed(b"first\n")
    assert p.idle() == [(RECEIPT_END, "idle", None, 6)]
    p.feed(b"second")
    evs = p.idle()
    assert evs == [(LINE, "second", None), (RECEIPT_END, "idle", None, 12)]
    assert p.idle() == []


def test_status_requests_and_drawer():
    stream = (DLE + b"\x04\x01" + DLE + b"\x04\x07\x01" + GS + b"r\x01" + GS + b"a\x0f" +
              GS + b"(H\x06\x00\x30\x30abcd" + DLE + b"\x14\x01\x00\x05" + ESC + b"p\x00\x19\xfa" +
              b"ok\n")
    evs = events(stream)
    assert [e[1] for e in kinds(evs, REQUEST)] == ["DLE EOT 1", "DLE EOT 7", "GS r 1", "GS a",
                                                    "GS ( H 48"]
    assert kinds(evs, DRAWER) == [(DRAWER, 2), (DRAWER, 2)]
    assert lines(evs) == ["ok"]


def test_gs_paren_function_byte_is_where_each_command_has_it():
    """GS ( E, H and G put the function right after the length, GS ( k, L and C after one
    more byte: a request is named by its own function, not by its parameter."""
    stream = (GS + b"(E\x02\x00\x04\x01" +          # fn 4 (send memory switches), a = 1
              GS + b"(E\x04\x00\x02OUT" +             # fn 2 (end setup): no answer
              GS + b"(H\x03\x00\x31\x30\x00" +        # fn 49 (offline response), m = 48
              GS + b"(C\x05\x00\x00\x33\x00\x00\x00" +  # m 0, fn 51 (capacity)
              GS + b"(k\x03\x001R0" + b"ok\n")         # cn 49, fn 82 (symbol size)
    assert [e[1] for e in kinds(events(stream), REQUEST)] == [
        "GS ( E 4", "GS ( H 49", "GS ( C 51", "GS ( k 82"]


def test_dle_not_followed_by_a_realtime_command_is_ignored():
    for chunk in (0, 1):
        assert lines(events(b"a" + DLE + b"b\n", chunk)) == ["ab"]


def test_codepage_and_international_set():
    stream = ESC + b"t\x10" + b"caf\xe9\n" + ESC + b"R\x02" + b"[\\]{|}~\n"
    evs = events(stream)
    got = [e for e in evs if e[0] == LINE]
    if fwtest.IS_MICROPYTHON:
        assert got[0] == (LINE, None, (("cp1252", 0, b"caf\xe9"),))
    else:
        assert got[0] == (LINE, "café", None)
    assert got[1] == (LINE, "ÄÖÜäöüß", None)


def _page_of(evs):
    """(encoding, text) of the first non-ASCII line: text on CPython, the span on the board."""
    for e in evs:
        if e[0] == LINE and e[2] is not None:
            return e[2][0][0], None
        if e[0] == LINE and e[1] and max(e[1]) > "~":
            return None, e[1]
    return None


def _stats(stream, **options):
    p = Parser(**options)
    evs = p.feed(stream) + p.close()
    return evs, p.stats()


def test_printer_model_numbers_the_code_pages():
    # a 58 mm printer whose ESC t 25 is CP1257 (escpos-printer-db): € is 0x80 there
    stream = ESC + b"t\x19" + b"Total \x80 5.00\n"
    evs, stats = _stats(stream, model="POS-5890")
    enc, text = _page_of(evs)
    assert (enc, text) == (("cp1257", None) if fwtest.IS_MICROPYTHON else (None, "Total € 5.00"))
    assert stats["unknown_codepages"] == 0
    # the default Epson map has no page 25: it reads cp437 (€ as Ç) and says so in stats
    evs, stats = _stats(stream)
    enc, text = _page_of(evs)
    assert (enc, text) == (("cp437", None) if fwtest.IS_MICROPYTHON else (None, "Total Ç 5.00"))
    assert stats["unknown_codepages"] == 1
    # a page the model lacks is unknown too, even where the vendor map has it (Epson's 11)
    assert _stats(ESC + b"t\x0b" + b"x\n", model="POS-5890")[1]["unknown_codepages"] == 1
    # a page the database knows exists but not which: the vendor map reads it (zjiang 6)
    evs, stats = _stats(ESC + b"t\x06" + b"\xe9\n", model="POS-5890", codepage_map="zjiang")
    assert _page_of(evs) == (("latin_1", None) if fwtest.IS_MICROPYTHON else (None, "é"))
    assert stats["unknown_codepages"] == 0


def test_star_printer_model_numbers_esc_gs_t():
    stream = ESC + GS + b"t\x20" + b"caf\xe9\n" + ESC + b"t\x20" + b"x\n"
    evs, stats = _stats(stream, profile="star", model="TSP600")
    assert _page_of(evs) == (("cp1252", None) if fwtest.IS_MICROPYTHON else (None, "café"))
    assert stats["unknown_codepages"] == 0


def test_unknown_printer_model_is_refused():
    for model in ("TM-NONE", "TM-T88V ", "T-1:0"):
        try:
            Parser(model=model)
        except ValueError as e:
            assert "printer model" in str(e)
        else:
            raise AssertionError(model)


def _copy(name, feed):
    return ESC + b"@" + name + b"\nCoffee 3.50\n" + ESC + b"d" + feed + b"Total 3.50\n" + \
        ESC + b"d\x06"


def test_tear_off_feed_splits_copies_printed_back_to_back():
    # no ESC @ between the copies either: the second copy's first line tells
    copy = _copy(b"SHOP", b"\x03")[2:]
    stream = copy + copy
    for chunk in (0, 1, 5):
        evs = events(stream, chunk, tear_lines=5)
        assert kinds(evs, RECEIPT_END) == [(RECEIPT_END, "tear", None, len(copy)),
                                           (RECEIPT_END, "end", None, len(stream))], chunk
        assert lines(evs) == ["SHOP", "Coffee 3.50", "Total 3.50"] * 2
    # the same with ESC @ starting each copy, and with ESC J (units of 1/180 inch)
    copy = _copy(b"SHOP", b"\x03").replace(ESC + b"d\x06", ESC + b"J\xb4")
    ends = kinds(events(copy + copy, tear_lines=5), RECEIPT_END)
    assert ends == [(RECEIPT_END, "tear", None, len(copy)),
                    (RECEIPT_END, "end", None, 2 * len(copy))]
    p = Parser(tear_lines=5)
    p.feed(copy + copy)
    p.close()
    assert p.stats()["tear_splits"] == 1


def test_feeds_within_a_receipt_do_not_split_it():
    # a mid-way ESC d 3 is under the threshold
    assert len(kinds(events(_copy(b"SHOP", b"\x03"), tear_lines=5), RECEIPT_END)) == 1
    # a large mid-way feed (room to sign) followed by more of the same receipt
    stream = _copy(b"SHOP", b"\x08") + b"Thank you\n"
    evs = events(stream, tear_lines=5)
    assert kinds(evs, RECEIPT_END) == [(RECEIPT_END, "end", None, len(stream))]
    # two receipts of different shops after a tear-off feed, no ESC @: not a copy, one receipt
    stream = _copy(b"SHOP", b"\x03")[2:] + _copy(b"OTHER", b"\x03")[2:]
    assert len(kinds(events(stream, tear_lines=5), RECEIPT_END)) == 1
    # a rule of dashes first, and again after room to sign: not a second copy
    rule = b"-" * 32 + b"\n"
    stream = rule + b"Visa 3.50\n" + ESC + b"d\x08" + rule + b"Signature\n"
    assert len(kinds(events(stream, tear_lines=5), RECEIPT_END)) == 1
    # tear-off off (the default): copies stay one receipt, as the printer's paper does
    copy = _copy(b"SHOP", b"\x03")[2:]
    assert len(kinds(events(copy + copy), RECEIPT_END)) == 1


def test_utf8_mode():
    evs = events(FS + b"(C\x02\x00\x30\x02" + "Grüße 你好\n".encode("utf-8"))
    assert lines(evs) == ["Grüße 你好"]


def test_cjk_mode_and_printer_default_encoding():
    gb = b"\xba\xcf\xbc\xc6 12.50"       # 合计 12.50 in GB18030
    evs = events(FS + b"&" + gb + b"\n" + FS + b"." + b"x\n")
    got = [e for e in evs if e[0] == LINE]
    if fwtest.IS_MICROPYTHON:
        assert got[0] == (LINE, None, (("gb18030", 0, gb),))
    else:
        assert got[0] == (LINE, "合计 12.50", None)
    assert got[1] == (LINE, "x", None)
    default = [e for e in events(gb + b"\n", encoding="gb18030") if e[0] == LINE]
    assert default == got[:1]


def test_customer_display_text_is_not_printed():
    evs = events(b"a\n" + ESC + b"=\x02" + b"DISPLAY 9.99" + ESC + b"=\x01" + b"b\n")
    assert lines(evs) == ["a", "b"]


def test_page_mode_prints_on_form_feed_and_cancel_drops():
    evs = events(ESC + b"L" + b"p1\n" + b"\x0c" + ESC + b"L" + b"gone\n" + b"\x18" +
                 ESC + b"S" + b"s\n")
    assert lines(evs) == ["p1", "s"]


def test_absurd_lengths_count_as_desync_and_parsing_goes_on():
    p = Parser(max_payload=1 << 20)
    evs = p.feed(GS + b"8L\xff\xff\xff\x7f" + b"\n" + b"next\n") + p.close()
    assert p.stats()["desync"] == 1
    assert lines(evs) == ["next"]


def test_long_lines_are_capped_and_counted():
    p = Parser(max_line=64)
    evs = p.feed(b"x" * 1000 + b"\n" + b"y\n") + p.close()
    assert lines(evs) == ["x" * 64, "y"]
    assert p.stats()["truncated_lines"] == 1


def test_star_line_mode():
    stream = (ESC + b"@" + ESC + b"\x1dt\x01" + ESC + b"E" + b"Bold\n" + ESC + b"F" +
              ESC + b"i\x01\x01" + b"Big\n" + ESC + b"b\x34\x32\x31\x50" + b"ABC-1\x1e" +
              ESC + b"\x1dyD1\x00" + u16(5) + b"hello" + ESC + b"\x1dyP" + b"\x07" +
              ESC + b"d\x03")
    for chunk in (0, 1):
        evs = events(stream, chunk, profile="star")
        assert lines(evs) == ["Bold", "Big"]
        assert kinds(evs, BARCODE) == [(BARCODE, "CODE39", "ABC-1")]
        assert kinds(evs, CODE2D) == [(CODE2D, "QR", "hello")]
        assert kinds(evs, DRAWER) == [(DRAWER, 1)]
        assert kinds(evs, RECEIPT_END) == [(RECEIPT_END, "cut", "partial", len(stream))]


def test_every_split_point_gives_the_same_events():
    stream = (ESC + b"@" + b"Shop\n" + GS + b"v0\x00" + u16(2) + u16(2) + TRAP[:4] +
              GS + b"k\x02" + b"4006381333931\x00" + ESC + b"t\x10" + b"\xe9\r\n" +
              GS + b"(k" + u16(6) + b"1P0abc" + GS + b"(k\x03\x001Q0" + DLE + b"\x04\x01" +
              b"total 1.00\n" + GS + b"VA\x00" + b"tail")
    whole = events(stream)
    for cut in range(1, len(stream)):
        p = Parser()
        got = p.feed(stream[:cut]) + p.feed(stream[cut:]) + p.close()
        assert got == whole, cut


def test_random_bytes_never_raise_and_memory_stays_bounded():
    import gc
    import random
    random.seed(7)
    p = Parser(max_payload=4096)
    gc.collect()
    before = gc.mem_alloc() if fwtest.IS_MICROPYTHON else 0
    for _ in range(200):
        n = random.getrandbits(11) + 1
        data = bytes(random.getrandbits(8) for _ in range(n))
        for i in range(0, len(data), 97):
            p.feed(data[i:i + 97])
    p.close()
    if fwtest.IS_MICROPYTHON:
        gc.collect()
        assert gc.mem_alloc() - before < 48 * 1024, gc.mem_alloc() - before
    assert p.stats()["bytes"] > 100000


def test_decode_text_on_this_interpreter():
    assert decode_text(b"plain", "cp437") == "plain"
    assert decode_text(b"#1", "cp437", 3) == "£1"
    if fwtest.IS_MICROPYTHON:
        assert decode_text(b"\x82", "cp437") is None
    else:
        assert decode_text(b"\x82", "cp437") == "é"


def test_macro_replays_are_bounded_per_window_and_per_receipt():
    """GS ^ repeats a recorded macro: a few bytes may not multiply the parser's output (and its
    memory) without bound. Replays beyond the budgets (per receipt, and per 512 bytes of the
    stream) are counted, not emitted, the same however the stream is split."""
    macro = GS + b":" + b"Macro line\n" * 8 + GS + b":"
    replay = GS + b"^\x10\x00\x00"                  # 16 times the 8 recorded lines
    start = ESC + b"@" + macro + replay * 60           # 400 bytes asking for 7,680 lines
    p = Parser()
    evs = p.feed(start)
    assert len(lines(evs)) == 8 + 256                  # the first 512 bytes' budget
    evs += p.feed(replay * 400)                        # 2 KB more asking for 51,200
    assert len(lines(evs)) == 8 + 512                  # the receipt's budget
    assert p.stats()["macro_events_dropped"] == 460 * 128 - 512
    evs = p.feed(GS + b"V\x00" + replay)               # a new receipt: a new budget
    assert lines(evs) == ["Macro line"] * 128
    # receipts cut between replays: the stream's budget still holds, whatever the chunks
    stream = ESC + b"@" + macro + (GS + b"V\x00" + replay) * 128
    whole = events(stream)
    assert len(lines(whole)) <= 8 + 256 * (len(stream) // 512 + 1)
    assert events(stream, chunk=1) == whole and events(stream, chunk=5) == whole


def test_star_drawer_kick_after_a_cut_ends_the_receipt_in_any_chunks():
    """A Star drawer kick is one byte (BEL): the receipt it belongs to ends just after it,
    however the stream is split (the fuzzer found the offset followed the chunking)."""
    stream = b"p" + GS + b"V\x00" + ESC + b"p\x07"
    whole = events(stream, profile="star")
    assert kinds(whole, RECEIPT_END) == [(RECEIPT_END, "cut", "full", len(stream))]
    for chunk in range(1, len(stream)):
        assert events(stream, chunk, profile="star") == whole, chunk


def test_printing_a_stored_code_again_shares_its_text():
    """GS ( k <fn 81> is 8 bytes: each print of a stored 8 KB code may not cost 8 KB more (a
    few hundred bytes would exhaust the heap). Non-UTF-8 data reads as Latin-1."""
    data = bytes(range(0x80, 0x100)) * 16
    store = GS + b"(k" + bytes(((len(data) + 3) & 0xFF, (len(data) + 3) >> 8)) + b"1P0" + data
    p = Parser()
    p.feed(ESC + b"@" + store)
    codes = kinds(p.feed((GS + b"(k\x03\x001Q0") * 50), CODE2D)
    assert len(codes) == 50 and codes[0][2] == "".join(chr(b) for b in data)
    assert all(c[2] is codes[0][2] for c in codes)


def test_star_status_request_is_esc_ack_soh_only():
    """Star's ESC ACK SOH makes the printer answer; ESC ACK with any other byte does not, so
    the tap must not wait for an answer to it (and may_ask agrees with the parse)."""
    for stream, asks in ((b"\x1b\x06\x01", True), (b"\x1b\x06\x00", False),
                         (b"\x1b\x06\x02", False)):
        p = Parser(profile="star")
        requests = [e for e in p.feed(stream) + p.close() if e[0] == REQUEST]
        assert bool(requests) is asks, stream
        assert Parser(profile="star").may_ask(stream, 0, len(stream)) is asks, stream
