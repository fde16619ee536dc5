"""The real firmware (firmware/main.py) on the MicroPython unix port with the `host` board.

Used by `tilltap demo` and by the end-to-end tests: the POS connects to the tap over TCP and
the tap forwards to a printer address, exactly as in network mode on the board.
"""
import json
import os
import subprocess
import time

from tilltap_host.netutil import free_port
from tilltap_host.unixport import firmware_command


class FirmwareProcess:
    """Runs the firmware in a subprocess; `status()` reads the figures it writes twice a second."""

    def __init__(self, workdir, printer_port, config=None, heapsize=None, listen_port=None,
                 rom=False, board=None):
        self.workdir = workdir
        self.listen_port = listen_port or free_port()
        self.config_path = os.path.join(workdir, "config.json")
        self.status_path = os.path.join(workdir, "status.json")
        self.log_path = os.path.join(workdir, "firmware.log")
        cfg: dict = {"mode": "network", "device_id": "host-tap",
                     "printer": {"host": "127.0.0.1", "port": printer_port},
                     "pos": {"listen_port": self.listen_port},
                     "spool": {"dir": os.path.join(workdir, "data", "spool")},
                     "split": {"idle_ms": 1000}}
        for section, values in (config or {}).items():
            if isinstance(values, dict):
                cfg.setdefault(section, {}).update(values)
            else:
                cfg[section] = values
        self.config = cfg
        self.heapsize = heapsize
        self.rom = rom     # boot from a ROMFS image, as a production board does (README)
        self.board = board   # settings over the host board's (unixport.firmware_command)
        self.proc = None

    def start(self, timeout=10.0):
        if os.path.exists(self.status_path):
            os.remove(self.status_path)
        os.makedirs(self.config["spool"]["dir"], exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f)
        cmd, env = firmware_command(self.workdir, self.config_path, self.status_path,
                                    self.heapsize, self.rom, self.board)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("firmware exited: " + self.log())
            if self.status():          # written from the loop, after the listener is bound
                return self
            time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError("firmware did not listen on %d: %s" % (self.listen_port, log))

    def status(self):
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
