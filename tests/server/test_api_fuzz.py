"""schemathesis against the OpenAPI schema of a real `tilltap serve` (issue 15): every route, with
an operator's login, then the device routes with a device's credential, over the known shop
data; no answer may be a server error (5xx) or a status code the schema does not list for the
route, on SQLite and PostgreSQL. In `make soak` only.

    TILLTAP_SOAK=1 .venv/bin/pytest -q -m soak tests/server/test_api_fuzz.py -s

TILLTAP_FUZZ_EXAMPLES sets the test cases per operation and phase (default 100). The run's
figures are printed: test cases generated, server errors and all failures, per pass.
"""
import json
import os
import subprocess
import sys

import analysis_data as data
import pytest

from tilltap.accounts import operators
from tilltap.storage import database
from tilltap_fw import protocol
from tilltap_host.server_process import ServerProc

OPERATOR = ("ops", "correct horse battery")
EXAMPLES = int(os.environ.get("TILLTAP_FUZZ_EXAMPLES", "100"))
SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")
DEVICE_PATHS = "^(%s|%s)$" % (protocol.HTTP_INGEST_PATH, protocol.HTTP_TELEMETRY_PATH)

pytestmark = pytest.mark.soak


@pytest.fixture
def server(db_target, tmp_path):
    engine = database.make_engine(db_target.url, schema=db_target.schema)
    secrets = data.load(engine)
    operators.add(engine, *OPERATOR)
    engine.dispose()
    srv = ServerProc(db_target.url, db_target.schema,
                     log_path=str(tmp_path / "server.log")).start()
    yield srv, secrets
    srv.stop()


def _schemathesis(srv, tmp_path, name, auth, paths):
    """One schemathesis run; its JSON report."""
    report = tmp_path / ("%s.json" % name)
    subprocess.run([SCHEMATHESIS, "run", srv.url + "/openapi.json", "--checks",
                    "not_a_server_error,status_code_conformance", "--max-examples",
                    str(EXAMPLES), "--seed", "15", "--workers", "1", "--auth", "%s:%s" % auth,
                    "--no-color",
                    "--report", "json", "--report-json-path", str(report)] + paths,
                   stdout=subprocess.DEVNULL, check=False, timeout=3600,
                   cwd=tmp_path)      # its cache of crashes stays out of the work tree
    with open(report) as f:
        return json.load(f)


def test_no_route_answers_a_server_error(server, tmp_path, db_target):
    srv, secrets = server
    runs = {"operator": _schemathesis(srv, tmp_path, "operator", OPERATOR,
                                      ["--exclude-path-regex", DEVICE_PATHS]),
            "device": _schemathesis(srv, tmp_path, "device",
                                    (data.CORNER, secrets[data.CORNER]),
                                    ["--include-path-regex", DEVICE_PATHS])}
    for name, run in runs.items():
        cases = run["test_cases"]
        print("schemathesis %s %s: %d operations, %d test cases, %d server errors, "
              "failures: %s" % (db_target.kind, name, run["operations"]["tested"],
                                cases["generated"],
                                sum(f["count"] for f in run["failures"] if f["code"] == "ST101"),
                                [(f["title"], f["operations"]) for f in run["failures"]]))
    for name, run in runs.items():
        assert run["complete"] and not run["errors"], (name, run["errors"])
        assert run["operations"]["tested"] >= (2 if name == "device" else 14)
        assert run["failures"] == [], (name, run["failures"])
