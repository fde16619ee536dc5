"""The tap on the host board while the server is down, slow, or accepts and never answers:
printing stays byte-exact in both directions, and every receipt is stored once when the server
is back."""
import asyncio

from corpus import corpus_files, need_corpus
from sqlalchemy import select
from tcpproxy import Proxy

from tilltap.accounts import devices
from tilltap.storage import database, schema
from tilltap_fw.receipt import parse_stream
from tilltap_host.firmware_process import FirmwareProcess
from tilltap_host.netutil import free_port, wait_for
from tilltap_host.pos_simulator import send_jobs
from tilltap_host.receipt_factory import generate_receipts
from tilltap_host.server_process import ServerProc
from tilltap_host.virtual_printer import VirtualPrinter

DEVICE = "outage-tap"


def _jobs():
    jobs = [open(p, "rb").read() for p in corpus_files()
            if "estrella" not in p and "/tsp-" not in p]
    return jobs + [r.stream for r in generate_receipts(seed=9, count=12) if r.language != "zh"]


def test_printing_unaffected_by_server_outages_and_every_receipt_stored_once(tmp_path):
    need_corpus()
    url = "sqlite:///%s/tilltap.db" % tmp_path
    engine = database.make_engine(url)
    credential = devices.add(engine, DEVICE)
    server_port = free_port()
    proxy = Proxy(server_port)
    jobs = _jobs()
    thirds = [jobs[0::3], jobs[1::3], jobs[2::3]]
    want = sum(len(parse_stream(j)[0]) for j in jobs)

    async def scenario():
        printer = await VirtualPrinter().start()
        tap = FirmwareProcess(str(tmp_path), printer.port, {
            "device_id": DEVICE, "upload": {"idle_ms": 50},
            "server": {"transport": "http", "host": "127.0.0.1", "port": proxy.port,
                       "credential": credential, "timeout_ms": 1000}}).start()
        server = ServerProc(url, port=server_port, log_path=str(tmp_path / "server.log"))
        try:
            sent = replies = b""
            # 1. server down (nothing listens behind the proxy)
            s, r = await send_jobs("127.0.0.1", tap.listen_port, thirds[0])
            sent, replies = sent + s, replies + r
            # 2. a server that accepts connections and never answers
            proxy.blackhole()
            s, r = await send_jobs("127.0.0.1", tap.listen_port, thirds[1])
            sent, replies = sent + s, replies + r
            # 3. a slow server: every chunk held 300 ms each way
            server.start()
            proxy.slow(0.3)
            s, r = await send_jobs("127.0.0.1", tap.listen_port, thirds[2])
            sent, replies = sent + s, replies + r
            await printer.read_all(len(sent))
            assert bytes(printer.received) == sent, tap.log()
            assert replies == bytes(printer.replied)
            # 4. the server is back at full speed: everything spooled drains, once
            proxy.forward()
            proxy.cut_all()
            await asyncio.get_running_loop().run_in_executor(None, lambda: wait_for(
                lambda: tap.status().get("spool", {}).get("count") == 0 and
                tap.status().get("receipts") == want, 120, what="spool drained"))
            return tap.status()
        finally:
            tap.stop()
            server.stop()
            await printer.stop()

    status = asyncio.run(scenario())
    proxy.close()
    with engine.connect() as conn:
        seqs = [r.seq for r in conn.execute(select(schema.receipts.c.seq).where(
            schema.receipts.c.device_id == DEVICE).order_by(schema.receipts.c.seq))]
    assert seqs == list(range(1, want + 1))           # every receipt, once, none missing
    assert status["uplink"]["failures"] > 0           # the outages really happened
    assert status["capture_errors"] == 0
