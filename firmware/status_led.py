"""The board's status LED: the tap's health, readable by shop staff without a laptop.

    steady on (green)      forwarding, capture and uplink healthy
    slow blink (amber)     forwarding, but capture is off or receipts cannot be delivered
                           (server or Wi-Fi down: they wait in the spool)
    fast blink (red)       forwarding only: the configuration was refused, defaults in use
    off                    the firmware is not running (on boards with a bypass relay the
                           POS is then wired straight to the printer)

The LED is written only when what it shows changes (a NeoPixel write blocks for ~30 us).
"""
from .compat import const

HEALTHY = const(0)
DEGRADED = const(1)
FAILED = const(2)

# per state: blink half-period (0: steady) and colour, in a string rather than tuples (a
# constant tuple is a heap object once loaded, even from ROMFS)
_BLINK_MS = const(1000)         # DEGRADED; FAILED blinks 5 times faster
_COLOURS = b"\x00\x28\x00\x28\x19\x00\x28\x00\x00"    # RGB: green, amber, red


class StatusLed:
    """Shows a health state on a plain LED (pin) or a NeoPixel (pixel); both built by the
    caller from the board definition (see main.py), so tests pass fakes."""

    def __init__(self, pin=None, pixel=None, active_high=True):
        self._pin = pin
        self._pixel = pixel
        self._on_value = 1 if active_high else 0
        self._shown = None

    def show(self, state, now_ms):
        """Drive the LED for `state` at time now_ms (ticks); cheap when nothing changes."""
        half = 0 if state == HEALTHY else (_BLINK_MS if state == DEGRADED else _BLINK_MS // 5)
        lit = half == 0 or (now_ms // half) % 2 == 0
        key = state * 2 + lit
        if key == self._shown:
            return
        self._shown = key
        if self._pixel is not None:
            self._pixel[0] = tuple(_COLOURS[3 * state:3 * state + 3]) if lit else (0, 0, 0)
            self._pixel.write()
        elif self._pin is not None:
            self._pin.value(self._on_value if lit else 1 - self._on_value)
