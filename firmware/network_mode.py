"""Network mode (and the host board): POS jobs arrive on TCP (pos.listen_port), each goes on to
the printer's address over its own connection.

Failure assumptions, written down first:
- Several POS may connect at once; one may keep its connection open for minutes (status
  polling), or half-close it and wait for the printer's last answers (CUPS, `nc -N`).
- The printer may be unreachable, refuse, close or reset mid-job, or take no more bytes.
- Sockets cost heap (and lwIP memory on the chip): their number is bounded.
- MicroPython's sockets have no shutdown(): the tap cannot pass a POS's half-close on as a
  half-close; it closes the printer connection instead, once the printer has answered.
What the tap does:
- One job at a time goes to the printer (a printer cannot interleave jobs). Up to pos.queue
  more POS connections are accepted and wait, unread (their bytes stay in their TCP window);
  more wait in the listen backlog (pos.backlog). A POS that keeps its connection open keeps
  the printer while no one waits, and yields it after pos.yield_ms without a byte either way
  once someone does.
- Each job connects to the printer without blocking the loop (printer.connect_timeout_ms at
  most), the printer's name resolved again for each job. A printer that cannot be reached:
  the POS's connection is reset (its job failed, as it would have directly) and the printer is
  reported unreachable (health, status LED, telemetry) until a job reaches it again.
- The POS half-closes (it has sent its job): what it sent goes on; if it asked the printer
  something that has not been answered (capture saw the request), the tap relays answers until
  they come (pos.reply_wait_ms at most); then it closes the printer connection (the printer
  sees the end of the job), and the POS's once the printer's last bytes went back. A job that
  asked nothing gets no added wait.
- The printer closes or fails while the POS still sends: the POS's connection is reset, so the
  POS sees an error, never a clean end of a job that did not print, and capture stores the
  receipts the printer did not take as not_printed. The POS fails: the printer's connection is
  reset. The printer takes nothing for printer.stall_ms while bytes wait: both are reset.
- Every job's end is marked in capture (capture.END): the parser reads each job from the
  printer's power-on state, as `tilltap parse` reads one job's file.
"""
import errno
import gc

from .capture import END, PRINTER_FAILED
from .compat import const, ticks_add, ticks_diff, ticks_ms
from .ports import SocketPort

try:
    import select
    import socket
except ImportError:
    select = socket = None

_CONNECTING = const(0)
_FORWARDING = const(1)
_ANSWERS = const(2)       # the POS half-closed: the printer's answers still go back
_REPLY_QUIET_MS = const(5)   # after a late answer came, this long without more ends the wait
_UNKNOWN_QUIET_MS = const(200)  # capture off: what was asked is unknown, the printer quiet this
_LINUX_SO_SNDBUF = const(7)     # MicroPython's unix port does not name it
_HOST_SNDBUF = const(16384)
_ACCEPT_EVERY_MS = const(20)   # while a job runs: how often a new POS connection is looked for


def listen(cfg):
    """The POS-side listening socket (pos.bind, pos.listen_port, pos.backlog); OSError with a
    message naming the address when it cannot be had (a port in use)."""
    pos = cfg["pos"]
    listener = socket.socket()
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(socket.getaddrinfo(pos["bind"], pos["listen_port"])[0][-1])
        listener.listen(pos["backlog"])
    except OSError as e:
        listener.close()
        raise OSError(e.args[0], "cannot listen on %s:%d (%s)" % (
            pos["bind"], pos["listen_port"], _reason(e)))
    listener.setblocking(False)
    return listener


class NetworkTap:
    """The network-mode loop: a listener, the POS connections waiting, the job in progress."""

    def __init__(self, runner, listener):
        self.runner = runner
        self.cfg = runner.cfg
        self.listener = listener
        self.waiting = []          # accepted POS sockets, oldest first
        self.job = None
        self.poller = select.poll()
        self.poller.register(listener, select.POLLIN)
        # a look at the sockets without waiting (ipoll: MicroPython's, allocates no list)
        self.poll_now = getattr(self.poller, "ipoll", self.poller.poll)
        self.listener_key = listener if hasattr(self.poller, "ipoll") else listener.fileno()
        self._accepted_at = ticks_ms()

    def run(self):
        """Serve POS jobs forever."""
        while True:
            moved = self.turn()
            tap = self.job.tap if self.job is not None else None
            self.runner.tick(tap, moved)
            if not moved:
                self.runner.wait(self.poller, tap)

    def turn(self):
        """One iteration: accept, start a job if none runs, step it. True if anything moved."""
        moved = False
        now = ticks_ms()
        if self.job is None or ticks_diff(now, self._accepted_at) >= _ACCEPT_EVERY_MS:
            # accept() on an empty backlog raises: an exception object per try, so not on
            # every turn of a job (the POS waiting meanwhile waits in the listen backlog)
            self._accepted_at = now
            moved = self._accept()
        if self.job is None and self.waiting:
            self.job = Job(self, self.waiting.pop(0))
            moved = True
        if self.job is not None:
            if self.job.step():
                moved = True
            if self.job.done:
                self.job.finish()
                self.job = None
                moved = True
        elif self.runner.capture_work():
            moved = True
        return moved

    def _accept(self):
        if len(self.waiting) > self.cfg["pos"]["queue"] - (self.job is None):
            return False           # full: the rest wait in the listen backlog
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return False
        except MemoryError:
            gc.collect()      # the connection waits in the backlog for the next turn
            return False
        self.waiting.append(conn)
        return True


class Job:
    """One POS connection's job: connect to the printer, forward, end as the sides end."""

    def __init__(self, net, conn):
        self.net = net
        self.runner = net.runner
        self.cfg = net.cfg
        self.conn = conn
        self.pos = None
        self.psock = None
        self.tap = None
        self.done = False
        self.how = None             # why it ended: None (normally), "printer", "pos", "stall"
        self.state = _CONNECTING
        self.runner.jobs += 1
        self.number = self.runner.jobs
        self.started = ticks_ms()
        self._deadline = ticks_add(self.started, self.cfg["printer"]["connect_timeout_ms"])
        self._replies_at_fin = 0
        self._probe = None
        self._connect()

    def _connect(self):
        printer = self.cfg["printer"]
        try:
            addr = socket.getaddrinfo(printer["host"], printer["port"])[0][-1]
        except (OSError, IndexError) as e:
            self._unreachable("cannot resolve %s (%s)" % (printer["host"], _reason(e)))
            return
        try:
            self.psock = socket.socket()
            if self.runner.board["chip"] == "unix":
                # Linux would buffer megabytes for the printer; lwIP on the board holds a few
                # KB. A small buffer keeps "the printer took it" as close as on the chip.
                try:
                    self.psock.setsockopt(socket.SOL_SOCKET, _LINUX_SO_SNDBUF, _HOST_SNDBUF)
                except OSError:
                    pass
            self.psock.setblocking(False)
            self.psock.connect(addr)
        except OSError as e:
            if not e.args or e.args[0] not in (errno.EINPROGRESS, errno.EAGAIN):
                self._unreachable("%s:%d %s" % (printer["host"], printer["port"], _reason(e)))
                return
        except MemoryError:
            gc.collect()
            self._refuse()
            return
        self._probe = select.poll()         # the connection's progress, without waiting
        self._probe.register(self.psock, select.POLLOUT)
        self.net.poller.register(self.psock, select.POLLOUT)

    def step(self):
        """One turn of the job; True when bytes moved."""
        if self.done:
            return False
        if self.state == _CONNECTING:
            return self._connecting()
        moved = self.tap.step()
        down, up = self.tap.down, self.tap.up
        self._watch(down, up)
        now = ticks_ms()
        sent = down.eof and not down.pending()     # the POS half-closed, all of it went on
        if down.failed == "src" or up.failed == "dst":
            self._end("pos")
        elif up.failed or down.failed or (up.eof and not sent):
            self._end("printer")
        elif up.eof:
            self._end_after_answers()      # the printer closed after the job went on
        elif self.state == _FORWARDING:
            if sent:
                self.state = _ANSWERS
                self._deadline = ticks_add(now, self.cfg["pos"]["reply_wait_ms"])
                self._replies_at_fin = up.bytes_in
            elif down.pending() and self.cfg["printer"]["stall_ms"] and \
                    ticks_diff(now, self.tap.last_byte) >= self.cfg["printer"]["stall_ms"]:
                self._end("stall")
            elif self.net.waiting and not down.pending() and \
                    ticks_diff(now, self.tap.last_byte) >= self.cfg["pos"]["yield_ms"]:
                self._end(None)           # a quiet connection yields to a waiting POS
        if self.state == _ANSWERS and not self.done and (
                self._answered(now) or ticks_diff(now, self._deadline) >= 0):
            self._end_after_answers()
        return moved

    def _watch(self, down, up):
        """What the loop's wait wakes for: a side with a chunk held for it when it has room
        (else the loop would sleep its whole poll time while the printer drains), and a
        source only while nothing it sent is held and it has not closed (a closed socket is
        always readable: the loop would spin through the wait for the printer's answers)."""
        conn = (0 if down.pending() or down.eof else select.POLLIN) | (
            select.POLLOUT if up.pending() else 0)
        printer = (0 if up.pending() or up.eof else select.POLLIN) | (
            select.POLLOUT if down.pending() else 0)
        if conn != self._conn_mask:
            self._conn_mask = conn
            self.net.poller.modify(self.conn, conn)
        if printer != self._printer_mask:
            self._printer_mask = printer
            self.net.poller.modify(self.psock, printer)

    def _ready(self):
        """True when a side of the job can move bytes now: capture's parsing in a quiet step
        stops for it (Tap's ready)."""
        self._watch(self.tap.down, self.tap.up)
        key = self.net.listener_key
        for entry in self.net.poll_now(0):
            if entry[0] != key:
                return True
        return False

    def _answered(self, now):
        """True once the printer answered all the POS asked: capture parsed the whole job (or
        what it has not parsed yet asks nothing: Capture.may_ask), and the answers' bytes are
        all in (each request's answer of known size), or else an answer
        came after each request and then _REPLY_QUIET_MS without more. Without capture nothing
        is known (nor when capture missed part of the job): the printer quiet for longer."""
        capture = self.tap.capture
        quiet = ticks_diff(now, self.tap.last_byte)
        if capture is None or not capture.stream_known:
            return quiet >= _UNKNOWN_QUIET_MS
        if capture.pending() and capture.may_ask():
            return False              # parsing the rest tells what was asked
        if not capture.stream_unsized:
            # every answer's size is known: done as soon as they are all in
            return self.tap.up.bytes_in >= capture.stream_reply_bytes
        if self.tap.outstanding():
            return False
        return self.tap.up.bytes_in == self._replies_at_fin or quiet >= _REPLY_QUIET_MS

    def _connecting(self):
        events = 0
        for _, event in self._probe.ipoll(0):
            events = event
        printer = self.cfg["printer"]
        if events & (select.POLLERR | select.POLLHUP):
            self._unreachable("%s:%d refused the connection" % (printer["host"],
                                                                printer["port"]))
            return True
        if events & select.POLLOUT:
            return self._connected()
        if ticks_diff(ticks_ms(), self._deadline) >= 0:
            self._unreachable("%s:%d did not answer within %d ms" % (
                printer["host"], printer["port"], printer["connect_timeout_ms"]))
            return True
        return False

    def _connected(self):
        poller = self.net.poller
        poller.unregister(self.psock)
        self._probe = None
        try:
            self.tap = self.runner.new_tap(SocketPort(self.conn), SocketPort(self.psock))
            self.tap.ready = self._ready
            self.pos = self.tap.down.src
        except MemoryError:
            gc.collect()
            self._refuse()
            return True
        poller.register(self.conn, select.POLLIN)
        poller.register(self.psock, select.POLLIN)
        self._conn_mask = self._printer_mask = select.POLLIN
        self.state = _FORWARDING
        self.runner.printer_reachable(None)
        return True

    def _unreachable(self, reason):
        self.runner.printer_reachable(reason)
        self.how = "unreachable"
        self.done = True

    def _refuse(self):
        # the job's ports did not fit even with capture's heap given back: the POS sees its
        # connection reset before a byte went on, and sends the job again
        self.runner.totals["jobs_refused"] += 1
        self.how = "refused"
        self.done = True

    def _end_after_answers(self):
        """The printer answered what it was asked (or took too long): the last answers go
        back, then both connections close."""
        up = self.tap.up
        while up.pending() and not up.failed and up.pump():
            pass
        self._end(None)

    def _end(self, how):
        self.how = how
        self.done = True

    def finish(self):
        """Close both sides as the job ended, mark its end in capture, count it."""
        tap = self.tap
        printer_side = SocketPort(self.psock) if self.psock is not None else None
        pos_side = self.pos or SocketPort(self.conn)
        for sock in (self.conn, self.psock):
            if sock is not None:
                try:
                    self.net.poller.unregister(sock)
                except (OSError, KeyError, ValueError):
                    pass
        if tap is not None and self.how in ("printer", "stall"):
            # what the printer did not take: stored, as not printed
            tap.mark(PRINTER_FAILED)
            tap.take_held()
        if self.how in ("printer", "stall", "unreachable", "refused"):
            pos_side.reset()               # the POS sees its job fail, not a clean end
        else:
            pos_side.close()
        if printer_side is not None:
            if self.how in ("pos", "stall"):
                printer_side.reset()
            else:
                printer_side.close()
        if tap is not None:
            tap.mark(END)
            self.runner.account(tap)
            self.runner.log("job %d: %d bytes to the printer, %d back%s" % (
                self.number, tap.down.bytes_out, tap.up.bytes_out,
                "" if self.how is None else ", ended: " + _ENDINGS[self.how]))
        elif self.how == "unreachable":
            self.runner.log("job %d: refused, the printer cannot be reached" % self.number)


_ENDINGS = {"printer": "the printer closed or failed mid-job, the POS connection was reset",
            "pos": "the POS connection failed",
            "stall": "the printer took nothing for printer.stall_ms, both sides were reset"}


def _reason(error):
    """An OSError as words: its errno's name where MicroPython knows it."""
    code = error.args[0] if error.args else None
    name = errno.errorcode.get(code) if hasattr(errno, "errorcode") else None
    return name or repr(error)
