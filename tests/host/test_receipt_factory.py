"""Sanity checks of the python-escpos receipt generator used to test the parser."""
from decimal import Decimal

import pytest
from escpos.printer import Dummy

from tilltap_host import receipt_factory as rf

ESC, GS = b"\x1b", b"\x1d"


@pytest.fixture(scope="module")
def receipts():
    return rf.generate_receipts()


def _le16(n: int) -> bytes:
    return n.to_bytes(2, "little")


def test_same_seed_same_receipts():
    first, again = rf.generate_receipts(seed=7, count=10), rf.generate_receipts(seed=7, count=10)
    assert ([(r.stream, r.lines, r.fields) for r in first]
            == [(r.stream, r.lines, r.fields) for r in again])
    assert [r.stream for r in rf.generate_receipts(seed=8, count=10)] != [r.stream for r in first]


def test_every_language_and_unique_names(receipts):
    assert len(receipts) == 30
    assert {r.language for r in receipts} == {"en", "de", "fr", "es", "zh"}
    assert {r.language for r in rf.generate_receipts(count=5)} == {"en", "de", "fr", "es", "zh"}
    assert len({r.name for r in receipts}) == len(receipts)


def test_each_receipt_starts_with_init_and_ends_with_its_cut(receipts):
    endings = {"full": (ESC + b"d\x06" + GS + b"V\x00",),
               "partial": (ESC + b"d\x06" + GS + b"V\x01", GS + b"VB\x00")}
    for r in receipts:
        assert r.stream.startswith(ESC + b"@"), r.name
        assert r.stream.endswith(endings[r.cut]), r.name
    assert {r.cut for r in receipts} == {"full", "partial"}
    assert any(r.stream.endswith(GS + b"VB\x00") for r in receipts)  # cut(feed=False)


def test_all_three_image_commands_appear(receipts):
    impls = {spec["impl"] for r in receipts for kind, spec in r._ops if kind == "image"}
    assert impls == set(rf.IMAGE_IMPLS)
    streams = [r.stream for r in receipts]
    assert any(GS + b"v0" in s for s in streams)
    assert any(GS + b"(L" in s and b"0p0" in s and GS + b"(L\x02\x0002" in s for s in streams)
    assert any(ESC + b"3\x10" + ESC + b"*" in s for s in streams)
    # logo + QR image
    assert sum(r.images for r in receipts) > sum(1 for r in receipts if r.images)


def test_barcode_payloads_are_in_the_stream(receipts):
    seen = set()
    for r in receipts:
        for symbology, data in r.barcodes:
            a = {"EAN13": 2, "CODE39": 4}.get(symbology)
            b = {"EAN13": 67, "CODE39": 69, "CODE128": 73}[symbology]
            sent = "{B" + data if symbology == "CODE128" else data
            form_a = a is not None and GS + b"k" + bytes([a]) + sent.encode() + b"\x00" in r.stream
            form_b = GS + b"k" + bytes([b, len(sent)]) + sent.encode() in r.stream
            assert form_a or form_b, (r.name, symbology, data)
            assert "{" not in data
            seen.add((symbology, "A" if form_a else "B"))
    assert {s for s, _ in seen} == {"EAN13", "CODE39", "CODE128"}
    assert {f for _, f in seen} == {"A", "B"}


def test_qr_payloads_are_in_the_stream(receipts):
    payloads = [q for r in receipts for q in r.qr_codes]
    for r in receipts:
        for content in r.qr_codes:
            data = content.encode("utf-8")
            assert GS + b"(k" + _le16(len(data) + 3) + b"1P0" + data in r.stream, r.name
        assert r.stream.count(GS + b"(k") == 5 * len(r.qr_codes)  # model, size, EC, store, print
    assert any(q.startswith("https://") for q in payloads)
    assert any(not q.isascii() for q in payloads)
    non_native = [r for r in receipts if any(k == "qr" and not s["native"] for k, s in r._ops)]
    assert non_native and all(not r.qr_codes for r in non_native)


def test_code_pages_and_chinese_bytes(receipts):
    for r in receipts:
        assert b"\x1c&" not in r.stream  # python-escpos never enters Kanji mode
        if r.language == "zh":
            assert "合计".encode("gbk") in r.stream
        else:
            assert ESC + b"t\x00" in r.stream
    # € is A4 in ISO 8859-7 (ESC t 15), or 80 if the receipt already switched to WPC1252 for œ.
    euro = [r for r in receipts if any("€" in line for line in r.lines)]
    assert euro and all(ESC + b"t\x0f\xa4" in r.stream or ESC + b"t\x10" in r.stream for r in euro)
    assert any(ESC + b"t\x0f\xa4" in r.stream for r in euro)


def test_ground_truth_adds_up(receipts):
    for r in receipts:
        f = r.fields
        assert sum(Decimal(i["amount"]) for i in f["items"]) == Decimal(f["subtotal"])
        reduced = Decimal(f["subtotal"]) + sum(Decimal(d["amount"]) for d in f["discounts"])
        added_tax = Decimal(f["tax"]) if f["currency"] == "USD" else 0
        assert reduced + added_tax == Decimal(f["total"]), r.name
        assert sum(Decimal(p["amount"]) for p in f["payments"]) == Decimal(f["total"])
        assert f["store"] == r.lines[0]
        assert any(f["receipt_no"] in line for line in r.lines)
        if f["member_id"]:
            assert any(line.endswith(f["member_id"]) for line in r.lines)
        if f["tendered"] is not None:
            cash = sum(Decimal(p["amount"]) for p in f["payments"] if p["type"] == "cash")
            assert Decimal(f["tendered"]) - (cash or Decimal(f["total"])) == Decimal(f["change"])


def test_crlf_changes_only_text_line_ends(receipts):
    for r in receipts:
        crlf = r.render(crlf=True)
        assert crlf.count(b"\r\n") >= len(r.lines)
        if r.images == 0:  # no bitmap bytes that could hold CR LF by chance
            assert crlf.replace(b"\r\n", b"\n") == r.stream
    stream = rf.generate_stream(receipts[:3], copies=2, crlf=True)
    assert stream.count(ESC + b"@") == 6
    assert rf.generate_stream(receipts) == b"".join(r.stream for r in receipts)


def test_text_python_escpos_cannot_print_is_refused():
    check = rf._TextCheck(Dummy(profile="TM-T88V"))
    check.text("Straße 12,50 € ñ Ó œ")
    with pytest.raises(ValueError):
        check.text("Prix ✓")
