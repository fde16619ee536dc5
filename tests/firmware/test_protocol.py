"""firmware/protocol.py: what the board builds is exactly what the server accepts (both
interpreters), and what the server refuses is refused with a reason."""
import json
from binascii import a2b_base64

from tilltap_fw import protocol, protocol_check
from tilltap_fw.fields_mode import Reader, receipt_fields
from tilltap_fw.receipt import Receipt


def _receipt():
    r = Receipt()
    r.lines = ["SHOP", None, "TOTAL 7.00"]
    r.raw_lines = {1: (("cp437", 0, b"\x80\x81"), ("cp437", 2, b"\xe1"))}
    r.barcodes = [("EAN13", "4006381333931")]
    r.codes2d = [("QR", "https://x.example/r/1")]
    r.images = [("raster", 384, 80, 3840)]
    r.cut = "full"
    r.end = "cut"
    return r


def _record(seq=5, **kw):
    rec = protocol.record_from_receipt(_receipt(), "a1b2c3d4e5f6", 3, 1767225600000, True, **kw)
    if seq is not None:
        rec["seq"] = seq
    return rec


def test_built_record_is_valid_and_round_trips():
    raw = b"\x1b@HELLO\n\x1dV\x00"
    rec = _record(raw=raw)
    assert protocol_check.validate_record(rec, "a1b2c3d4e5f6", 1767225600000) is None
    back = json.loads(json.dumps(rec))
    assert back["lines"] == ["SHOP", None, "TOTAL 7.00"]
    assert back["raw_lines"] == [[1, [["cp437", 0, "gIE="], ["cp437", 2, "4Q=="]]]]
    assert protocol_check.unb64(back["raw"]["data"]) == raw
    assert back["raw"]["encoding"] == "identity" and back["raw"]["size"] == len(raw)
    assert back["images"] == [{"kind": "raster", "width": 384, "height": 80, "size": 3840}]


def test_batch_splices_seq_into_stored_records():
    bodies = [protocol.encode_record(_record(seq=None)) for _ in range(3)]
    parts = protocol.batch_parts("a1b2c3d4e5f6", [(7, [bodies[0]]), (8, [b"{", bodies[1][1:]]),
                                                  (9, [bytearray(bodies[2][:9]),
                                                       bodies[2][9:]])])
    batch = protocol_check.parse_batch(bytes(protocol.joined(parts)), "a1b2c3d4e5f6")
    assert [r["seq"] for r in batch["records"]] == [7, 8, 9]
    for rec in batch["records"]:
        assert protocol_check.validate_record(rec, "a1b2c3d4e5f6") is None


def test_non_ascii_text_survives_the_batch():
    r = _receipt()
    r.lines = ["Käse 2,50 €", "小计"]
    r.raw_lines = {}
    body = protocol.encode_record(
        protocol.record_from_receipt(r, "dev-1", 0, 1234, False))
    batch = protocol_check.parse_batch(bytes(protocol.joined(protocol.batch_parts(
        "dev-1", [(0, [body])]))))
    assert batch["records"][0]["lines"] == ["Käse 2,50 €", "小计"]


def test_envelope_errors_have_reasons():
    cases = [
        (b"not json", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"v": 99, "device": "d", "records": []}', "unknown version"),
        (b'{"v": 1, "device": "D/+", "records": []}', "bad device"),
        (b'{"v": 1, "device": "d", "records": {}}', "records must be a list"),
        (b'{"v": 1, "device": "other", "records": []}', "does not match"),
        (b" " * (protocol.MAX_BATCH_BYTES + 1), "larger than"),
    ]
    for data, reason in cases:
        try:
            protocol_check.parse_batch(data, "d" if b"other" in data else None)
        except protocol_check.ProtocolError as e:
            assert reason in str(e), (data[:40], str(e))
        else:
            raise AssertionError("accepted %r" % data[:40])


def test_record_errors_have_reasons():
    now = 1767225600000

    def broken(**changes):
        rec = _record()
        for k, v in changes.items():
            if v is _DELETE:
                del rec[k]
            else:
                rec[k] = v
        return protocol_check.validate_record(rec, "a1b2c3d4e5f6", now)

    assert "unknown version" in broken(v=2)
    assert "missing field 'seq'" in broken(seq=_DELETE)
    assert "missing field 'lines'" in broken(lines=_DELETE)
    assert "unknown field" in broken(extra=1)
    assert "seq must be" in broken(seq=-1)
    assert "seq must be" in broken(seq=True)
    assert "seq must be" in broken(seq=2 ** 32)
    assert "another device" in broken(device="ffff")
    assert "future" in broken(captured_at=now + protocol.MAX_FUTURE_SKEW_MS + 1)
    assert broken(captured_at=now + protocol.MAX_FUTURE_SKEW_MS) is None
    # an unsynced clock is uptime, never "in the future"
    assert broken(captured_at=now * 10, time_synced=False) is None
    assert "lines" in broken(lines=["ok", 3])
    assert "barcodes" in broken(barcodes=[["EAN13"]])
    assert "images" in broken(images=[{"kind": "raster"}])
    assert "raw_lines" in broken(raw_lines=[[9, []]])
    assert "raw must be" in broken(raw={"encoding": "gzip", "size": 1, "data": ""})
    assert "booleans" in broken(drawer=1)
    assert "JSON object" in protocol_check.validate_record([1])


_DELETE = object()


def test_integers_are_checked_against_the_storage_ranges():
    """The server stores boot in a 32-bit column and captured_at in a 64-bit one: validation
    refuses what would fail the commit, and accepts the edge values."""
    def check(**changes):
        rec = _record()
        rec.update(changes)
        return protocol_check.validate_record(rec, "a1b2c3d4e5f6", None)

    assert check(boot=protocol.MAX_BOOT) is None
    assert "boot must be" in check(boot=protocol.MAX_BOOT + 1)
    assert "boot must be" in check(boot=-1)
    assert check(captured_at=protocol.MAX_CAPTURED_AT, time_synced=False) is None
    assert "captured_at must be" in check(captured_at=protocol.MAX_CAPTURED_AT + 1)
    assert "raw must be" in check(raw={"encoding": "identity", "data": "",
                                       "size": protocol.MAX_RAW_BYTES + 1})
    assert protocol.MAX_BOOT < 2 ** 31 and protocol.MAX_CAPTURED_AT < 2 ** 63


def test_base64_is_read_strictly_and_the_boards_own_is_accepted():
    """Garbage in a base64 member is refused, not read as a few bytes or none; what the board
    writes (record_parts: raw bytes in 384-byte pieces) reads back whole."""
    raw = bytes(range(256)) * 5
    parts = protocol.record_parts(_record(), raw=memoryview(raw))
    rec = json.loads(bytes(protocol.joined(parts)))
    assert protocol_check.unb64(rec["raw"]["data"]) == raw
    assert protocol_check.unb64("") == b"" and protocol_check.unb64("QUJD") == b"ABC"
    for bad in ("!!!garbage", "QUJD!", "QUJ", "QU JD", "QUJD\n", "Q===", "\u00e9AAA"):
        try:
            protocol_check.unb64(bad)
        except protocol_check.ProtocolError:
            continue
        raise AssertionError("accepted %r" % bad)


def test_ack_encoding():
    data = protocol_check.encode_ack([3, 4], [(5, "lines must be a list"), (None, "bad")], 7)
    assert protocol.parse_ack(data) == ([3, 4], [5], 7)
    assert protocol.parse_ack(b'{"acked": [1, "x", true, 2]}') == ([1, 2], [], None)
    for bad in (b"", b"{}", b'{"acked": 1}', b"\xff", b"[1]"):
        assert protocol.parse_ack(bad) is None
    # an HTTP error body naming refused records, and the answer to telemetry
    assert protocol.parse_answer(b'{"error": "x", "rejected": [{"seq": 9, "error": "y"}]}') \
        == ([], [9], None)
    assert protocol.parse_answer(b'{"ok": true, "retry_refused": 3}') == ([], [], 3)
    assert protocol.parse_answer(b'{"ok": true, "retry_refused": true}') == ([], [], None)


def test_topics_and_device_ids():
    assert protocol.receipts_topic("ab") == "tilltap/ab/receipts"
    assert protocol.ack_topic("ab") == "tilltap/ab/ack"
    assert protocol_check.shared_filter("receipts") == "$share/tilltap-ingest/tilltap/+/receipts"
    assert protocol_check.device_from_topic("tilltap/ab/telemetry") == ("ab", "telemetry")
    assert protocol_check.device_from_topic("tilltap/a+b/receipts") == (None, None)
    assert protocol_check.device_from_topic("other/ab/receipts") == (None, None)
    assert protocol.device_id_from_uid(b"\xa1\xb2\x00\x0f") == "a1b2000f"
    for bad in ("", "A", "a/b", "a#", "x" * 65, None, 5):
        assert not protocol_check.valid_device_id(bad)


def test_raw_and_image_policy():
    r = _receipt()
    assert not protocol.want_raw(r, 100, 1000, images=False)  # has an image, images off
    assert protocol.want_raw(r, 100, 1000, images=True)
    assert not protocol.want_raw(r, 2000, 1000, images=True)  # too large
    r.images = [("raster", 8, 1, 1, b"\xff")]
    rec = protocol.record_from_receipt(r, "d", 0, 0, False, images=True, seq=0)
    assert rec["images"][0]["data"] == "/w=="
    rec = protocol.record_from_receipt(r, "d", 0, 0, False, images=False, seq=0)
    assert "data" not in rec["images"][0]


def test_telemetry_round_trip():
    stats = {"count": 2, "bytes": 900, "oldest": 4, "newest": 5, "free": 10000, "dropped": 3,
             "dropped_by": {"full_oldest": 3}, "dropped_ranges": [(1, 3)]}
    data = protocol.telemetry("d", 2, 5000, 40000, stats, 120, {"paper": "ok"}, "0.1.0",
                              {"acked": 4})
    obj = protocol_check.parse_telemetry(data, "d")
    assert obj["spool"]["count"] == 2 and obj["dropped_ranges"] == [[1, 3]]
    for bad in (b"{", b'{"v": 1, "device": "d", "x": 1}', b'{"v": 2, "device": "d"}'):
        try:
            protocol_check.parse_telemetry(bad)
        except protocol_check.ProtocolError:
            continue
        raise AssertionError(bad)


def test_fields_record_carries_only_the_extracted_data():
    r = _receipt()
    found = receipt_fields(r)
    assert found["total"] == "7.00"
    rec = protocol.record_from_fields(r, found, "a1b2c3d4e5f6", 3, 1767225600000, True)
    rec["seq"] = 9
    assert protocol_check.validate_record(rec) is None
    assert rec["lines"] == rec["barcodes"] == rec["codes2d"] == rec["images"] == []
    assert "raw" not in rec and "raw_lines" not in rec
    back = json.loads(protocol.encode_record(rec))
    assert back["fields"] == found and back["end"] == "cut"
    item = {"name": "Tea", "qty": "2", "unit_price": "1.50", "amount": "3.00"}
    for bad, reason in (({}, "exactly the keys"), (dict(found, total=7), "fields.total"),
                        (dict(found, total="1e-2000"), "fields.total"),
                        (dict(found, subtotal="NaN"), "fields.subtotal"),
                        (dict(found, datetime="2026-03-01T10:00:00+02:00"), "fields.datetime"),
                        (dict(found, member_id="9" * 201), "member_id"),
                        (dict(found, payments=[{"type": "cash"}]), "fields.payments"),
                        (dict(found, payments=[{"type": "cash", "amount": "1,50"}]),
                         "fields.payments"),
                        (dict(found, items=[{"name": "x"}]), "fields.items"),
                        (dict(found, items=[dict(item, qty="2 kg")]), "fields.items")):
        assert reason in protocol_check.validate_record(dict(rec, fields=bad))
    good = dict(found, datetime="2026-03-01", total="-12.345", items=[item])
    assert protocol_check.validate_record(dict(rec, fields=good)) is None


def test_fields_records_of_long_lines_are_never_refused():
    """A name or number longer than the server takes is cut on the board, not refused there."""
    r = Receipt()
    r.lines = ["Receipt no. " + "7" * 300, "Tea " * 80 + "  3.00", "TOTAL   3.00"]
    found = receipt_fields(r)
    assert [len(found["receipt_no"]), len(found["items"][0]["name"])] == \
        [protocol.MAX_FIELD_TEXT] * 2
    rec = protocol.record_from_fields(r, found, "a1b2c3d4e5f6", 3, 1767225600000, True)
    rec["seq"] = 9
    assert protocol_check.validate_record(rec) is None


def test_undecoded_lines_are_read_with_the_board_tables():
    r = Receipt()
    r.lines = ["Sous-total 53,10", None, None]
    r.raw_lines = {1: (("cp858", 0, b"TOTAL TTC  53,10 \xd5"),),
                   2: (("cp858", 0, b"Esp\x8aces"), ("cp437", 0, b"  53,10"))}
    reader = Reader()
    assert reader.line(r.raw_lines[1]) == "TOTAL TTC  53,10 \u20ac"
    assert reader.line(r.raw_lines[2]) == "Esp\u00e8ces  53,10"
    found = receipt_fields(r)
    assert found["total"] == "53.10" and found["currency"] == "EUR"
    assert found["payments"] == [{"type": "cash", "amount": "53.10"}]


def test_cjk_keywords_are_found_in_bytes_and_names_sent_as_bytes():
    """GB18030 without a codec: the labels are read, an item's name travels as its bytes."""
    name = b"\xce\xac\xb4\xef\xb3\xe9\xd6\xbd"             # 维达抽纸
    r = Receipt()
    r.lines = [None, None, None]
    r.raw_lines = {0: (("gb18030", 0, name + b" 2 x 6.50   13.00"),),
                   1: (("gb18030", 0, b"\xba\xcf\xbc\xc6 13.00"),),          # 合计
                   2: (("gb18030", 0, b"\xcf\xd6\xbd\xf0 13.00"),)}         # 现金
    found = receipt_fields(r)
    assert found["total"] == "13.00"
    assert found["payments"] == [{"type": "cash", "amount": "13.00"}]
    (item,) = found["items"]
    assert item["name"] is None and item["amount"] == "13.00" and item["qty"] == "2"
    assert [[s[0], s[1], a2b_base64(s[2])] for s in item["name_raw"]] == [["gb18030", 0, name]]
    rec = protocol.record_from_fields(r, found, "d", 0, 0, False)
    rec["seq"] = 1
    assert protocol_check.validate_record(rec) is None


def test_records_carry_the_printer_context_they_were_parsed_with():
    split = {"idle_ms": 1500, "on_init": True, "tear_off": "auto", "tear_lines": 5}
    context = protocol.printer_context(
        {"profile": "epson", "codepage_map": "bixolon", "encoding": "gb18030", "model": ""},
        split)
    assert protocol.parser_options(context) == {
        "profile": "epson", "codepage_map": "bixolon", "encoding": "gb18030",
        "split_on_init": True, "model": None, "tear_lines": 0}
    assert protocol.parser_options(None) == {}
    rec = protocol.record_from_receipt(_receipt(), "d", 0, 0, False, seq=1, printer=context)
    assert protocol_check.validate_record(rec) is None
    assert json.loads(protocol.encode_record(rec))["printer"] == context
    for bad in (dict(context, profile="zebra"), dict(context, split={}),
                dict(context, extra=1), dict(context, model="TM-NONE"),
                dict(context, split=dict(context["split"], tear_lines=-1)), "epson"):
        assert "printer" in protocol_check.validate_record(dict(rec, printer=bad))
    # records of firmware older than the model and the tear-off split are still valid
    old = {"profile": "epson", "codepage_map": "epson", "encoding": None,
           "split": {"idle_ms": 3000, "on_init": False}}
    assert protocol_check.validate_record(dict(rec, printer=old)) is None
    assert protocol.parser_options(old)["tear_lines"] == 0


def test_printer_model_resolves_tear_off_by_its_cutter():
    def tear_lines(model, tear_off="auto"):
        printer = {"profile": "epson", "codepage_map": "epson", "encoding": "", "model": model}
        split = {"idle_ms": 3000, "on_init": False, "tear_off": tear_off, "tear_lines": 6}
        context = protocol.printer_context(printer, split)
        assert context["model"] == (model or None)
        return context["split"]["tear_lines"]
    assert tear_lines("POS-5890") == 6          # a 58 mm printer without a cutter
    assert tear_lines("TM-T88V") == 0           # it cuts
    assert tear_lines("") == 0                  # no model: no split unless asked
    assert tear_lines("", "on") == 6
    assert tear_lines("POS-5890", "off") == 0
