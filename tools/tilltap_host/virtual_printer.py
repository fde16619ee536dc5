"""A virtual receipt printer on TCP: records every byte it receives and answers status requests.

It parses what it receives with the firmware's parser (the same framing a real printer uses) and
answers the requests a status-aware POS waits for, like an Epson TM printer that is online with
paper: DLE EOT, GS r, GS I, GS a (automatic status back) and GS ( H (process ID). As a real
network printer it closes its side when the client has sent its job (end of stream).

It takes bytes as fast as they come, or (bytes_per_s) as a real printer does: at a printer's
pace behind a small receive buffer, one connection at a time (the next waits until the job
before is read to its end); the tap then waits on it, as it does in a shop.

It fails on demand, one Fault per job (`printer.faults.append(Fault(...))`): close or reset
after n bytes of the job, answer late, hold the connection open after the job, or take
nothing at all (a black hole); `stop()` then `start()` makes it refuse connections.
"""
import asyncio
import socket
import struct
import time
from dataclasses import dataclass

from tilltap_fw import escpos_parser

_PACED_RCVBUF = 16384    # a paced printer's receive buffer, bytes

# Replies of an online printer with paper; bit patterns as in escpos-commands.md section 10.
REPLIES = {
    "DLE EOT 1": b"\x12", "DLE EOT 2": b"\x12", "DLE EOT 3": b"\x12", "DLE EOT 4": b"\x12",
    "GS r 1": b"\x00", "GS r 2": b"\x00", "GS r 49": b"\x00", "GS r 50": b"\x00",
    "GS I 1": b"\x20", "GS I 2": b"\x02", "GS I 3": b"\x40",
    "GS a": b"\x10\x00\x00\x00",
    "GS ( H 48": b"\x37\x22\x30\x30\x30\x30\x00",
}


@dataclass
class Fault:
    """What goes wrong in one job. close_after / reset_after: after that many of the job's
    bytes the printer closes (FIN) or resets (RST) the connection; reply_delay: seconds before
    each answer; blackhole: accept, then read nothing; read_delay: seconds between reads (a
    slow printer)."""

    close_after: int | None = None
    reset_after: int | None = None
    reply_delay: float = 0.0
    blackhole: bool = False
    read_delay: float = 0.0


class VirtualPrinter:
    """Serves connections on (host, port); `received` holds every byte, in order, and `jobs`
    each connection's bytes."""

    def __init__(self, host="127.0.0.1", port=0, rcvbuf=None, answers=True, bytes_per_s=None):
        self.host = host
        self.port = port
        self.bytes_per_s = bytes_per_s
        if bytes_per_s and rcvbuf is None:
            rcvbuf = _PACED_RCVBUF
        self.rcvbuf = rcvbuf      # bytes its TCP receive buffer holds (a printer's is small)
        self.answers = answers    # False: a sink that answers nothing (throughput benches)
        self.received = bytearray()
        self.arrivals = []        # (time.monotonic(), len(received)) after every read
        self.replied = bytearray()
        self.jobs = []            # each connection's bytes
        self.ended = 0            # connections over (the client's or the printer's doing)
        self.faults = []          # the next jobs' faults (Fault), one per job
        self._server = None
        self._open = set()        # writers of jobs in progress, closed by stop()
        self._tasks = set()       # their tasks, cancelled by stop()
        self._one_job = asyncio.Lock() if bytes_per_s else None

    async def start(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:           # set before listen(): accepted sockets inherit it
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        listener.bind((self.host, self.port))
        self._server = await asyncio.start_server(self._job, sock=listener)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        if self._server:
            self._server.close()
            for writer in list(self._open):
                writer.close()
            for task in list(self._tasks):
                task.cancel()
            await self._server.wait_closed()

    async def _job(self, reader, writer):
        if self._one_job is None:
            await self._serve(reader, writer)
            return
        async with self._one_job:
            await self._serve(reader, writer)

    async def _serve(self, reader, writer):
        job = bytearray()
        self.jobs.append(job)
        fault = self.faults.pop(0) if self.faults else Fault()
        self._open.add(writer)
        task = asyncio.current_task()
        self._tasks.add(task)
        parser = escpos_parser.Parser()
        started = time.monotonic()
        try:
            if fault.blackhole:
                await asyncio.sleep(3600)      # stopped (cancelled) by stop()
            while True:
                if fault.read_delay:
                    await asyncio.sleep(fault.read_delay)
                data = await reader.read(4096 if not fault.read_delay else 64)
                if not data:
                    break
                limit = fault.close_after if fault.close_after is not None else \
                    fault.reset_after
                if limit is not None and len(job) + len(data) >= limit:
                    data = data[:limit - len(job)]
                    self._keep(job, data)
                    if fault.reset_after is not None:
                        _reset(writer)
                    return
                self._keep(job, data)
                if self.bytes_per_s:      # printing takes time: the next read waits for it
                    await asyncio.sleep(max(0.0, started + len(job) / self.bytes_per_s
                                            - time.monotonic()))
                for event in (parser.feed(data) if self.answers else ()):
                    if event[0] == escpos_parser.REQUEST and event[1] in REPLIES:
                        if fault.reply_delay:
                            await asyncio.sleep(fault.reply_delay)
                        reply = REPLIES[event[1]]
                        self.replied += reply
                        writer.write(reply)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass                  # the POS side went away, or the printer is being stopped
        finally:
            self._open.discard(writer)
            self._tasks.discard(task)
            writer.close()
            self.ended += 1

    async def read_all(self, total, stalled_s=5.0):
        """Waits until `total` bytes were received: a POS is done once the tap took its job,
        while the printer may still be reading what the network holds for it. Returns early
        when nothing arrives for stalled_s (bytes lost: a byte-exact check then says so)."""
        last, since = -1, time.monotonic()
        while len(self.received) < total:
            if len(self.received) != last:
                last, since = len(self.received), time.monotonic()
            elif time.monotonic() - since > stalled_s:
                return
            await asyncio.sleep(0.02)

    def _keep(self, job, data):
        job += data
        self.received += data
        self.arrivals.append((time.monotonic(), len(self.received)))


def _reset(writer):
    """Close with RST, as a printer that loses power or crashes does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
