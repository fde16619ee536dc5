"""RecordBuilder when the heap has no room for one more part (CPython: a part that refuses to
grow stands in for MicroPython's MemoryError on a fragmented heap)."""
import json
import os

from tilltap_fw import protocol
from tilltap_fw.record import RecordBuilder
from tilltap_fw.spool import Spool


class _FullHeap(bytearray):
    """A record part that cannot grow the first `times` times."""

    times = 1

    def __iadd__(self, other):
        if _FullHeap.times:
            _FullHeap.times -= 1
            raise MemoryError("memory allocation failed, allocating 296 bytes")
        return bytearray.__iadd__(self, other)


def _record(builder, spool):
    seq = spool.append(builder.record_parts("dev", 1, 0, True))
    builder.close()
    [(got, parts)] = spool.pending(1)
    spool.ack([got])
    assert got == seq
    return json.loads(bytes(protocol.joined(parts)))


def test_a_line_that_finds_no_heap_sends_the_lines_so_far_to_flash_and_is_kept(tmp_path):
    spool = Spool(str(tmp_path / "spool"), compress=False)
    lines = ["Line %d of the receipt 1.00" % k for k in range(12)]
    builder = RecordBuilder(spool.scratch)
    for line in lines[:5]:
        builder.add_line(line, None)
    _FullHeap.times = 1
    builder._lines[-1] = _FullHeap(builder._lines[-1])
    for line in lines[5:]:
        builder.add_line(line, None)
    assert _FullHeap.times == 0                         # the line did meet a full heap
    rec = _record(builder, spool)
    assert rec["lines"] == lines and rec.get("status", "complete") == "complete"
    assert os.listdir(str(tmp_path / "spool" / "tmp")) == []


def test_without_a_spool_to_spill_to_the_memory_error_reaches_capture(tmp_path):
    builder = RecordBuilder(None)
    builder.add_line("first", None)
    _FullHeap.times = 1
    builder._lines[-1] = _FullHeap(builder._lines[-1])
    try:
        builder.add_line("second", None)
    except MemoryError:
        return
    raise AssertionError("the MemoryError was swallowed")


def test_add_item_is_all_or_nothing():
    parts = [bytearray(b'"lines":[')]
    protocol.add_item(parts, 0, b'"a"')
    _FullHeap.times = 1
    parts[-1] = _FullHeap(parts[-1])
    try:
        protocol.add_item(parts, 1, b'"b"')
    except MemoryError:
        pass
    protocol.add_item(parts, 1, b'"b"')
    assert b"".join(parts) == b'"lines":["a","b"'


def test_an_undecoded_line_that_finds_no_heap_is_kept_too(tmp_path):
    spool = Spool(str(tmp_path / "spool"), compress=False)
    builder = RecordBuilder(spool.scratch)
    spans = [("cp437", 0, b"Caf\xe9 %d" % k) for k in range(4)]
    for k in range(3):
        builder.add_line(None, [spans[k]])
        builder.add_line("text %d" % k, None)
    _FullHeap.times = 1
    builder._raw_lines[-1] = _FullHeap(builder._raw_lines[-1])
    builder.add_line(None, [spans[3]])
    assert _FullHeap.times == 0
    rec = _record(builder, spool)
    assert rec["lines"] == [None, "text 0", None, "text 1", None, "text 2", None]
    assert [line for line, _ in rec["raw_lines"]] == [0, 2, 4, 6]
    assert os.listdir(str(tmp_path / "spool" / "tmp")) == []
