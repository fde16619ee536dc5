"""Every `make bench` script runs in quick mode (TILLTAP_BENCH_QUICK=1: small inputs), so that
a bench cannot rot unnoticed: it must exit 0 and print figures. Targets are never asserted
here (quick figures are not comparable with them); `pytest -s` shows the figures.

e2e: the benches start the firmware on the unix port, servers and brokers.
"""
import glob
import os
import re
import subprocess
import sys

import pytest

from tilltap_host.unixport import ROOT

pytestmark = pytest.mark.e2e

SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "bench", "bench_*.py")))
TIMEOUT_S = 300   # a guard against a hung bench; quick runs take well under a minute
FIGURE = re.compile(r"[A-Za-z].*\d")   # a line naming something and giving a number


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: os.path.basename(s)[len("bench_"):-3])
def test_bench_runs_in_quick_mode(script):
    result = subprocess.run([sys.executable, script], cwd=ROOT, capture_output=True, text=True,
                            timeout=TIMEOUT_S, env=dict(os.environ, TILLTAP_BENCH_QUICK="1"))
    print(result.stdout)
    print(result.stderr, file=sys.stderr)
    assert result.returncode == 0, "%s exited with %d:\n%s" % (
        os.path.basename(script), result.returncode, result.stderr[-4000:])
    figures = [line for line in result.stdout.splitlines() if FIGURE.search(line)]
    assert figures, "%s printed no figure:\n%s" % (os.path.basename(script), result.stdout)


def test_bench_scripts_found():
    assert SCRIPTS, "no bench/bench_*.py under %s" % ROOT
