"""`tilltap demo`: the whole system on this PC, with real parts.

- the firmware (firmware/main.py, precompiled) on the MicroPython unix port, `host` board;
- `tilltap serve` with SQLite (and, with --uplink mqtt, a private Mosquitto with generated
  password and ACL files);
- a virtual printer that records every byte and answers status requests;
- a simulated POS that replays the shared corpus and python-escpos receipts (or the user's own
  captures, --jobs), one TCP job each, asking the printer's status first as status-aware POS
  software does.

It prints what went where (bytes sent, bytes the printer got, identical or not; receipts
captured, acknowledged, stored; per receipt with --jobs: lines stored, undecoded lines, total,
items) and the server's address. `--once` exits afterwards: status 0 only if pass-through was
byte-exact in both directions and every receipt was stored once.

The same parts serve the tests and benchmarks that measure the real path: Demo.add_tap() runs
more taps against one server (other printer settings, other upload modes), stored_receipts()
reads back what the server stored and extracted, in the shape parsed_receipts() gives for what
`tilltap parse --fields` prints.
"""
import asyncio
import glob
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from decimal import Decimal

from sqlalchemy import func, select

from tilltap.accounts import broker_files, devices, operators
from tilltap.analysis.extract import add_fields
from tilltap.storage import database, schema
from tilltap.storage.receipts import stored_text
from tilltap.storage.schema import receipt_fields, receipt_items, receipt_payments
from tilltap_fw import config as device_config
from tilltap_fw import escpos_parser, protocol
from tilltap_fw.receipt import parse_stream
from tilltap_host.broker import Broker
from tilltap_host.corpus import CORPUS, corpus_files, options_for, short
from tilltap_host.firmware_process import FirmwareProcess
from tilltap_host.pos_simulator import send_jobs
from tilltap_host.receipt_factory import generate_receipts
from tilltap_host.server_process import ServerProc
from tilltap_host.virtual_printer import VirtualPrinter

DEVICE = "demo-tap"
TAP_SPLIT = {"idle_ms": 1500}     # every demo tap's split section
OPERATOR = "demo"
UPLOAD_MODES = device_config.SCHEMA["upload.mode"][2]
HOST_SPOOL_BYTES = 64 << 20
CAPTURE_POLICIES = device_config.SCHEMA["capture.policy"][2]
# The demo's printer takes 256 KB/s: faster than any receipt printer prints (a 576-dot raster
# at 250 mm/s is ~144 KB/s), yet, like a real one, it makes the tap wait on it. A sink taking
# bytes at memory speed would measure the PC's load instead (bench_tap measures that case).
PRINTER_BYTES_PER_S = 256_000
_EXTRACT_WAIT_S = 30      # the server extracts new receipts every few seconds


def add_command(sub):
    ap = sub.add_parser("demo", help="run the whole system on this PC (firmware on the unix "
                                     "port, server, virtual printer, simulated POS)",
                        description="The whole system on this PC; --once replays once and "
                                    "reports.")
    ap.add_argument("--once", action="store_true", help="replay once, report, exit")
    ap.add_argument("--uplink", choices=("http", "mqtt"), default="http")
    ap.add_argument("--upload-mode", choices=UPLOAD_MODES, default="full",
                    help="what leaves the tap: full (receipt and raw bytes), text, or fields "
                         "(only what the board's extractor found)")
    ap.add_argument("--capture-policy", choices=CAPTURE_POLICIES, default="auto",
                    help="the tap's capture.policy (README, The tap's capture policy)")
    ap.add_argument("--capture-backlog", type=int, default=None, metavar="BYTES",
                    help="the tap's capture backlog (its board definition's \"backlog\"; "
                         "default the host board's, 256 KiB; 4096 is a chip's without PSRAM)")
    ap.add_argument("--port", type=int, default=8080, help="the server's HTTP port (0: any free)")
    ap.add_argument("--dir", default=None, help="working directory (default: a temporary one)")
    ap.add_argument("--generated", type=int, default=30,
                    help="python-escpos receipts to add to the corpus streams")
    ap.add_argument("--jobs", nargs="+", metavar="FILE",
                    help="replay these print captures (files, or directories of *.bin / *.prn "
                         "files) instead of the corpus, and report per receipt")
    ap.add_argument("--profile", choices=escpos_parser.PROFILES, default="epson",
                    help="the tap's printer.profile")
    ap.add_argument("--codepage-map", choices=escpos_parser.VENDORS, default="epson",
                    help="the tap's printer.codepage_map (vendor numbering of ESC t)")
    ap.add_argument("--encoding", choices=[e for e in escpos_parser.ENCODINGS if e],
                    default=None, help="the tap's printer.encoding (CJK default)")
    ap.add_argument("--printer-model", default="", metavar="MODEL",
                    help="the tap's printer.model (escpos-printer-db; `tilltap parse "
                         "--printer-model list`)")
    ap.add_argument("--timeout", type=float, default=180.0,
                    help="seconds to wait for every receipt to be stored")
    ap.set_defaults(run=run)


def demo_streams(generated):
    """(name, bytes) of every job the POS sends: corpus files, then receipts made with
    python-escpos. Star Line Mode jobs are left out: the demo tap is set up for an Epson
    printer."""
    jobs = []
    for path in corpus_files():
        if options_for(path).get("profile") == "star":
            continue
        with open(path, "rb") as f:
            jobs.append((short(path), f.read()))
    jobs += [("generated/%s" % r.name, r.stream)
             for r in generate_receipts(seed=7, count=generated) if r.language != "zh"]
    return jobs


def job_files(paths):
    """(name, bytes) of the user's print captures: files, and the *.bin / *.prn files of
    directories (sorted). Raises OSError for a path that cannot be read."""
    jobs = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(p for ext in ("bin", "prn") for p in glob.glob(
                os.path.join(path, "**", "*." + ext), recursive=True))
            if not found:
                raise OSError("%s: no *.bin or *.prn files in this directory" % path)
            jobs += job_files(found)
        else:
            with open(path, "rb") as f:
                jobs.append((path, f.read()))
    return jobs


def printer_settings(profile="epson", codepage_map=None, encoding=None, model=""):
    """The tap configuration's printer section for parser options."""
    return {"profile": profile, "codepage_map": codepage_map or (
        "star" if profile == "star" else "epson"), "encoding": encoding or "",
        "model": model or ""}


def parser_options(printer):
    """escpos_parser.Parser options of a printer_settings() section, resolved as the tap
    resolves its configuration (the split section as the demo's taps have it)."""
    cfg = device_config.validate({"printer": printer, "split": TAP_SPLIT})
    return protocol.parser_options(protocol.printer_context(cfg["printer"], cfg["split"]))


def parsed_receipts(jobs, options=None):
    """[(job name, receipt with "fields")] as `tilltap parse --fields` gives them, job by job."""
    out = []
    for name, data in jobs:
        receipts, _ = parse_stream(data, **(options or {}))
        out += [(name, add_fields(r)) for r in receipts]
    return out


def expected_receipts(jobs, options=None):
    """How many receipts the jobs hold, by the server-side parser (each job ends one)."""
    return sum(len(parse_stream(data, **(options or {}))[0]) for _, data in jobs)


class Tap:
    """One tap on the real path: a device, its virtual printer and its firmware process."""

    def __init__(self, device, printer, process, options, upload_mode):
        self.device = device
        self.printer = printer
        self.process = process
        self.options = options
        self.upload_mode = upload_mode

    def status(self):
        return self.process.status()


class Demo:
    """Starts every part; `close()` stops them. start() starts the server and one tap
    (self.tap, self.printer); add_tap() adds more against the same server."""

    def __init__(self, workdir, uplink="http", port=None, upload_mode="full", printer=None,
                 capture=None, backlog=None):
        self.dir = workdir
        self.capture_cfg = capture or {}   # the taps' capture section (capture.policy)
        # the taps' board definition's "backlog" (bytes), None: the board's default
        self.board = {"backlog": backlog} if backlog else None
        self.uplink = uplink
        self.upload_mode = upload_mode
        self.printer_cfg = printer or printer_settings()
        self.db_url = "sqlite:///" + os.path.join(workdir, "tilltap.db")
        self.engine = database.make_engine(self.db_url)
        self.port = port
        self.broker = self.server = self.tap = self.printer = None
        self.taps = []
        self.heapsize = None
        self.rom = False

    async def start_with_heap(self, heapsize, rom=False):
        """start() with the firmware's heap limited (-X heapsize), for the memory bench; rom:
        the firmware boots from a ROMFS image and heapsize is what it has beside it."""
        self.heapsize = heapsize
        self.rom = rom
        return await self.start()

    async def start(self, tap=True):
        """The server (and broker), then the demo tap unless tap is False."""
        self.operator_password = secrets.token_urlsafe(9)
        operators.add(self.engine, OPERATOR, self.operator_password)
        if self.uplink == "mqtt":
            self._mqtt_secret = devices.add(self.engine, "tilltap-server", role="server")
        if tap:
            await self.add_tap(DEVICE, self.printer_cfg, self.upload_mode)
        else:
            self._start_server()
        return self

    def _start_server(self):
        mqtt = None
        if self.uplink == "mqtt":
            passwd, acl = broker_files.write(self.engine, self.dir)
            self.broker = Broker(self.dir, passwd_acl=(passwd, acl)).start()
            mqtt = (self.broker.port, "tilltap-server", self._mqtt_secret)
        self.server = ServerProc(self.db_url, mqtt=mqtt, port=self.port,
                                 log_path=os.path.join(self.dir, "server.log")).start()

    async def add_tap(self, device, printer=None, upload_mode="full"):
        """Registers a device and starts a tap for it (its own printer and firmware)."""
        credential = devices.add(self.engine, device)
        if self.server is None:
            self._start_server()
        elif self.broker is not None:
            broker_files.write(self.engine, self.dir)
            self.broker.reload()
        assert self.server is not None
        printer = printer or printer_settings()
        server_cfg = {"transport": self.uplink, "host": "127.0.0.1", "credential": credential,
                      "timeout_ms": 2000,
                      "port": self.broker.port if self.broker else self.server.port}
        virtual = await VirtualPrinter(bytes_per_s=PRINTER_BYTES_PER_S).start()
        workdir = os.path.join(self.dir, device)
        os.makedirs(workdir, exist_ok=True)
        process = FirmwareProcess(workdir, virtual.port, {
            "device_id": device, "server": server_cfg, "printer": printer,
            "upload": {"idle_ms": 100, "mode": upload_mode}, "split": TAP_SPLIT,
            # a PC's disk: a replay at LAN speed outruns the uplink by more than a chip's
            # 1 MiB of flash (the tests replay a thousand receipts through one tap); a limited
            # heap stands for a chip, with a chip's spool
            "spool": {} if self.heapsize else {"max_bytes": HOST_SPOOL_BYTES},
            "capture": self.capture_cfg},
            heapsize=self.heapsize, rom=self.rom, board=self.board).start()
        tap = Tap(device, virtual, process, parser_options(printer), upload_mode)
        self.taps.append(tap)
        if self.tap is None:
            self.tap, self.printer = process, virtual
        return tap

    async def replay(self, jobs, tap=None):
        """Sends every job through a tap (default the demo tap); returns (bytes sent, replies
        the POS got)."""
        process = tap.process if tap else self.tap
        assert process is not None, "start() first"
        sent, replies = await send_jobs("127.0.0.1", process.listen_port,
                                        [data for _, data in jobs])
        printer = tap.printer if tap else self.printer
        assert printer is not None
        await printer.read_all(len(sent))
        return sent, replies

    def stored(self, device=DEVICE):
        """(rows stored for the device, distinct seqs among them)."""
        with self.engine.connect() as conn:
            rows, distinct = conn.execute(select(
                func.count(), func.count(func.distinct(schema.receipts.c.seq))).where(
                schema.receipts.c.device_id == device)).one()
        return rows, distinct

    async def wait_stored(self, want, timeout, tap=None):
        """True once the tap captured want receipts, its spool is empty and the server has
        them all."""
        process = tap.process if tap else self.tap
        assert process is not None, "start() first"
        device = tap.device if tap else DEVICE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = process.status()
            spool = status.get("spool", {})
            if (self.stored(device)[0] >= want and status.get("receipts", 0) >= want and
                    spool.get("count", 1) == 0):
                return True
            await asyncio.sleep(0.25)
        return False

    async def wait_extracted(self, timeout=_EXTRACT_WAIT_S):
        """True once the server extracted every stored receipt (its background extractor)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(schema.receipts)).scalar()
                done = conn.execute(select(func.count()).select_from(receipt_fields)).scalar()
            if done >= stored:
                return True
            await asyncio.sleep(0.25)
        return False

    async def close(self):
        for tap in self.taps:
            tap.process.stop()
        for part in (self.server, self.broker):
            if part is not None:
                part.stop()
        for tap in self.taps:
            await tap.printer.stop()
        self.engine.dispose()


# ---- what the server stored, in the shape of `tilltap parse --fields` -----------------------

def _decimal(value, places):
    return None if value is None else str(Decimal(value).quantize(Decimal(places)))


def receipt_view(lines, barcodes, codes2d, fields):
    """The comparable part of a receipt: text, codes and consumption fields, amounts at the
    server's column scales (the form both stored_receipts and parsed_view give)."""
    return {
        "lines": lines, "barcodes": barcodes, "codes2d": codes2d,
        "total": _decimal(fields["total"], "0.01"),
        "currency": fields["currency"], "receipt_no": fields["receipt_no"],
        "member_id": fields["member_id"],
        "payments": [(p["type"], _decimal(p["amount"], "0.01")) for p in fields["payments"]],
        "items": [(i["name"], _decimal(i["qty"], "0.001"), _decimal(i["unit_price"], "0.01"),
                   _decimal(i["amount"], "0.01")) for i in fields["items"]],
    }


def parsed_view(receipt):
    """receipt_view of a `tilltap parse --fields` receipt."""
    return receipt_view(receipt["lines"], receipt["barcodes"], receipt["codes2d"],
                        receipt["fields"])


def stored_receipts(engine, device):
    """[(seq, receipt_view, undecodable lines)] of what the server stored and extracted for a
    device, in seq order."""
    out = []
    with engine.connect() as conn:
        keys = [tuple(k) for k in conn.execute(
            select(schema.receipts.c.device_id, schema.receipts.c.seq)
            .where(schema.receipts.c.device_id == device).order_by(schema.receipts.c.seq))]
        texts = stored_text(conn, keys) if keys else {}
        undecodable = dict(conn.execute(
            select(schema.receipt_text.c.seq, schema.receipt_text.c.undecodable)
            .where(schema.receipt_text.c.device_id == device)).all())
        found = {r.seq: r for r in conn.execute(
            select(receipt_fields).where(receipt_fields.c.device_id == device))}
        items: dict[int, list[dict]] = {}
        payments: dict[int, list[dict]] = {}
        for row in conn.execute(select(receipt_items).where(receipt_items.c.device_id == device)
                                .order_by(receipt_items.c.seq, receipt_items.c.line_no)):
            items.setdefault(row.seq, []).append(
                {"name": row.name, "qty": row.qty, "unit_price": row.unit_price,
                 "amount": row.amount})
        for row in conn.execute(select(receipt_payments)
                                .where(receipt_payments.c.device_id == device)
                                .order_by(receipt_payments.c.seq, receipt_payments.c.line_no)):
            payments.setdefault(row.seq, []).append({"type": row.type, "amount": row.amount})
    for _, seq in keys:
        record, lines = texts[(device, seq)]
        row = found.get(seq)
        fields = {"total": row.total if row else None, "currency": row.currency if row else None,
                  "receipt_no": row.receipt_no if row else None,
                  "member_id": row.member_id if row else None,
                  "payments": payments.get(seq, []), "items": items.get(seq, [])}
        out.append((seq, receipt_view(lines, record.get("barcodes", []),
                                      record.get("codes2d", []), fields),
                    undecodable.get(seq, 0)))
    return out


def report(jobs, sent, replies, demo, want):
    """The demo's findings as lines of text, and whether everything held."""
    status = demo.tap.status()
    up = status.get("uplink", {})
    capture = status.get("capture", {})
    rows, distinct = demo.stored()
    got = bytes(demo.printer.received)
    exact_down = got == sent
    exact_up = replies == bytes(demo.printer.replied)
    stored = stored_receipts(demo.engine, DEVICE)
    count = sum(len(view["lines"]) for _, view, _ in stored)
    undecoded = sum(1 for _, view, _ in stored for line in view["lines"] if line is None)
    undecodable = sum(u for _, _, u in stored)
    ok = (exact_down and exact_up and rows == want == distinct and
          status.get("receipts") == want)
    lines = [
        "jobs sent by the POS:          %d (%d bytes)" % (len(jobs), len(sent)),
        "bytes the printer got:         %d  identical: %s" % (len(got), "yes" if exact_down
                                                               else "NO"),
        "status replies to the POS:     %d bytes  identical: %s" % (
            len(replies), "yes" if exact_up else "NO"),
        "receipts in the jobs:          %d" % want,
        "receipts captured by the tap:  %d" % status.get("receipts", 0),
        "of them incomplete:            %d (capture policy %s, backlog full %d times, %d bytes "
        "skipped)" % (capture.get("incomplete", 0), capture.get("policy", "?"),
                      capture.get("behind", 0), capture.get("skipped_bytes", 0)),
        "records uploaded / acked:      %d / %d" % (up.get("records_sent", 0),
                                                    up.get("acked", 0)),
        "receipts stored by the server: %d (%d distinct, %s)" % (
            rows, distinct, "each once" if rows == distinct else "DUPLICATES"),
        "text lines stored:             %d (undecoded: %d; with bytes no code page defines, "
        "shown as \\xNN: %d)" % (count, undecoded, undecodable),
        "result:                        %s" % ("OK" if ok else "FAILED"),
    ]
    return lines, ok


def receipt_lines(jobs, demo):
    """Per stored receipt of the demo tap: its job, lines stored, undecodable lines, total and
    item count, as the server stored and extracted them."""
    counts = [(name, len(parse_stream(data, **demo.taps[0].options)[0])) for name, data in jobs]
    names = [name for name, n in counts for _ in range(n)]
    out = []
    for k, (seq, view, undecodable) in enumerate(stored_receipts(demo.engine, DEVICE)):
        name = names[k] if k < len(names) else "?"
        out.append("%-40s seq %-4d lines %-4d undecodable %-2d total %-12s items %d" % (
            name[-40:], seq, len(view["lines"]), undecodable, view["total"] or "-",
            len(view["items"])))
    return out


async def _main(args):
    workdir = args.dir or tempfile.mkdtemp(prefix="tilltap-demo-")
    os.makedirs(workdir, exist_ok=True)
    printer = printer_settings(args.profile, args.codepage_map, args.encoding,
                               args.printer_model)
    try:
        parser_options(printer)
    except ValueError as e:
        print("tilltap demo: %s" % e, file=sys.stderr)
        return 2
    try:
        jobs = job_files(args.jobs) if args.jobs else demo_streams(args.generated)
    except OSError as e:
        print("tilltap demo: %s" % e, file=sys.stderr)
        return 2
    if not jobs:
        print("tilltap demo: no receipts to replay (corpus not found at %s)" % CORPUS,
              file=sys.stderr)
        return 2
    want = expected_receipts(jobs, parser_options(printer))
    demo = Demo(workdir, args.uplink, args.port, args.upload_mode, printer,
                capture={"policy": args.capture_policy}, backlog=args.capture_backlog)
    try:
        try:
            await demo.start()
        except RuntimeError as e:      # a part that did not start says why (a port in use)
            print("tilltap demo: %s" % e, file=sys.stderr)
            return 2
        assert demo.server is not None
        print("tilltap demo: %s uplink, upload mode %s, server %s, working directory %s"
              % (args.uplink, args.upload_mode, demo.server.url, workdir), flush=True)
        sent, replies = await demo.replay(jobs)
        await demo.wait_stored(want, args.timeout)
        lines, ok = report(jobs, sent, replies, demo, want)
        if args.jobs:
            await demo.wait_extracted()
            print("\n".join(receipt_lines(jobs, demo)), flush=True)
        print("\n".join(lines), flush=True)
        if args.once:
            return 0 if ok else 1
        print("dashboard: %s/dashboard/  (login %s / %s); Ctrl-C to stop"
              % (demo.server.url, OPERATOR, demo.operator_password), flush=True)
        while True:
            await asyncio.sleep(3600)
    finally:
        await demo.close()
        if not args.dir and args.once:
            shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args):
    # SIGTERM ends the demo like Ctrl-C does: every part it started is stopped
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 0
