"""`tilltap demo`: the whole system on this PC, with real parts.

- the firmware (firmware/main.py, precompiled) on the MicroPython unix port, `host` board;
- `tilltap serve` with SQLite (and, with --uplink mqtt, a private Mosquitto with generated
  password and ACL files);
- a virtual printer that records every byte and answers status requests;
- a simulated POS that replays the shared corpus and python-escpos receipts, one TCP job each,
  asking the printer's status first as status-aware POS software does.

It prints what went where (bytes sent, bytes the printer got, identical or not; receipts
captured, acknowledged, stored) and the server's address. `--once` exits afterwards: status 0
only if pass-through was byte-exact in both directions and every receipt was stored once.
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

from sqlalchemy import func, select

import config as device_config

from tilltap import db, devices, operators
from tilltap.broker import Broker
from tilltap.hostrun import FirmwareProcess
from tilltap.parse_command import parse_stream
from tilltap.pos_simulator import send_jobs
from tilltap.serverproc import ServerProc
from tilltap.unixport import ROOT
from tilltap.virtual_printer import VirtualPrinter

DEVICE = "demo-tap"
OPERATOR = "demo"
UPLOAD_MODES = device_config.SCHEMA["upload.mode"][2]
CORPUS = os.environ.get("TILLTAP_CORPUS") or os.path.join(ROOT, "..", "shared", "corpus")


def add_arguments(ap):
    ap.add_argument("--once", action="store_true", help="replay once, report, exit")
    ap.add_argument("--uplink", choices=("http", "mqtt"), default="http")
    ap.add_argument("--upload-mode", choices=UPLOAD_MODES, default="full",
                    help="what leaves the tap: full (receipt and raw bytes), text, or fields "
                         "(only what the board's extractor found)")
    ap.add_argument("--port", type=int, default=8080, help="the server's HTTP port (0: any free)")
    ap.add_argument("--dir", default=None, help="working directory (default: a temporary one)")
    ap.add_argument("--generated", type=int, default=30,
                    help="python-escpos receipts to add to the corpus streams")
    ap.add_argument("--timeout", type=float, default=180.0,
                    help="seconds to wait for every receipt to be stored")
    ap.set_defaults(run=run)


def demo_streams(generated):
    """(name, bytes, parser options) of every job the POS sends: corpus files, then receipts
    made with python-escpos (when it is installed)."""
    jobs = []
    for path in sorted(glob.glob(os.path.join(CORPUS, "real", "*", "*.bin"))):
        rel = os.path.relpath(path, os.path.join(CORPUS, "real"))
        if rel.startswith(("eljojo__estrella", "grandchef__escpos-buffer/tsp-")):
            continue      # Star Line Mode jobs: the demo tap is set up for an Epson printer
        with open(path, "rb") as f:
            jobs.append((rel, f.read()))
    if generated:
        try:
            sys.path.insert(0, os.path.join(ROOT, "tests"))
            from receipt_factory import generate_receipts
            jobs += [("generated/%s" % r.name, r.stream)
                     for r in generate_receipts(seed=7, count=generated) if r.language != "zh"]
        except ImportError:
            pass
    return jobs


def expected_receipts(jobs):
    """How many receipts the jobs hold, by the server-side parser (each job ends one)."""
    return sum(len(parse_stream(data)[0]) for _, data in jobs)


class Demo:
    """Starts every part; `close()` stops them."""

    def __init__(self, workdir, uplink="http", port=None, upload_mode="full"):
        self.dir = workdir
        self.uplink = uplink
        self.upload_mode = upload_mode
        self.db_url = "sqlite:///" + os.path.join(workdir, "tilltap.db")
        self.engine = db.make_engine(self.db_url)
        self.port = port
        self.broker = self.server = self.tap = self.printer = None
        self.heapsize = None
        self.rom = False

    async def start_with_heap(self, heapsize, rom=False):
        """start() with the firmware's heap limited (-X heapsize), for the memory bench; rom:
        the firmware boots from a ROMFS image and heapsize is what it has beside it."""
        self.heapsize = heapsize
        self.rom = rom
        return await self.start()

    async def start(self):
        credential = devices.add(self.engine, DEVICE)
        self.operator_password = secrets.token_urlsafe(9)
        operators.add(self.engine, OPERATOR, self.operator_password)
        mqtt = None
        server_cfg = {"transport": self.uplink, "host": "127.0.0.1", "credential": credential,
                      "timeout_ms": 2000}
        if self.uplink == "mqtt":
            server_secret = devices.add(self.engine, "tilltap-server", role="server")
            passwd, acl = devices.write_mosquitto_files(self.engine, self.dir)
            self.broker = Broker(self.dir, passwd_acl=(passwd, acl)).start()
            mqtt = (self.broker.port, "tilltap-server", server_secret)
            server_cfg["port"] = self.broker.port
        self.server = ServerProc(self.db_url, mqtt=mqtt, port=self.port,
                                 log_path=os.path.join(self.dir, "server.log")).start()
        if self.uplink == "http":
            server_cfg["port"] = self.server.port
        self.printer = await VirtualPrinter().start()
        self.tap = FirmwareProcess(self.dir, self.printer.port, {
            "device_id": DEVICE, "server": server_cfg,
            "upload": {"idle_ms": 100, "mode": self.upload_mode}, "split": {"idle_ms": 1500}},
            heapsize=self.heapsize, rom=self.rom).start()
        return self

    async def replay(self, jobs):
        """Sends every job; returns (bytes sent, replies the POS got)."""
        return await send_jobs("127.0.0.1", self.tap.listen_port, [data for _, data in jobs])

    def stored(self):
        """(rows stored for the demo tap, distinct seqs among them)."""
        with self.engine.connect() as conn:
            rows, distinct = conn.execute(select(
                func.count(), func.count(func.distinct(db.receipts.c.seq))).where(
                db.receipts.c.device_id == DEVICE)).one()
        return rows, distinct

    async def wait_stored(self, want, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.tap.status()
            spool = status.get("spool", {})
            if (self.stored()[0] >= want and status.get("receipts", 0) >= want and
                    spool.get("count", 1) == 0):
                return True
            await asyncio.sleep(0.25)
        return False

    async def close(self):
        for part in (self.tap, self.server, self.broker):
            if part is not None:
                part.stop()
        if self.printer is not None:
            await self.printer.stop()
        self.engine.dispose()


def report(jobs, sent, replies, demo, want):
    """The demo's findings as lines of text, and whether everything held."""
    status = demo.tap.status()
    up = status.get("uplink", {})
    rows, distinct = demo.stored()
    got = bytes(demo.printer.received)
    exact_down = got == sent
    exact_up = replies == bytes(demo.printer.replied)
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
        "records uploaded / acked:      %d / %d" % (up.get("records_sent", 0),
                                                    up.get("acked", 0)),
        "receipts stored by the server: %d (%d distinct, %s)" % (
            rows, distinct, "each once" if rows == distinct else "DUPLICATES"),
        "result:                        %s" % ("OK" if ok else "FAILED"),
    ]
    return lines, ok


async def _main(args):
    workdir = args.dir or tempfile.mkdtemp(prefix="tilltap-demo-")
    os.makedirs(workdir, exist_ok=True)
    jobs = demo_streams(args.generated)
    if not jobs:
        print("tilltap demo: no receipts to replay (corpus not found at %s)" % CORPUS,
              file=sys.stderr)
        return 2
    want = expected_receipts(jobs)
    demo = Demo(workdir, args.uplink, args.port, args.upload_mode)
    try:
        await demo.start()
        print("tilltap demo: %s uplink, upload mode %s, server %s, working directory %s"
              % (args.uplink, args.upload_mode, demo.server.url, workdir), flush=True)
        sent, replies = await demo.replay(jobs)
        await demo.wait_stored(want, args.timeout)
        lines, ok = report(jobs, sent, replies, demo, want)
        print("\n".join(lines), flush=True)
        if args.once:
            return 0 if ok else 1
        print("dashboard: %s/dashboard/  (login %s / %s; API docs at %s/docs); Ctrl-C to stop"
              % (demo.server.url, OPERATOR, demo.operator_password, demo.server.url), flush=True)
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
