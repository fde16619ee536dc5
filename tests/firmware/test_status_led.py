"""status_led.py: the LED pattern per health state, written only when it changes."""
from tilltap_fw.status_led import DEGRADED, FAILED, HEALTHY, StatusLed


class Pin:
    def __init__(self):
        self.writes = []

    def value(self, v):
        self.writes.append(v)


class Pixel:
    def __init__(self):
        self.colour = None
        self.writes = 0

    def __setitem__(self, index, colour):
        self.colour = colour

    def write(self):
        self.writes += 1


def test_healthy_is_steady_and_written_once():
    pin = Pin()
    led = StatusLed(pin=pin)
    for now in range(0, 5000, 10):
        led.show(HEALTHY, now)
    assert pin.writes == [1]


def test_degraded_blinks_slowly_failed_fast():
    pin = Pin()
    led = StatusLed(pin=pin, active_high=False)
    for now in range(0, 4000, 10):
        led.show(DEGRADED, now)
    assert pin.writes == [0, 1, 0, 1]            # lit is low on an active-low LED
    pin.writes = []
    for now in range(4000, 5000, 10):
        led.show(FAILED, now)
    assert len(pin.writes) == 5


def test_neopixel_shows_the_state_colour():
    pixel = Pixel()
    led = StatusLed(pixel=pixel)
    led.show(HEALTHY, 0)
    assert pixel.colour == (0, 40, 0) and pixel.writes == 1
    led.show(FAILED, 0)
    assert pixel.colour == (40, 0, 0)
    led.show(FAILED, 250)
    assert pixel.colour == (0, 0, 0) and pixel.writes == 3
