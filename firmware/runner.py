"""The runner: builds capture and the uplink for one board, and keeps them going.

Two threads. The main thread forwards and captures (uart_mode or network_mode runs its loop
and calls tick() every turn); nothing in it waits on the network. The uplink runs in its own
thread: its socket waits (connect, DNS, reads, a server that never answers) release the GIL on
the ESP32, so forwarding goes on meanwhile. The spool is the only thing both threads touch,
behind one lock. What can still hold the forwarding thread: a flash write (tens of ms; the
UART RX interrupt keeps buffering) and a TLS handshake's crypto (~1 s, once per connection:
the MQTT connection is kept open).

Capture and uplink are each built inside their own try, so a bad configuration, a broken flash
or an out-of-memory leaves a tap that still forwards (and says why in its status); what did
not fit in memory is built again later, in a quiet moment. Per turn, tick() feeds the watchdog,
restarts capture after a failure, collects garbage when the line is quiet and writes the
status.
"""
import gc
import json
import os

from . import FIRMWARE_VERSION, protocol
from .capture import IDLE, Capture, keeps_pace
from .compat import const, sleep_ms, ticks_add, ticks_diff, ticks_ms
from .escpos_parser import Parser
from .record import Records, raw_max
from .status_led import DEGRADED, FAILED, HEALTHY, StatusLed
from .tap import BUDGET_US, Tap, new_buffers

try:
    import machine
    import micropython
except ImportError:   # CPython (imports only) and the unix port have no machine module
    machine = None
    micropython = None

_POLL_MS = 10          # longest sleep of the loop when nothing moves
_STATUS_EVERY_MS = 500
_GC_AFTER_IDLE_MS = 1000
_GC_SHARE = const(4)        # collect after this share of the free heap was allocated
_GC_MIN = const(4096)
_RESTART_CAPTURE_MS = 1000   # between attempts to restart capture when the heap was too full
_REBUILD_MS = 10000          # between attempts to build capture or uplink that did not fit
_BACKLOG = 4096              # bytes capture may fall behind the printer (capture.py)


def device_id(cfg):
    """The configured ID, else machine.unique_id() as hex (the ESP32's base MAC)."""
    if cfg["device_id"]:
        return cfg["device_id"]
    if machine and hasattr(machine, "unique_id"):
        return protocol.device_id_from_uid(machine.unique_id())
    return "host"


class Runner:
    """Owns the tap, capture and status for one board; run() never returns."""

    def __init__(self, board, cfg, status_path=None):
        self.board = board
        self.cfg = cfg
        self.status_path = status_path
        self.started = ticks_ms()
        self.problems = []          # what went wrong lately (errors, the last few)
        self.printer_error = None   # why the printer cannot be reached, None while it can
        self.capture = None
        self.spool = None
        self.uplink = None
        self.network = None
        self.device = device_id(cfg)
        # how this board parses: every record carries it (protocol.printer_context)
        self.printer = protocol.printer_context(cfg["printer"], cfg["split"])
        self.boot = 0
        self.jobs = 0
        self.totals = {"pos_bytes": 0, "printer_bytes": 0, "replies_in": 0, "replies_out": 0,
                       "capture_errors": 0, "jobs_refused": 0}
        self._wdt = None
        self._last_status = 0
        self.peak_alloc = 0
        self._busy_at = 0
        self._collected = False
        # at boot, before anything can fragment the heap: the tap's buffers, capture's
        # backlog (which also holds the raw bytes upload mode full keeps per receipt) and the
        # buffer the uplink reads batches into
        self._buffers = new_buffers()
        self._backlog = max(raw_max(cfg["upload"]), board.get("backlog", _BACKLOG))
        self._batch_buf = protocol.batch_size(cfg["upload"]["batch_bytes"])
        try:
            self._backlog = bytearray(self._backlog)
            if cfg["server"]["host"]:       # else there is no uplink to read batches
                self._batch_buf = bytearray(self._batch_buf)
        except MemoryError:
            pass    # built again with capture or the uplink (forwarding goes on meanwhile)
        self.config_refused = False
        self.online = True          # Wi-Fi up (always on the host), set by the uplink thread
        self._restart_at = None      # ticks before which capture is not restarted
        self._build_at = None        # ticks at which to build what did not fit at boot
        try:
            self.led = _make_led(board.get("led"))
        except Exception as e:   # noqa: BLE001 -- a wrong pin never stops printing
            self.led = None
            self.problem("status LED", e)

    # ---- building ---------------------------------------------------------------------------

    def build_capture(self):
        """Parser, spool and capture from the configuration; None (with a reason) if that fails.

        A board definition's "backlog" (bytes, default 4096) sizes capture's backlog where the
        board has the RAM (PSRAM; README, The tap's capture policy); its "parser_slowdown"
        (benches on the host board only) makes the parser that many times slower, as on a
        slower chip; 0 switches capture off."""
        slowdown = self.board.get("parser_slowdown", 1)
        if not slowdown:
            return None
        try:
            from .spool import Spool
            cfg = self.cfg
            _make_parents(cfg["spool"]["dir"])
            if not self.boot:
                self.boot = _next_boot(cfg["spool"]["dir"] + ".boot")
            self.spool = _LockedSpool(Spool(cfg["spool"]["dir"],
                                            max_bytes=cfg["spool"]["max_bytes"],
                                            min_free=cfg["spool"]["min_free"],
                                            policy=cfg["spool"]["when_full"]))
            records = Records(self.device, self.boot, cfg["upload"], self.printer,
                              self.clock_synced, self.started, self.spool.scratch)
            options = protocol.parser_options(self.printer)

            def make_parser():
                return Parser(**options)

            self.capture = Capture(self.spool, records.encode, make_parser,
                                   backlog=self._backlog, raw=raw_max(cfg["upload"]) > 0,
                                   slowdown=slowdown, new_receipt=records.new_receipt,
                                   keep_pace=keeps_pace(cfg["capture"]["policy"], self._backlog))
        except Exception as e:   # noqa: BLE001 -- forwarding goes on without capture
            self.problem("capture disabled", e)
            self._retry_build(e)
            self.capture = None
        return self.capture

    def clock_synced(self):
        """True once the wall clock was set (NTP on the board; the host's clock on a PC)."""
        return self.board["chip"] == "unix" or (self.network is not None and self.network.synced)

    def build_uplink(self):
        """The uplink over MQTT or HTTP; the tap runs its steps in idle gaps."""
        try:
            server = self.cfg["server"]
            if not server["host"]:
                raise ValueError("server.host is not set")
            from . import uplink
            timeout = server["timeout_ms"]
            if server["transport"] == "mqtt":
                from . import uplink_mqtt
                transport = uplink_mqtt.MQTTTransport(
                    self.device, server["host"], server["port"], server["credential"],
                    tls=_read_tls(uplink_mqtt, server) if server["tls"] else None,
                    timeout_ms=timeout)
            else:
                from . import uplink_http
                scheme = "https" if server["tls"] else "http"
                port = server["port"] or (443 if server["tls"] else 80)
                transport = uplink_http.HTTPTransport(
                    self.device, "%s://%s:%d" % (scheme, server["host"], port),
                    server["credential"], timeout_ms=timeout)
            upload = self.cfg["upload"]
            self.uplink = uplink.Uplink(
                self.spool, transport, self.device, boot=self.boot,
                firmware=FIRMWARE_VERSION,
                batch_count=upload["batch_count"], batch_bytes=self._batch_buf,
                idle_ms=upload["idle_ms"], printer_status=self.printer_status,
                uptime=lambda: ticks_diff(ticks_ms(), self.started))
        except Exception as e:   # noqa: BLE001 -- capture and forwarding go on; spool fills
            self.problem("uplink disabled", e)
            self._retry_build(e)
            self.uplink = None
        return self.uplink

    def build(self):
        """Capture, then the uplink and its thread. What did not fit in memory is built again
        later (_tick, in a quiet moment); a configuration problem is not retried."""
        self._build_at = None
        if self.capture is None and self.build_capture() is None:
            return
        if self.uplink is None and self.build_uplink() is not None:
            self.start_uplink()
        _collect_early()

    def _retry_build(self, error):
        if isinstance(error, MemoryError):
            self._build_at = ticks_add(ticks_ms(), _REBUILD_MS)

    def start_uplink(self):
        """Runs the uplink in its own thread (see the module docstring)."""
        import _thread
        if hasattr(_thread, "stack_size"):
            _thread.stack_size(16 * 1024)
        _thread.start_new_thread(self._uplink_loop, ())

    def _uplink_loop(self):
        while True:
            now = ticks_ms()
            wait = 1000
            try:
                self.online = self.network is None or self.network.step(now)
                if self.online:
                    wait = self.uplink.step(now)
            except Exception as e:   # noqa: BLE001 -- the thread must live on
                self.problem("uplink", e)
            sleep_ms(min(max(wait, 5), 200))

    def printer_status(self):
        """What telemetry reports about the printer side."""
        status = {"jobs": self.jobs, "bytes": self.totals["printer_bytes"],
                  "replies": self.totals["replies_in"],
                  "capture_errors": self.totals["capture_errors"],
                  "reachable": self.printer_error is None, "error": self.printer_error}
        capture = self.capture
        if capture is not None:
            # receipts that could not be stored never got a seq: report them here
            status["receipts"] = capture.receipts
            status["store_errors"] = capture.store_errors
            status["incomplete"] = capture.incomplete
            status["not_printed"] = capture.not_printed
            status["capture_behind"] = capture.behind
            if capture.parser is not None:
                # an ESC t number the configured map lacks: printer.model or codepage_map is
                # likely wrong (its text reads as cp437)
                stats = capture.parser.stats()
                status["unknown_codepages"] = stats["unknown_codepages"]
                status["tear_splits"] = stats["tear_splits"]
        return status

    def printer_reachable(self, error):
        """A job reached the printer (error None) or could not (why): health and telemetry say
        so until the next job tells otherwise."""
        if error is not None and error != self.printer_error:
            self.log("printer unreachable: %s" % error)
        elif error is None and self.printer_error is not None:
            self.log("printer reachable again")
        self.printer_error = error

    def new_tap(self, pos, printer, idle_mark=IDLE):
        """A Tap between two ports, with capture (unless it is off) and the boot-time buffers.
        idle_mark: what an idle gap means to capture (a serial line's: END)."""
        capture = self.capture
        if capture is not None and capture.parser is None:
            capture = None       # released for forwarding: tick() restarts it
        return Tap(pos, printer, capture=capture, split_idle_ms=self.cfg["split"]["idle_ms"],
                   idle_mark=idle_mark, buffers=self._buffers)

    def capture_work(self):
        """Capture's budget of parsing while no job runs; True while it has bytes left."""
        capture = self.capture
        if capture is None or capture.parser is None:
            return False
        try:
            return capture.work(BUDGET_US)
        except Exception as e:   # noqa: BLE001 -- capture must never stop printing
            capture.release()
            self.totals["capture_errors"] += 1
            self.problem("capture", e)
            return False

    def log(self, line):
        """One line on the console (the REPL UART on a board, the terminal on a PC)."""
        try:
            print("tilltap:", line)
        except Exception:   # noqa: BLE001 -- a console is never worth a job
            pass

    # ---- running ----------------------------------------------------------------------------

    def problem(self, what, error):
        """Remember a problem for the status report (the last few only: bounded memory).

        Formatted here, inside the guard: out of memory, the note is lost, never the job.
        """
        try:
            self.problems.append("%s: %r" % (what, error))
            del self.problems[:-8]
        except MemoryError:
            pass   # the counter the caller raised is the record that matters

    def health(self):
        """What the status LED shows (status_led.py): config refused, degraded or healthy."""
        if self.config_refused:
            return FAILED
        if self.current_problems():
            return DEGRADED
        return HEALTHY

    def current_problems(self):
        """What is wrong now (each gone as soon as it is mended), for health and the status."""
        out = []
        if self.printer_error is not None:
            out.append("printer unreachable: " + self.printer_error)
        if self.capture is None or self.capture.parser is None:
            out.append("capture off")
        if self.uplink is None:
            out.append("no uplink")
        elif not self.online:
            out.append("Wi-Fi down")
        elif self.uplink.failing():
            out.append("receipts not delivered (server, credential)")
        return out

    def tick(self, tap, moved):
        """Per loop turn: watchdog, capture recovery, garbage collection in quiet times, status."""
        if self._wdt:
            self._wdt.feed()
        now = ticks_ms()
        if self.led is not None:
            self.led.show(self.health(), now)
        if moved:
            self._busy_at = now
            self._collected = False
        elif not self._collected and ticks_diff(now, self._busy_at) >= _GC_AFTER_IDLE_MS:
            # collect while the line is quiet, so that a collection forced by a full heap
            # (a pause in forwarding) is rare during a print job
            gc.collect()
            self._collected = True
        if self._build_at is not None and not moved and _due(self._build_at, now, _REBUILD_MS):
            gc.collect()
            self.build()
        if self.capture is not None:
            if tap is not None and tap.last_error is not None:
                self._capture_failed(tap)
            if (self.capture.parser is None or (tap is not None and tap.capture is None)) and \
                    _due(self._restart_at, now, _RESTART_CAPTURE_MS):
                self._restart_capture(tap, now)
        if self.status_path and ticks_diff(now, self._last_status) >= _STATUS_EVERY_MS:
            self._last_status = now
            self._status_file(tap)

    def _status_file(self, tap):
        # apart from tick(), which runs every turn: its handler would put tick's frame on the
        # heap (tap.py, Frames)
        try:
            self.write_status(tap)
        except Exception as e:   # noqa: BLE001 -- a status file is never worth a job
            self.problem("status", e)

    def _capture_failed(self, tap):
        """Count and note why capture stopped on this tap. It restarts at once: dropping the
        receipt in progress usually frees what it needs, and every receipt starting while
        capture waited would be lost uncounted; only a failed restart waits."""
        error = tap.last_error
        tap.last_error = None
        self.totals["capture_errors"] += 1
        self.problem("capture", error)

    def _restart_capture(self, tap, now):
        """A fresh parser (the receipt in progress was dropped), on the tap if there is one.

        Out of memory, the fresh parser may not fit either: then forwarding goes on without
        capture and the next try is _RESTART_CAPTURE_MS later.
        """
        try:
            capture = self.capture.reset(resync=True)
            self._restart_at = None
        except Exception as e:   # noqa: BLE001 -- most likely MemoryError; never the loop's end
            capture = None
            self.capture.release()
            self._restart_at = ticks_add(now, _RESTART_CAPTURE_MS)
            if not isinstance(e, MemoryError):
                self.problem("capture restart", e)
        if tap is not None:
            tap.attach(capture)

    def status(self, tap=None):
        """Health figures: what moved, what was captured, the spool, the problems seen."""
        totals = dict(self.totals)
        if tap is not None:
            _add_counts(totals, tap)      # the job in progress, not yet in self.totals
            tap.count_skipped()
        used = gc.mem_alloc()           # sampled before collecting: what the loop holds
        self.peak_alloc = max(self.peak_alloc, used)
        gc.collect()
        out = {"firmware": FIRMWARE_VERSION, "device": device_id(self.cfg),
               "uptime_ms": ticks_diff(ticks_ms(), self.started), "jobs": self.jobs,
               "mem_free": gc.mem_free(), "mem_alloc": gc.mem_alloc(),
               "mem_alloc_peak": self.peak_alloc,
               "problems": self.current_problems(), "errors": self.problems[-5:],
               "health": ("healthy", "degraded", "failed")[self.health()],
               "printer": self.printer_status()}
        out.update(totals)
        capture = self.capture
        if capture is not None:
            out["receipts"] = capture.receipts
            out["store_errors"] = capture.store_errors
            out["last_store_error"] = capture.last_store_error
            out["capture"] = {"policy": "keep_pace" if capture.keep_pace else "forwarding_first",
                              "pending": capture.pending(), "behind": capture.behind,
                              "skipped_bytes": capture.skipped_bytes,
                              "incomplete": capture.incomplete,
                              "not_printed": capture.not_printed,
                              "raw_omitted": capture.raw_omitted}
            if capture.parser is not None:
                out["parser"] = capture.parser.stats()
        if self.spool is not None:
            out["spool"] = self.spool.stats()
        if self.uplink is not None:
            out["uplink"] = self.uplink.stats()
        return out

    def write_status(self, tap=None):
        tmp = self.status_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.status(tap), f)   # streamed: no copy of the whole text on the heap
        os.rename(tmp, self.status_path)

    def run(self):
        """Forward forever, in the mode the configuration and the board allow."""
        if machine and hasattr(machine, "WDT") and self.cfg["watchdog_ms"]:
            self._wdt = machine.WDT(timeout=self.cfg["watchdog_ms"])
        if self.board["chip"] != "unix" and micropython and hasattr(micropython, "kbd_intr"):
            # POS bytes (0x03) must never interrupt the firmware; on a PC Ctrl-C stops it
            micropython.kbd_intr(-1)
        if self.cfg["mode"] == "network" or self.board["chip"] == "unix":
            from . import network_mode
            listener = network_mode.listen(self.cfg)
            pos, printer = self.cfg["pos"], self.cfg["printer"]
            self.log("%s listening on %s:%d, printing to %s:%d" % (
                self.cfg["device_id"], pos["bind"], pos["listen_port"], printer["host"],
                printer["port"]))
            network_mode.NetworkTap(self, listener).run()
        else:
            from . import uart_mode
            uart_mode.run(self)

    def account(self, tap):
        """Adds a finished job's byte counts to the totals."""
        _add_counts(self.totals, tap)

    def wait(self, poller, tap=None):
        """Sleep until a port has bytes or _POLL_MS passed (less while the tap's capture waits
        for quiet ports to parse: Tap.sleep_ms); ipoll() allocates no result list."""
        ms = _POLL_MS if tap is None else tap.sleep_ms(_POLL_MS)
        if hasattr(poller, "ipoll"):
            poller.ipoll(ms)
        else:
            poller.poll(ms)


class _LockedSpool:
    """The spool shared by capture (main thread) and the uplink thread: one call at a time."""

    def __init__(self, spool):
        import _thread
        self._spool = spool
        self._lock = _thread.allocate_lock()

    def append(self, record):
        with self._lock:
            return self._spool.append(record)

    def scratch(self):
        """As Spool.scratch() (no lock: capture alone writes a scratch file)."""
        return self._spool.scratch()

    def pending(self, limit, max_bytes=None, into=None):
        with self._lock:
            return self._spool.pending(limit, max_bytes, into)

    def ack(self, seqs):
        with self._lock:
            return self._spool.ack(seqs)

    def set_aside(self, seqs):
        with self._lock:
            return self._spool.set_aside(seqs)

    def retry_refused(self):
        with self._lock:
            return self._spool.retry_refused()

    def stats(self):
        with self._lock:
            return self._spool.stats()


def _collect_early():
    """Collect each time a quarter of what is free was allocated, not only when the heap is
    full: garbage then never spreads over the whole heap, so the blocks a receipt or a batch
    needs stay contiguous (a full-heap collection leaves it fragmented)."""
    if hasattr(gc, "threshold"):
        gc.collect()
        gc.threshold(max(gc.mem_free() // _GC_SHARE, _GC_MIN))


def _due(deadline, now, period):
    """True once ticks `now` reached `deadline` (None: at once), set at most `period` ahead;
    a deadline further off than that was passed by a ticks wrap (a long quiet spell)."""
    if deadline is None:
        return True
    wait = ticks_diff(deadline, now)
    return wait <= 0 or wait > period


def _make_led(spec):
    """The board's status LED (board.json "led": pin, NeoPixel or not), or None."""
    if not spec or machine is None or not hasattr(machine, "Pin"):
        return None
    pin = machine.Pin(spec["pin"], machine.Pin.OUT)
    if spec.get("neopixel"):
        import neopixel
        return StatusLed(pixel=neopixel.NeoPixel(pin, 1))
    return StatusLed(pin=pin, active_high=spec.get("active_high", True))


def _add_counts(totals, tap):
    """Adds a tap's byte counts (both directions) to a totals dict."""
    totals["pos_bytes"] += tap.down.bytes_in
    totals["printer_bytes"] += tap.down.bytes_out
    if tap.up is not None:
        totals["replies_in"] += tap.up.bytes_in
        totals["replies_out"] += tap.up.bytes_out


def _next_boot(path):
    """The boot counter, incremented and stored (tmp + rename: a power cut keeps the old one)."""
    try:
        with open(path) as f:
            boot = int(f.read()) + 1
    except (OSError, ValueError):
        boot = 1
    with open(path + ".tmp", "w") as f:
        f.write(str(boot))
    os.rename(path + ".tmp", path)
    return boot


def _read_tls(uplink_mqtt, server):
    """The verifying TLS context for the configured CA file (needs the NTP-set clock)."""
    with open(server["ca_file"], "rb") as f:
        return uplink_mqtt.tls_context(f.read())


def _make_parents(path):
    """Creates the directories above path (os.makedirs does not exist on the board)."""
    parts = path.rstrip("/").split("/")[:-1]
    for k in range(1, len(parts) + 1):
        sub = "/".join(parts[:k])
        if sub:
            try:
                os.mkdir(sub)
            except OSError:
                pass          # exists already
