"""A private Mosquitto broker (tests, `tilltap demo`): own config, free port, persistence dir.

    broker = Broker(tmp_path, passwd_acl=(passwd_path, acl_path)).start()
    ... broker.port ...; broker.restart(); broker.reload(); broker.stop()
"""
import getpass
import os
import shutil
import signal
import subprocess

from tilltap_host.netutil import free_port, port_open, wait_for

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker:
    """One mosquitto process. passwd_acl: (password file, ACL file) to require logins; without
    it anonymous clients are allowed. tls: (ca, cert, key) PEM paths for a TLS listener."""

    def __init__(self, directory, passwd_acl=None, tls=None, port=None):
        self.dir = str(directory)
        self.port = port or free_port()
        self.proc = None
        self.conf = os.path.join(self.dir, "mosquitto-%d.conf" % self.port)
        self.log = os.path.join(self.dir, "mosquitto-%d.log" % self.port)
        lines = [
            # Run as us: started as root, mosquitto would switch to user "mosquitto" and lose
            # access to the test's files.
            "user %s" % getpass.getuser(),
            "per_listener_settings false",
            "listener %d 127.0.0.1" % self.port,
            "persistence true",
            "persistence_location %s/" % self.dir,
            "autosave_interval 1",
            # The ingest consumer acks after each group commit: let many messages be in flight.
            "max_inflight_messages 1000",
            "max_queued_messages 100000",
            "log_dest file %s" % self.log,
            "log_type error", "log_type warning", "log_type notice",
        ]
        if passwd_acl:
            lines += ["allow_anonymous false", "password_file %s" % passwd_acl[0],
                      "acl_file %s" % passwd_acl[1]]
        else:
            lines += ["allow_anonymous true"]
        if tls:
            lines += ["cafile %s" % tls[0], "certfile %s" % tls[1], "keyfile %s" % tls[2]]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: self.proc.poll() is not None or port_open(self.port), 10,
                 what="mosquitto on port %d" % self.port)
        if self.proc.poll() is not None:
            raise RuntimeError("mosquitto failed to start:\n" + self.read_log())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(10)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def reload(self):
        """SIGHUP: mosquitto re-reads its password and ACL files."""
        assert self.proc is not None, "mosquitto is not running"
        self.proc.send_signal(signal.SIGHUP)

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""
