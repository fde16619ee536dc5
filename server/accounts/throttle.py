"""Back-off for failed operator logins, per user name and per client address.

    throttle = LoginThrottle()
    wait = throttle.wait(username, address)   # seconds to refuse (429) before checking
    throttle.failed(username, address) / throttle.succeeded(username, address)

The first FREE_FAILURES failures of a key cost nothing (typos); each further one doubles the
wait, up to MAX_WAIT seconds, and a key is forgotten FORGET_AFTER seconds after its last
failure. There is no lockout: a wait always ends. Keys: the user name, the address, and the
pair. Guessing at a user's password from elsewhere, or at other names from the same address
(one shop's NAT), must not keep an operator out: a pair that logged in before is held back only
by the pair's own failures.
Per process: several `tilltap serve` behind one balancer each count their own.
"""
import threading
import time
from collections import OrderedDict

FREE_FAILURES = 5
MAX_WAIT = 60.0
FORGET_AFTER = 15 * 60.0
MAX_KEYS = 100_000      # bounds memory whatever names and addresses an attacker makes up


class LoginThrottle:
    """Failure counts and the wait they impose; thread-safe (login runs in a thread pool)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = OrderedDict()   # key -> (failures, time of the last)
        self._known = OrderedDict()      # (username, address) that logged in -> None

    def _wait_for(self, key, now):
        failures, last = self._failures.get(key, (0, now))
        if failures < FREE_FAILURES:
            return 0.0
        wait = min(MAX_WAIT, 2.0 ** (failures - FREE_FAILURES))
        return max(0.0, last + wait - now)

    def wait(self, username, address):
        """Seconds before this user may try again from this address (0: now)."""
        now = self.clock()
        with self._lock:
            keys: list[tuple] = [("pair", username, address)]
            if (username, address) not in self._known:
                keys += [("user", username), ("address", address)]
            return max(self._wait_for(key, now) for key in keys)

    def failed(self, username, address):
        """Counts a failed login against the user, the address and the pair."""
        now = self.clock()
        with self._lock:
            for key in (("user", username), ("address", address), ("pair", username, address)):
                failures, last = self._failures.pop(key, (0, now))
                if now - last > FORGET_AFTER:
                    failures = 0
                self._failures[key] = (failures + 1, now)
            while len(self._failures) > MAX_KEYS:
                self._failures.popitem(last=False)   # the longest unused first

    def succeeded(self, username, address):
        """A login: the counts of the user, address and pair start again, the pair is known."""
        with self._lock:
            for key in (("user", username), ("address", address), ("pair", username, address)):
                self._failures.pop(key, None)
            self._known.pop((username, address), None)
            self._known[(username, address)] = None
            while len(self._known) > MAX_KEYS:
                self._known.popitem(last=False)
