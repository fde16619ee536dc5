"""Capture: receipts spooled with exactly their own raw bytes, bounded, never raising."""
from tilltap_fw.capture import END, PRINTER_FAILED, Capture

JOB = b"\x1b@Shop\nItem 1.00\n\x1dV\x00"


class ListSpool:
    def __init__(self, fail=False):
        self.records = []
        self.fail = fail

    def append(self, record):
        if self.fail:
            raise OSError(28, "ENOSPC")
        self.records.append(record)
        return len(self.records)


def _raw_of(receipt, raw):
    """An encoder storing only the raw bytes (copied: the view is valid during the call)."""
    return None if raw is None else bytes(raw)


def test_raw_bytes_split_exactly_at_each_cut_for_any_chunking():
    stream = JOB + b"\x1b@Second\n\x1dV\x01" + JOB
    for size in (1, 3, 7, 64, len(stream)):
        spool = ListSpool()
        capture = Capture(spool, _raw_of)
        for i in range(0, len(stream), size):
            capture.feed(memoryview(stream)[i:i + size])
        capture.close()
        assert spool.records == [JOB, b"\x1b@Second\n\x1dV\x01", JOB], size


def test_receipt_bigger_than_the_raw_window_is_stored_without_raw():
    big = b"\x1b@" + b"Line of a long receipt\n" * 100 + b"\x1dV\x00"
    spool = ListSpool()
    capture = Capture(spool, lambda r, raw: _raw_of(r, raw) or b"(none)", backlog=512)
    for i in range(0, len(big + JOB), 100):
        capture.feed((big + JOB)[i:i + 100])
    capture.close()
    assert spool.records == [b"(none)", JOB]
    assert capture.raw_omitted == 1


def test_spool_failure_is_counted_not_raised():
    capture = Capture(ListSpool(fail=True), _raw_of)
    capture.feed(JOB + JOB)
    capture.close()
    assert capture.store_errors == 2 and capture.receipts == 2


def test_card_numbers_are_masked_before_spooling_and_raw_bytes_withheld():
    spool = ListSpool()
    capture = Capture(spool, lambda r, raw: repr((r.lines, r.barcodes, _raw_of(r, raw))).encode())
    job = (b"\x1b@Card 4111 1111 1111 1111 approved\nTotal 9.99\n"
           b"\x1dkI\x12{B5555555555554444" + b"\x1dV\x00")
    capture.feed(job + JOB)
    capture.close()
    assert spool.records[0] == repr((["Card **** **** **** 1111 approved", "Total 9.99"],
                                     [("CODE128", "************4444")], None)).encode()
    assert spool.records[1] == repr((["Shop", "Item 1.00"], [], JOB)).encode()


def _status(receipt, raw):
    return repr((receipt.lines, receipt.status, receipt.reason)).encode()


def test_a_job_cut_inside_an_image_ends_its_receipt_incomplete_and_the_next_job_is_whole():
    image = b"\x1dv0\x00\x10\x00\x40\x00" + b"\xff" * 300   # 1024 bytes promised, 300 sent
    spool = ListSpool()
    capture = Capture(spool, _status)
    capture.feed(b"\x1b@Before the logo\n" + image)
    capture.close()
    capture.feed(JOB)
    capture.close()
    assert spool.records == [repr((["Before the logo"], "incomplete", "cut_in_payload")).encode(),
                             repr((["Shop", "Item 1.00"], "complete", None)).encode()]
    assert capture.incomplete == 1


def test_receipts_the_printer_did_not_take_are_stored_as_not_printed():
    spool = ListSpool()
    capture = Capture(spool, _status)
    capture.take(JOB)                        # printed
    capture.take(b"\x1b@Half")               # printed, then the printer failed
    capture.mark(PRINTER_FAILED)
    capture.take(b" of it\nTotal 2.00\n\x1dV\x00\x1b@Next\n")    # held, never printed
    capture.mark(END)
    capture.work()
    assert spool.records == [repr((["Shop", "Item 1.00"], "complete", None)).encode(),
                             repr((["Half of it", "Total 2.00"], "not_printed", None)).encode(),
                             repr((["Next"], "not_printed", None)).encode()]
    assert capture.not_printed == 2


def test_a_drawer_kick_after_the_cut_belongs_to_the_receipt_before_it():
    """Print, cut, open the drawer (escpos-php's example): the kick and its bytes are the first
    receipt's, not the next one's."""
    kick = b"\x1bp\x00\x19\xfa"
    spool = ListSpool()
    capture = Capture(spool, lambda r, raw: repr((r.lines, r.drawer, bytes(raw))).encode())
    capture.feed(JOB + kick + JOB)
    capture.close()
    assert spool.records == [repr((["Shop", "Item 1.00"], True, JOB + kick)).encode(),
                             repr((["Shop", "Item 1.00"], False, JOB)).encode()]


def test_capture_behind_stores_the_receipt_incomplete_and_picks_up_at_the_next_job():
    spool = ListSpool()
    capture = Capture(spool, _status, backlog=256)
    long_job = b"\x1b@" + b"A line of the first receipt\n" * 20 + b"\x1dV\x00"
    for i in range(0, len(long_job), 64):        # nothing parsed: the backlog overflows
        capture.take(long_job[i:i + 64])
    capture.work()                               # catches up: the receipt lost bytes
    capture.take(b"more of it" + b"\x1b@Second\n\x1dV\x00")    # kept from its ESC @
    capture.mark(END)
    capture.take(JOB)
    capture.mark(END)
    capture.work()
    assert len(spool.records) == 3
    assert spool.records[0].endswith(b"'incomplete', 'capture_behind')")
    assert spool.records[-2:] == [repr((["Second"], "complete", None)).encode(),
                                  repr((["Shop", "Item 1.00"], "complete", None)).encode()]
    assert capture.behind >= 1 and capture.skipped_bytes > 0


def test_after_a_gap_a_full_backlog_skips_receipts_until_capture_parsed():
    """A burst outrunning capture: receipts that start while the backlog is still full are
    skipped whole (counted), and the first to start once capture parsed is kept whole."""
    spool = ListSpool()
    capture = Capture(spool, _status, backlog=256)
    long_job = b"\x1b@" + b"A line of the first receipt\n" * 20 + b"\x1dV\x00"
    for i in range(0, len(long_job), 64):        # nothing parsed: the backlog overflows
        capture.take(long_job[i:i + 64])
    skipped = capture.skipped_bytes
    for _ in range(3):                           # still nothing parsed: no room to resume
        capture.take(b"\x1b@Lost\n\x1dV\x00")
    assert capture.skipped_bytes == skipped + 3 * 10
    capture.work()
    capture.take(b"\x1b@Kept\n\x1dV\x00")
    capture.mark(END)
    capture.work()
    assert [r for r in spool.records if b"Lost" in r] == []
    assert spool.records[0].endswith(b"'incomplete', 'capture_behind')")
    assert spool.records[-1] == repr((["Kept"], "complete", None)).encode()


def test_request_counts_are_trusted_only_for_a_stream_parsed_whole():
    """A job's answers are awaited by count only when capture saw the whole job: after a
    restart mid-job or a gap the tap falls back to waiting for the printer to go quiet."""
    status_request = b"\x10\x04\x01"
    capture = Capture(ListSpool(), _status)
    capture.take(b"\x1b@" + status_request)
    capture.work()
    assert capture.stream_known and capture.stream_requests == 1
    capture.reset(resync=True)                   # capture failed mid-job and restarted
    capture.take(b"rest of the job" + status_request)
    capture.work()
    assert not capture.stream_known
    capture.mark(END)
    capture.work()
    assert capture.stream_known and capture.stream_requests == 0
    behind = Capture(ListSpool(), _status, backlog=256)
    for _ in range(8):                           # nothing parsed: the backlog overflows
        behind.take(b"\x1b@" + b"x" * 60 + status_request)
    behind.work()
    assert not behind.stream_known
    behind.mark(END)
    behind.work()
    assert behind.stream_known


def test_a_long_receipt_goes_to_flash_as_it_prints_and_is_stored_whole():
    """Upload modes full/text: a receipt's lines past a few parts go to a scratch file on the
    spool while it prints, so its heap stays flat; the record stored is the same as one built
    on the heap alone, and the scratch file is gone once it is stored."""
    import json
    import os

    import fwtest

    from tilltap_fw import config, protocol
    from tilltap_fw.escpos_parser import decode_text
    from tilltap_fw.record import Records
    from tilltap_fw.spool import Spool

    cfg = config.defaults()
    # every other line is not ASCII: on the board (no codecs) its bytes are kept undecoded,
    # in the record's raw_lines, which go to flash as the lines do
    job = b"\x1b@" + b"".join((b"Line %d of a long report 12.34\n" if k % 2 else
                               b"Caf\xe9 %d cr\xe8me 2.50\n") % k for k in range(1500)) + \
        b"\x1dV\x00"
    stored = []
    codecs = decode_text(b"\xe9", "cp437") is not None
    d = fwtest.tmpdir("capture")
    try:
        for spill in (True, False):
            spool = Spool(d + "/%s" % spill, compress=False)
            scratches = []

            def new_scratch():
                scratches.append(spool.scratch())
                return scratches[-1]

            records = Records("dev", 1, cfg["upload"], protocol.printer_context(
                cfg["printer"], cfg["split"]), lambda: True, 0,
                new_scratch if spill else None)
            capture = Capture(spool, records.encode, new_receipt=records.new_receipt)
            for k in range(0, len(job), 512):
                capture.feed(job[k:k + 512])
            capture.mark(END)
            capture.work()
            assert capture.store_errors == 0 and len(spool.pending(2)) == 1
            assert len(scratches) == (0 if not spill else 1 if codecs else 2)
            assert os.listdir(d + "/%s/tmp" % spill) == []
            rec = json.loads(bytes(protocol.joined(spool.pending(1)[0][1])))
            rec.pop("captured_at")
            stored.append(rec)
        assert stored[0] == stored[1]
        assert stored[0]["lines"][1499] == "Line 1499 of a long report 12.34"
        assert len(stored[0]["lines"]) == 1500
        assert len(stored[0].get("raw_lines", [])) == (0 if codecs else 750)
        assert stored[0].get("status", "complete") == "complete"
    finally:
        fwtest.rmtree(d)
