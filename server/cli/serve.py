"""`tilltap serve`: the HTTP ingest API and the MQTT consumer in one process, one database.

    tilltap serve --db sqlite:///tilltap.db --port 8080 \\
                  --mqtt-host broker --mqtt-user tilltap-server --mqtt-password-file pw

Several processes may run against one PostgreSQL (--db postgresql+psycopg://...): MQTT load is
shared through the broker's shared subscription (ingest/mqtt.py), HTTP behind any load
balancer. Each process needs its own --client-id (default: tilltap-serve-<hostname>-<port>,
stable across restarts): the broker disconnects a client when another logs in with its ID.
"""
import logging
import os
import signal
import socket
import ssl
import sys
import threading

import uvicorn

from tilltap.analysis import extraction, summaries
from tilltap.api.security import SecuritySettings
from tilltap.app import create_app
from tilltap.ingest.writer import Ingest
from tilltap.storage import database, migrations


def add_command(sub):
    from tilltap.cli import database_arguments
    ap = sub.add_parser("serve", help="run the server: HTTP API and MQTT consumer",
                        description="Receive receipts over HTTP and MQTT, store them once, "
                                    "acknowledge them.")
    database_arguments(ap)
    ap.add_argument("--host", default="127.0.0.1", help="HTTP listen address")
    ap.add_argument("--port", type=int, default=8080, help="HTTP port")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    ap.add_argument("--tls-key", help="private key of --tls-cert")
    ap.add_argument("--no-http", action="store_true", help="MQTT consumer only")
    ap.add_argument("--mqtt-host", help="broker to consume from (no MQTT without it)")
    ap.add_argument("--mqtt-port", type=int, default=1883)
    ap.add_argument("--mqtt-user", default="tilltap-server",
                    help="server account (tilltap devices add --role server NAME)")
    ap.add_argument("--mqtt-password-file",
                    help="file holding the account's credential (else $TILLTAP_MQTT_PASSWORD)")
    ap.add_argument("--mqtt-ca", help="CA file: connect to the broker with TLS, verified")
    ap.add_argument("--client-id", help="MQTT client ID, unique per process (default: "
                                        "tilltap-serve-<hostname>-<port>)")
    ap.add_argument("--monitor-token-file",
                    help="file holding the token that shows /healthz counters to monitoring "
                         "(Authorization: Bearer); else $TILLTAP_MONITOR_TOKEN; without one "
                         "only logged-in operators see them")
    ap.add_argument("--trusted-proxy", action="append", default=None, metavar="ADDRESS",
                    help="a reverse proxy (IP or network, repeatable; else "
                         "$TILLTAP_TRUSTED_PROXIES, comma-separated) whose X-Forwarded-Proto "
                         "and X-Forwarded-For are believed: Secure cookies behind TLS, the "
                         "client address for the login back-off")
    ap.add_argument("--log-level", default="warning")
    ap.set_defaults(run=run)


def _password(args):
    if args.mqtt_password_file:
        with open(args.mqtt_password_file) as f:
            return f.read().strip()
    return os.environ.get("TILLTAP_MQTT_PASSWORD")


def _security(args):
    """SecuritySettings from the options, else the environment."""
    token = os.environ.get("TILLTAP_MONITOR_TOKEN")
    if args.monitor_token_file:
        with open(args.monitor_token_file) as f:
            token = f.read().strip()
    proxies = args.trusted_proxy
    if proxies is None:
        proxies = [p for p in os.environ.get("TILLTAP_TRUSTED_PROXIES", "").split(",") if p]
    return SecuritySettings(monitor_token=token or None,
                            trusted_proxies=tuple(p.strip() for p in proxies))


def run(args):
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    engine = database.make_engine(args.db, schema=args.schema)
    for name in migrations.migrate(engine):
        logging.getLogger("tilltap.serve").info("migration %s done", name)
    ingest = Ingest(engine, check_devices=True)
    if summaries.ensure(engine):
        logging.getLogger("tilltap.serve").info("report summaries rebuilt (database from "
                                                "before them)")
    extractor = extraction.PendingExtractor(engine).start()  # fields of new receipts for reports
    consumer = None
    if args.mqtt_host:
        from tilltap.ingest.mqtt import Consumer
        client_id = args.client_id or "tilltap-serve-%s-%d" % (socket.gethostname(), args.port)
        consumer = Consumer(ingest, args.mqtt_host, args.mqtt_port, args.mqtt_user,
                            _password(args), client_id, tls_ca=args.mqtt_ca)
        consumer.start()
    status = (lambda: {"mqtt_connected": consumer.connected.is_set()}) if consumer else None
    try:
        if args.no_http:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            stop.wait()
        else:
            # proxy_headers off: the app believes forwarded headers from --trusted-proxy
            # only (uvicorn's default would trust any local process)
            config = uvicorn.Config(create_app(ingest, status, _security(args)),
                                    host=args.host, port=args.port, log_level=args.log_level,
                                    ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
                                    access_log=False, proxy_headers=False)
            print("tilltap serve: %s://%s:%d, database %s%s; Ctrl-C stops"
                  % ("https" if args.tls_cert else "http", args.host, args.port,
                     engine.url.render_as_string(hide_password=True),
                     ", MQTT %s:%d" % (args.mqtt_host, args.mqtt_port) if consumer else ""),
                  flush=True)
            try:
                uvicorn.Server(config).run()
            except ssl.SSLError as e:   # the certificate or key files do not load
                print("tilltap serve: --tls-cert/--tls-key: %s" % e, file=sys.stderr)
                return 2
    finally:
        if consumer:
            consumer.stop()
        extractor.close()
        ingest.close()
    return 0

