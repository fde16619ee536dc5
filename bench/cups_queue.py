"""A private CUPS scheduler with raw queues, as a shop PC prints receipts through CUPS
(`lpadmin -p NAME -v socket://HOST:9100`, `lp -o raw`), for bench_tap.py.

cupsd runs in the foreground from a temporary directory (its own configuration, spool and
logs, a free port on 127.0.0.1), so it touches nothing of the machine's CUPS. Run as root it
drops to the `lp` user, as a packaged cupsd does. `available()` says why not when it cannot
run (Debian: apt install cups).
"""
import os
import shutil
import subprocess
import tempfile
import time

from tilltap_host.netutil import free_port

_CUPSD_CONF = """Listen 127.0.0.1:%d
LogLevel warn
MaxLogSize 0
WebInterface No
Browsing Off
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""

_FILES_CONF = """ServerRoot {root}
RequestRoot {root}/spool
TempDir {root}/tmp
CacheDir {root}/cache
StateDir {root}/state
ErrorLog {root}/log/error_log
AccessLog {root}/log/access_log
PageLog {root}/log/page_log
{user}
Sandboxing Relaxed
FileDevice No
"""


def available():
    """None when a private cupsd can run here, else why not."""
    missing = [n for n in ("cupsd", "lpadmin", "lp") if not shutil.which(n)]
    if missing or not os.path.exists("/usr/lib/cups/backend/socket"):
        return "CUPS not installed (apt install cups)"
    return None


class Cups:
    """cupsd on a free port; queue(name, uri) adds a raw queue, submit(name, path) a job."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tilltap-cups-")
        self.port = free_port()
        self.proc = None

    def start(self, timeout=15.0):
        for sub in ("spool", "tmp", "cache", "state", "log", "ppd"):
            os.makedirs(os.path.join(self.dir, sub))
        user = "User lp\nGroup lp" if os.geteuid() == 0 else ""
        with open(os.path.join(self.dir, "cupsd.conf"), "w") as f:
            f.write(_CUPSD_CONF % self.port)
        with open(os.path.join(self.dir, "cups-files.conf"), "w") as f:
            f.write(_FILES_CONF.format(root=self.dir, user=user))
        for path, _, _ in os.walk(self.dir):
            os.chmod(path, 0o777)          # the scheduler's jobs run as lp
        self.proc = subprocess.Popen(
            ["cupsd", "-f", "-c", os.path.join(self.dir, "cupsd.conf"),
             "-s", os.path.join(self.dir, "cups-files.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("cupsd exited: " + self.log())
            if subprocess.run(["lpstat", "-h", self.server(), "-r"], capture_output=True,
                              text=True).stdout.strip() == "scheduler is running":
                return self
            time.sleep(0.1)
        raise RuntimeError("cupsd did not start: " + self.log())

    def server(self):
        return "127.0.0.1:%d" % self.port

    def queue(self, name, uri):
        """A raw queue (no driver: the bytes go to the printer as they are)."""
        subprocess.run(["lpadmin", "-h", self.server(), "-p", name, "-E", "-v", uri],
                       check=True, capture_output=True)

    def submit(self, name, path):
        subprocess.run(["lp", "-h", self.server(), "-d", name, "-o", "raw", path], check=True,
                       capture_output=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "log", "error_log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
