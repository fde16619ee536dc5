"""Small network helpers for starting real processes: free ports, waiting for them."""
import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (never 1883)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate() until it is truthy; raises TimeoutError after timeout seconds.

    The timeout is a guard against a hung component, not a measurement.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for %s" % what)
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
