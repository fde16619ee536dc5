"""A virtual receipt printer on TCP: records every byte it receives and answers status requests.

It parses what it receives with the firmware's parser (the same framing a real printer uses) and
answers the requests a status-aware POS waits for, like an Epson TM printer that is online with
paper: DLE EOT, GS r, GS I, GS a (automatic status back) and GS ( H (process ID).
"""
import asyncio
import time

from tilltap_fw import escpos_parser

# Replies of an online printer with paper; bit patterns as in escpos-commands.md section 10.
REPLIES = {
    "DLE EOT 1": b"\x12", "DLE EOT 2": b"\x12", "DLE EOT 3": b"\x12", "DLE EOT 4": b"\x12",
    "GS r 1": b"\x00", "GS r 2": b"\x00", "GS r 49": b"\x00", "GS r 50": b"\x00",
    "GS I 1": b"\x20", "GS I 2": b"\x02", "GS I 3": b"\x40",
    "GS a": b"\x10\x00\x00\x00",
    "GS ( H 48": b"\x37\x22\x30\x30\x30\x30\x00",
}


class VirtualPrinter:
    """Serves one job at a time on (host, port); `received` holds every byte, in order."""

    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.port = port
        self.received = bytearray()
        self.arrivals = []        # (time.monotonic(), len(received)) after every read
        self.replied = bytearray()
        self.jobs = 0
        self._server = None
        self._open = set()        # writers of jobs in progress, closed by stop()

    async def start(self):
        self._server = await asyncio.start_server(self._job, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        if self._server:
            self._server.close()
            for writer in list(self._open):
                writer.close()
            await self._server.wait_closed()

    async def _job(self, reader, writer):
        self.jobs += 1
        self._open.add(writer)
        parser = escpos_parser.Parser()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                self.received += data
                self.arrivals.append((time.monotonic(), len(self.received)))
                for event in parser.feed(data):
                    if event[0] == escpos_parser.REQUEST and event[1] in REPLIES:
                        reply = REPLIES[event[1]]
                        self.replied += reply
                        writer.write(reply)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass                  # the POS side went away, or the printer is being stopped
        finally:
            self._open.discard(writer)
            writer.close()
