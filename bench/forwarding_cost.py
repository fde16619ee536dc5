"""The tap's forwarding loop over a stream held in memory, capture off or on (runs on MicroPython
and CPython), for an instruction counter (callgrind): what capture adds per byte forwarded,
with no socket, scheduler or machine load in the figure.

Usage: <python> bench/forwarding_cost.py FILE BYTES POLICY
The POS delivers FILE (repeated to about BYTES) in whole chunks of the tap's size as fast as
the tap reads; the printer takes every byte at once. So every step moves bytes and capture gets
no quiet step:
POLICY "off" (no capture), "forwarding_first" (capture copies the first backlog's worth, then
skips, as in a burst at LAN speed) or "keep_pace" (capture parses once half the backlog waits).
Prints the bytes forwarded and what capture counted.
"""
import sys

from tilltap_fw.capture import Capture
from tilltap_fw.tap import Tap, new_buffers


class MemoryPos:
    """A POS port that has the next chunk of the stream ready at every read; the stream is cut
    to whole chunks, whose views are made once (a read allocates nothing, as a socket's)."""

    def __init__(self, data, total, chunk):
        mv = memoryview(data)
        self.views = [mv[i:i + chunk] for i in range(0, len(data) - chunk + 1, chunk)]
        self.left = total // chunk
        self.at = 0

    def readinto(self, buf):
        if self.left <= 0:
            return None                   # the POS closed its side
        view = self.views[self.at]
        buf[:len(view)] = view
        self.at = (self.at + 1) % len(self.views)
        self.left -= 1
        return len(view)

    def write(self, buf, start, n):
        return n


class Sink:
    """A printer that takes every byte at once."""

    def readinto(self, buf):
        return 0

    def write(self, buf, start, n):
        return n


class CountingSpool:
    def __init__(self):
        self.records = 0

    def append(self, record):
        self.records += 1
        return self.records


def forward(data, total, policy):
    """Forwards `total` bytes of data through a Tap; returns (bytes forwarded, capture)."""
    capture = None
    if policy != "off":
        capture = Capture(CountingSpool(), lambda receipt, raw: b"{}",
                          keep_pace=policy == "keep_pace")
    buffers = new_buffers()
    tap = Tap(MemoryPos(data, total, len(buffers[0])), Sink(), capture=capture, buffers=buffers)
    while not tap.down.eof:
        tap.step()
    tap.count_skipped()             # what the tap counted for capture while a burst outran it
    return tap.down.bytes_out, capture


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    forwarded, capture = forward(data, int(sys.argv[2]), sys.argv[3])
    line = "forwarded=%d" % forwarded
    if capture is not None:
        line += " receipts=%d skipped=%d behind=%d" % (capture.receipts, capture.skipped_bytes,
                                                       capture.behind)
    print(line)


if __name__ == "__main__":
    main()
