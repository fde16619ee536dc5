"""Wi-Fi and wall-clock time on the board, without ever waiting in the forwarding loop.

network.WLAN.connect() returns at once and the ESP32 driver re-associates by itself after a
drop, so step() only looks at the link and nudges the driver when it gave up (wrong password,
no access point). NTP runs once the link is up: ntptime waits at most its 1 s timeout, and only
in an idle gap (step() is called from the uplink's work).
"""
import time

_RETRY_MS = 30000
_NTP_RETRY_MS = 60000


class Network:
    """The station interface, connecting in the background; `synced` once NTP set the clock."""

    def __init__(self, cfg):
        import network  # board-only modules, imported here so the module imports anywhere
        import ntptime

        self._network = network
        self._ntptime = ntptime
        self._ssid = cfg["wifi"]["ssid"]
        self._password = cfg["wifi"]["password"]
        self._wlan = network.WLAN(network.STA_IF)
        self._wlan.active(True)
        ntptime.host = cfg["ntp"]["host"]
        ntptime.timeout = 1
        self.synced = False
        now = time.ticks_ms()
        self._retry_at = time.ticks_add(now, cfg["wifi"]["connect_timeout_ms"])
        self._ntp_at = now
        if self._ssid:
            self._wlan.connect(self._ssid, self._password)

    def step(self, now):
        """True when the link is up (and NTP was tried); never blocks beyond NTP's timeout."""
        if not self._ssid:
            return False
        if not self._wlan.isconnected():
            if time.ticks_diff(now, self._retry_at) >= 0:
                self._retry_at = time.ticks_add(now, _RETRY_MS)
                if self._wlan.status() != self._network.STAT_CONNECTING:
                    self._wlan.connect(self._ssid, self._password)
            return False
        if not self.synced and time.ticks_diff(now, self._ntp_at) >= 0:
            try:
                self._ntptime.settime()
                self.synced = True
            except (OSError, OverflowError):
                self._ntp_at = time.ticks_add(now, _NTP_RETRY_MS)
        return True

    def status(self):
        return {"connected": self._wlan.isconnected(), "synced": self.synced}
