"""Capture: receipts spooled with exactly their own raw bytes, bounded, never raising."""
from tilltap_fw.capture import Capture

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
        assert spool.records == [JOB, b"\x1b@Second\n\x1dV\x01", JOB], size


def test_receipt_bigger_than_the_raw_window_is_stored_without_raw():
    big = b"\x1b@" + b"Line of a long receipt\n" * 100 + b"\x1dV\x00"
    spool = ListSpool()
    capture = Capture(spool, lambda r, raw: _raw_of(r, raw) or b"(none)", raw_max=512)
    for i in range(0, len(big + JOB), 100):
        capture.feed((big + JOB)[i:i + 100])
    assert spool.records == [b"(none)", JOB]
    assert capture.raw_omitted == 1


def test_spool_failure_is_counted_not_raised():
    capture = Capture(ListSpool(fail=True), _raw_of)
    capture.feed(JOB + JOB)
    assert capture.store_errors == 2 and capture.receipts == 2


def test_card_numbers_are_masked_before_spooling_and_raw_bytes_withheld():
    spool = ListSpool()
    capture = Capture(spool, lambda r, raw: repr((r.lines, r.barcodes, _raw_of(r, raw))).encode())
    job = (b"\x1b@Card 4111 1111 1111 1111 approved\nTotal 9.99\n"
           b"\x1dkI\x12{B5555555555554444" + b"\x1dV\x00")
    capture.feed(job + JOB)
    assert spool.records[0] == repr((["Card **** **** **** 1111 approved", "Total 9.99"],
                                     [("CODE128", "************4444")], None)).encode()
    assert spool.records[1] == repr((["Shop", "Item 1.00"], [], JOB)).encode()
