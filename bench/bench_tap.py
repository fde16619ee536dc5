"""Latency the tap adds per chunk, on the host board (firmware on the MicroPython unix port).

A POS sends bursts of 64-byte chunks every 2 ms (one receipt per burst, cut at its end), with
300 ms gaps between bursts (the idle gaps where the uplink works). The virtual printer stamps
every arrival; a chunk's latency is its arrival time minus its send time. The same traffic sent
straight to the printer gives the floor. Scenarios: uplink idle (server up), server stalled
(accepts, never answers), and spool writes (every burst ends a receipt, which is spooled).
Target: p99 below 5 ms, no byte lost.
Quick mode (TILLTAP_BENCH_QUICK=1): 5 bursts per measurement (full: 30).
"""
import asyncio
import os
import sys
import tempfile
import time

from quick import size

from tilltap.accounts import devices
from tilltap.storage import database
from tilltap_host.firmware_process import FirmwareProcess
from tilltap_host.netutil import free_port
from tilltap_host.server_process import ServerProc
from tilltap_host.unixport import ROOT
from tilltap_host.virtual_printer import VirtualPrinter

sys.path.insert(0, os.path.join(ROOT, "tests", "support"))  # the tests' TCP proxy
from tcpproxy import Proxy  # noqa: E402

CHUNK = 64
BURST = 40          # chunks per receipt
BURSTS = size(30, 5)
PACE_S = 0.002
GAP_S = 0.3


def _receipt(k):
    body = b"".join(b"Item %04d-%02d ........................ %5d.99\n" % (k, i, i)
                    for i in range(BURST))
    return (body + b"\x1dV\x00")[:CHUNK * BURST]


async def _measure(port, printer):
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    sends = []
    offset = 0
    for k in range(BURSTS):
        data = _receipt(k)
        for i in range(0, len(data), CHUNK):
            piece = data[i:i + CHUNK]
            writer.write(piece)
            await writer.drain()
            offset += len(piece)
            sends.append((time.monotonic(), offset))
            await asyncio.sleep(PACE_S)
        await asyncio.sleep(GAP_S)
    deadline = time.monotonic() + 30
    while len(printer.received) < offset and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    writer.close()
    lat = []
    arrivals = printer.arrivals
    j = 0
    for sent_at, end in sends:
        while j < len(arrivals) and arrivals[j][1] < end:
            j += 1
        if j < len(arrivals):
            lat.append((arrivals[j][0] - sent_at) * 1000)
    return lat, len(printer.received) == offset


def _pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


async def scenario(name, tmp, server_mode):
    engine = database.make_engine("sqlite:///%s/tilltap.db" % tmp)
    try:
        credential = devices.add(engine, "bench-tap")
    except ValueError:
        credential = None
    server_port = free_port()
    proxy = Proxy(server_port)
    server = ServerProc("sqlite:///%s/tilltap.db" % tmp, port=server_port,
                        log_path=os.path.join(tmp, "server.log")).start()
    if server_mode == "stalled":
        proxy.blackhole()
    printer = await VirtualPrinter().start()
    direct, _ = await _measure(printer.port, printer)
    printer.received.clear()
    printer.arrivals.clear()
    tap = FirmwareProcess(tmp, printer.port, {
        "device_id": "bench-tap", "upload": {"idle_ms": 100},
        "server": {"transport": "http", "host": "127.0.0.1", "port": proxy.port,
                   "credential": credential or "", "timeout_ms": 2000}}).start()
    try:
        lat, complete = await _measure(tap.listen_port, printer)
    finally:
        tap.stop()
        server.stop()
        proxy.close()
        await printer.stop()
        engine.dispose()
    print("tap latency %-13s p50 %6.2f ms  p99 %7.2f ms  max %8.2f ms  no byte lost: %s   "
          "(direct to printer: p50 %.2f, p99 %.2f ms)  target p99 < 5 ms"
          % (name, _pct(lat, 0.5), _pct(lat, 0.99), max(lat), "yes" if complete else "NO",
             _pct(direct, 0.5), _pct(direct, 0.99)), flush=True)


async def main():
    for name, mode in (("uplink idle", "up"), ("server stalled", "stalled")):
        with tempfile.TemporaryDirectory() as tmp:
            await scenario(name, tmp, mode)
    print("(every burst ends a receipt: the figures above include its spool write)")


if __name__ == "__main__":
    asyncio.run(main())
