"""The real firmware on the MicroPython unix port (host board): byte-exact pass-through."""
import asyncio

import pytest
from corpus import corpus_files, need_corpus

from tilltap_host.firmware_process import FirmwareProcess
from tilltap_host.pos_simulator import send_jobs
from tilltap_host.receipt_factory import generate_receipts
from tilltap_host.virtual_printer import VirtualPrinter


async def _replay(tmp_path, streams, config=None, heapsize=None, receipts=1, rom=False,
                  resend=0):
    printer = await VirtualPrinter().start()
    tap = FirmwareProcess(str(tmp_path), printer.port, config, heapsize=heapsize,
                          rom=rom).start()
    try:
        sent, replies = await send_jobs("127.0.0.1", tap.listen_port, streams, resend)
        for _ in range(100):
            status = tap.status()
            if status.get("receipts", 0) >= receipts and status.get("printer_bytes") == len(sent):
                break
            await asyncio.sleep(0.1)
        await printer.read_all(len(sent))
        return sent, replies, printer, tap.status(), tap.log()
    finally:
        tap.stop()
        await printer.stop()


def test_every_corpus_stream_passes_byte_exact_both_ways(tmp_path):
    need_corpus()
    streams = [open(p, "rb").read() for p in corpus_files()]
    sent, replies, printer, status, log = asyncio.run(_replay(tmp_path, streams))
    assert bytes(printer.received) == sent, log
    assert replies == bytes(printer.replied), log
    assert len(replies) >= len(streams)          # every job's status request was answered
    assert status["pos_bytes"] == status["printer_bytes"] == len(sent)
    assert status["capture_errors"] == 0
    assert status["problems"] == ["no uplink"]          # no server configured: nothing else
    assert [e for e in status["errors"] if not e.startswith("uplink disabled")] == []
    assert status["health"] == "degraded"          # no server configured: nothing delivers


@pytest.mark.parametrize("heapsize,rom", [("184k", False), ("128k", True)])
def test_generated_receipts_captured_in_a_small_heap(tmp_path, heapsize, rom):
    """.mpy files on the filesystem (code on the heap), and the ROMFS image a production
    board boots from (code in flash) with the target's 128k beside it."""
    receipts = generate_receipts(seed=5, count=24)
    streams = [r.stream for r in receipts]
    sent, _replies, printer, status, log = asyncio.run(
        _replay(tmp_path, streams, heapsize=heapsize, receipts=len(receipts), rom=rom))
    assert bytes(printer.received) == sent, log
    assert status.get("receipts") == len(receipts), (status["errors"], status.get("problems"))
    assert status["spool"]["count"] == len(receipts)
    assert status["capture_errors"] == 0 and "MemoryError" not in log


def test_forwarding_stays_byte_exact_when_capture_runs_out_of_memory(tmp_path):
    """With the firmware as .mpy files the code takes ~135 KB of the unix port's 64-bit heap:
    at 176k capture of the corpus runs out of memory (parser, receipt assembly, record
    encoding, or capture cannot be built at all); every time is counted, and pass-through in
    both directions stays byte-exact. A job whose ports do not fit even then is refused before
    a byte moves (the POS sees a reset and sends it again, as a spooler does): counted, and
    never a job cut short."""
    need_corpus()
    streams = [open(p, "rb").read() for p in corpus_files()]
    sent, replies, printer, status, log = asyncio.run(
        _replay(tmp_path, streams, heapsize="176k", receipts=0, resend=3))
    assert bytes(printer.received) == sent, log
    assert replies == bytes(printer.replied), log
    assert status["pos_bytes"] == status["printer_bytes"] == len(sent)
    assert status["capture_errors"] + status.get("store_errors", 0) > 0 or \
        "MemoryError" in repr(status["errors"]), status                    # the path ran
    assert status["jobs"] == len(streams) + status["jobs_refused"]
