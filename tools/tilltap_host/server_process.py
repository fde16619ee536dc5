"""`tilltap serve` in a subprocess on a free port, for end-to-end tests and the bench.

    srv = ServerProc(url, schema, mqtt=(port, user, password)).start()
    ... srv.port ...; srv.kill(); srv.start(); srv.stop()

wrapper: a Python file run instead of `tilltap serve` (fault-injection tests wrap the
server with a hook; the wrapper gets the same arguments). The server gets a monitoring token
(TILLTAP_MONITOR_TOKEN) so that health() sees its counters.
"""
import json
import os
import secrets
import subprocess
import sys
import urllib.request

from tilltap_host.netutil import free_port, wait_for
from tilltap_host.unixport import ROOT


class ServerProc:
    def __init__(self, db_url, schema=None, mqtt=None, port=None, client_id=None, wrapper=None,
                 log_path=None, env=None, extra_args=()):
        self.port = port or free_port()
        self.args = ["--db", db_url, "--port", str(self.port), "--log-level", "warning"]
        if schema:
            self.args += ["--schema", schema]
        self.mqtt = mqtt
        if mqtt:
            self.args += ["--mqtt-host", "127.0.0.1", "--mqtt-port", str(mqtt[0]),
                          "--mqtt-user", mqtt[1],
                          "--client-id", client_id or "tilltap-test-%d" % self.port]
        self.args += list(extra_args)
        self.env = dict(os.environ)
        if mqtt:
            self.env["TILLTAP_MQTT_PASSWORD"] = mqtt[2]
        # a token of its own (not one inherited from a server started by hand): readiness is
        # this server showing its counters
        self.env["TILLTAP_MONITOR_TOKEN"] = secrets.token_urlsafe(16)
        self.env.update(env or {})
        self.monitor_token = self.env["TILLTAP_MONITOR_TOKEN"]
        self.wrapper = wrapper
        self.log_path = log_path or os.devnull
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, wait=True):
        entry = [self.wrapper] if self.wrapper else ["-m", "tilltap.cli", "serve"]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable] + entry + self.args, cwd=ROOT,
                                     env=self.env, stdout=self._log, stderr=self._log)
        if wait:
            self.wait_ready()
        return self

    def health(self):
        """/healthz with its counters, None while the server does not answer."""
        try:
            request = urllib.request.Request(
                self.url + "/healthz", headers={"Authorization": "Bearer " + self.monitor_token})
            with urllib.request.urlopen(request, timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def wait_ready(self):
        proc = self.proc
        assert proc is not None, "start() first"

        def ready():
            if proc.poll() is not None:
                raise RuntimeError("tilltap serve exited with %s: %s"
                                   % (proc.returncode, self.log_tail() or "(no output)"))
            h = self.health()
            # only this server knows the token and shows "ingest": another process answering on
            # the port (a tilltap serve started by hand) is not ready, and this one then exits
            # with "address already in use"
            return h and "ingest" in h and (not self.mqtt or h.get("mqtt_connected"))
        wait_for(ready, 30, what="tilltap serve on port %d" % self.port)

    def log_tail(self, lines=5):
        """The last lines the server wrote (why it exited), "" without a log file."""
        if self.log_path == os.devnull:
            return ""
        try:
            with open(self.log_path, errors="replace") as f:
                return "\n".join(f.read().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self):
        """SIGKILL: no clean-up, as a crash or power cut would do."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        self.wait_exit()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
        self.wait_exit()

    def wait_exit(self):
        if self.proc:
            self.proc.wait(30)
            self._log.close()
        self.proc = None
