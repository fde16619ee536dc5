"""TLS end to end: the firmware's uplink (MicroPython unix port, mbedTLS, verifying the broker's
certificate against the deployed CA) delivers through a Mosquitto TLS listener to the server,
whose consumer also verifies the broker. A device given the wrong CA delivers nothing."""
import json
import os
import subprocess

from sqlalchemy import select
from unixport import ROOT, micropython_command, micropython_path

from tilltap.accounts import broker_files, devices
from tilltap.storage import database, schema
from tilltap_host.broker import Broker
from tilltap_host.server_process import ServerProc

DEVICE_MAIN = os.path.join(ROOT, "tests", "support", "device_main.py")


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_ca_and_broker_cert(d, name="TillTap-test-CA"):
    """A CA and a broker certificate for localhost/127.0.0.1 (what the README tells users)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
             "/CN=" + name, "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
             "broker.key", "-out", "broker.csr", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "30", "-extfile", "san.ext", "-out", "broker.pem", cwd=d)
    return [os.path.join(d, n) for n in ("ca.pem", "broker.pem", "broker.key")]


def _device(tmp, opts):
    path = tmp / ("device-%s.json" % opts["device"])
    path.write_text(json.dumps(opts))
    out = subprocess.run([micropython_command(), DEVICE_MAIN, str(path)], capture_output=True,
                         text=True, timeout=180, env=dict(os.environ,
                                                          MICROPYPATH=micropython_path()),
                         cwd=ROOT)
    assert out.stdout.strip(), out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mqtt_over_verified_tls_end_to_end(tmp_path):
    (tmp_path / "pki").mkdir()
    (tmp_path / "other").mkdir()
    ca, cert, key = make_ca_and_broker_cert(str(tmp_path / "pki"))
    wrong_ca = make_ca_and_broker_cert(str(tmp_path / "other"), "Someone-else")[0]
    url = "sqlite:///%s/tilltap.db" % tmp_path
    engine = database.make_engine(url)
    secret = devices.add(engine, "tls1")
    server_secret = devices.add(engine, "tilltap-server", role="server")
    passwd, acl = broker_files.write(engine, str(tmp_path))
    broker = Broker(tmp_path, passwd_acl=(passwd, acl), tls=(ca, cert, key)).start()
    server = ServerProc(url, mqtt=(broker.port, "tilltap-server", server_secret),
                        extra_args=["--mqtt-ca", ca],
                        log_path=str(tmp_path / "server.log")).start()
    try:
        base = {"transport": "mqtt", "host": "localhost", "port": broker.port,
                "credential": secret, "records": 25, "timeout_ms": 3000, "device": "tls1"}
        spool = tmp_path / "spool"
        spool.mkdir()
        refused = _device(tmp_path, dict(base, spool=str(spool), tls_ca=wrong_ca,
                                         until="failures:2"))
        assert refused["uplink"]["acked"] == 0 and refused["uplink"]["failures"] >= 2
        with engine.connect() as conn:
            assert conn.execute(select(schema.receipts.c.seq)).first() is None
        done = _device(tmp_path, dict(base, spool=str(spool), tls_ca=ca, records=0))
        assert done["done"], done
        with engine.connect() as conn:
            seqs = [r.seq for r in conn.execute(select(schema.receipts.c.seq).where(
                schema.receipts.c.device_id == "tls1").order_by(schema.receipts.c.seq))]
        assert seqs == list(range(1, 26))
    finally:
        server.stop()
        broker.stop()
        engine.dispose()
