"""What MicroPython has and CPython lacks, for the firmware modules the server imports too.

const() is MicroPython's compile-time constant (`_NAME = const(1)` costs no heap on the board;
the compiler recognises the name `const` wherever it comes from). The ticks functions are the
board's wrapping millisecond and microsecond clocks; on CPython a monotonic clock that never
wraps. sleep_ms sleeps. Nothing else belongs here.
"""
import time

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

try:
    # MicroPython's time module; CPython's (and its stubs) have none of these
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms, ticks_us
except ImportError:  # CPython
    def ticks_ms():
        return time.monotonic_ns() // 1000000

    def ticks_us():
        return time.monotonic_ns() // 1000

    def ticks_add(t, delta):
        return t + delta

    def ticks_diff(a, b):
        return a - b

    def sleep_ms(ms):
        time.sleep(ms / 1000)
