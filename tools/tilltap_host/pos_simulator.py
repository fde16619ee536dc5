"""A simulated POS: sends print jobs to a printer address (the tap) over TCP, like port 9100.

Status-aware POS software asks the printer for its status (DLE EOT 1) before a job and waits
for the answer; the simulator does the same, so the tap's reply path is exercised too.
"""
import asyncio

STATUS_REQUEST = b"\x10\x04\x01"


class JobRefused(ConnectionError):
    """The tap closed the connection before the job's first answer: nothing went on to the
    printer (a board short of memory refuses a job this way); the POS may send it again."""


class JobResult:
    def __init__(self):
        self.sent = 0
        self.replies = b""


async def send_job(host, port, stream, ask_status=True, timeout=10.0, chunk=777):
    """Sends one job on its own connection; returns what was sent and what came back."""
    result = JobResult()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        if ask_status:
            try:
                writer.write(STATUS_REQUEST)
                await writer.drain()
                first = await asyncio.wait_for(reader.read(1), timeout)
            except ConnectionError as e:
                raise JobRefused(str(e)) from e
            if not first:
                raise JobRefused("closed before the status answer")
            result.replies += first
            result.sent += len(STATUS_REQUEST)
        for i in range(0, len(stream), chunk):
            writer.write(stream[i:i + chunk])
            await writer.drain()
        result.sent += len(stream)
        writer.write_eof()
        while True:
            data = await asyncio.wait_for(reader.read(4096), timeout)
            if not data:
                break
            result.replies += data
    finally:
        writer.close()
    return result


async def send_jobs(host, port, streams, resend=0):
    """Sends each stream as a job of its own; returns (every byte sent, every reply received).
    resend: times a refused job (JobRefused) is sent again, as a POS spooler retries."""
    sent = bytearray()
    replies = bytearray()
    for stream in streams:
        for attempt in range(resend + 1):
            try:
                result = await send_job(host, port, stream)
                break
            except JobRefused:
                if attempt == resend:
                    raise
        sent += STATUS_REQUEST + stream
        replies += result.replies
    return bytes(sent), bytes(replies)
