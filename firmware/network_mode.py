"""Network mode (and the host board): POS jobs arrive on TCP port 9100, go on to the printer's IP.

Each POS connection is one job: the tap opens a connection to the printer, forwards both ways
until the POS closes, lets the printer answer, closes both and ends the receipt in progress.
"""
import gc

from .compat import ticks_diff, ticks_ms
from .ports import SocketPort

try:
    import select
    import socket
except ImportError:
    select = socket = None

_CLOSE_GRACE_MS = 300  # after the POS closes a job: time for the printer's last replies


def run(runner):
    """Accept POS jobs forever, one at a time."""
    cfg = runner.cfg
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(socket.getaddrinfo("0.0.0.0", cfg["pos"]["listen_port"])[0][-1])
    listener.listen(1)
    listener.setblocking(False)
    printer_addr = socket.getaddrinfo(cfg["printer"]["host"], cfg["printer"]["port"])[0][-1]
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    while True:
        conn = _accept(listener)
        if conn is None:
            runner.wait(poller)
            runner.tick(None, False)
            continue
        _job(runner, conn, printer_addr)


def _job(runner, conn, printer_addr):
    """One print job: forward until the POS closes, then let the printer answer, close."""
    runner.jobs += 1
    psock = None
    try:
        psock = socket.socket()
        try:
            psock.settimeout(runner.cfg["server"]["timeout_ms"] / 1000)
            psock.connect(printer_addr)
        except OSError as e:
            # printer unreachable: refuse the job so the POS sees the error and retries
            runner.problem("printer unreachable", e)
            return
        opened = _open_job(runner, conn, psock)
        if opened is None:
            # the job's ports did not fit even with capture's heap given back: the POS
            # sees the connection close before a byte went on, and sends the job again
            runner.totals["jobs_refused"] += 1
            return
        _forward_job(runner, *opened)
    except MemoryError:
        gc.collect()          # socket() or connect(): as above, nothing went on yet
        runner.totals["jobs_refused"] += 1
        return
    finally:
        if psock is not None:
            psock.close()
        conn.close()
    capture = runner.capture
    if capture is not None and capture.parser is not None:
        try:
            capture.close()     # the connection's end ends its receipt and stream
        except Exception as e:   # noqa: BLE001
            runner.problem("capture", e)


def _open_job(runner, conn, psock):
    """(tap, poller) for a job; out of memory, capture gives its heap back (the receipt in
    progress is lost, counted, capture restarts later) for one more try, then None."""
    for attempt in (0, 1):
        try:
            tap = runner.new_tap(SocketPort(conn), SocketPort(psock))
            poller = select.poll()
            poller.register(conn, select.POLLIN)
            poller.register(psock, select.POLLIN)
            return tap, poller
        except MemoryError:
            capture = runner.capture
            if attempt == 0 and capture is not None and capture.parser is not None:
                capture.release()
                runner.totals["capture_errors"] += 1
            gc.collect()
    return None


def _forward_job(runner, tap, poller):
    closing = None
    try:
        while True:
            moved = tap.step()
            runner.tick(tap, moved)
            if tap.closed() and not tap.down.pending():
                now = ticks_ms()
                if closing is None:
                    closing = now
                elif ticks_diff(now, closing) >= _CLOSE_GRACE_MS or tap.up.closed:
                    break
            if not moved:
                runner.wait(poller)
    finally:
        runner.account(tap)


def _accept(listener):
    try:
        conn, _ = listener.accept()
    except OSError:
        return None
    except MemoryError:
        gc.collect()      # the connection waits in the backlog for the next turn
        return None
    return conn
