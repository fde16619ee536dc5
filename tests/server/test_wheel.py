"""`pip install .` gives a working server outside the checkout: the wheel holds the server
(tilltap), the firmware modules it shares (tilltap_fw) and the dashboard, and nothing of the
host tools."""
import os
import subprocess
import sys
import sysconfig
import urllib.request

import pytest

from tilltap_host.netutil import free_port, wait_for
from tilltap_host.unixport import ROOT

pytestmark = pytest.mark.e2e


def _run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_wheel_serves_the_api_and_dashboard_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(dist), ROOT])
    (wheel,) = list(dist.glob("tilltap-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site,
          str(wheel)])
    # The server's dependencies from this environment's site-packages, without the checkout's
    # own packages (tilltap, tilltap_fw, tilltap_host and their editable installs).
    deps = tmp_path / "deps"
    deps.mkdir()
    here = sysconfig.get_paths()["purelib"]
    for name in os.listdir(here):
        if not name.startswith(("tilltap", "__editable__")) and not name.endswith(".pth"):
            os.symlink(os.path.join(here, name), deps / name)
    with open(os.path.join(site, "deps.pth"), "w") as f:
        f.write(str(deps) + "\n")
    python = str(venv / "bin" / "python")
    where = _run([python, "-c", ("import tilltap, tilltap_fw.escpos_parser as p; "
                                 "print(tilltap.__file__); print(p.__file__)")],
                 cwd=str(tmp_path))
    assert all(line.startswith(site) for line in where.split()), where
    commands = _run([python, "-m", "tilltap.cli", "--help"], cwd=str(tmp_path)).split()
    assert "serve" in commands and "demo" not in commands and "board" not in commands
    port = free_port()
    server = subprocess.Popen([python, "-m", "tilltap.cli", "serve", "--db",
                               "sqlite:///%s" % (tmp_path / "t.db"), "--port", str(port)],
                              cwd=str(tmp_path), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        def get(path):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                            timeout=2) as r:
                    return r.status, r.read()
            except OSError:
                return None
        assert wait_for(lambda: get("/healthz"), 30, what="the wheel's tilltap serve")[0] == 200
        status, page = get("/dashboard/")
        assert status == 200 and b"<html" in page.lower()
    finally:
        server.terminate()
        server.wait(10)
