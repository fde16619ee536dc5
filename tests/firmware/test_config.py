"""Configuration: defaults for everything optional, a clear message naming a bad field."""
import json

import fwtest

from tilltap_fw import config
from tilltap_fw.capture import keeps_pace


def _error(given):
    try:
        config.validate(given)
    except config.ConfigError as e:
        return str(e)
    raise AssertionError("accepted: %r" % (given,))


def test_empty_config_gets_every_default():
    cfg = config.validate({})
    assert cfg == config.defaults()
    assert cfg["mode"] == "inline" and cfg["printer"]["baudrate"] == 115200
    assert cfg["spool"]["when_full"] == "drop_oldest"


def test_given_values_override_defaults():
    cfg = config.validate({"printer": {"encoding": "gb18030", "baudrate": 38400},
                           "upload": {"mode": "text"}})
    assert cfg["printer"]["encoding"] == "gb18030"
    assert cfg["printer"]["baudrate"] == 38400
    assert cfg["printer"]["profile"] == "epson"
    assert cfg["upload"]["mode"] == "text"


def test_errors_name_the_field():
    assert _error({"printer": {"baudrate": "fast"}}).startswith("printer.baudrate: must be an")
    assert _error({"printer": {"baudrate": 7}}).startswith("printer.baudrate: must be between")
    assert _error({"printer": {"baudrate": True}}).startswith("printer.baudrate:")
    assert _error({"mode": "sniff"}).startswith("mode: must be one of")
    assert _error({"wifi": {"ssdi": "x"}}) == "wifi.ssdi: unknown setting"
    assert _error({"colour": 1}) == "colour: unknown setting"
    assert _error({"wifi": "home"}) == "wifi: must be an object"
    assert _error({"mode": "network"}) == "printer.host: required in network mode"
    assert _error([1]).startswith("(top level)")


def test_printer_model_must_be_one_of_escpos_printer_db():
    cfg = config.validate({"printer": {"model": "POS-5890"}})
    assert cfg["printer"]["model"] == "POS-5890" and cfg["split"]["tear_off"] == "auto"
    assert _error({"printer": {"model": "TM-T88"}}).startswith("printer.model: 'TM-T88' is not")
    assert _error({"split": {"tear_off": "yes"}}).startswith("split.tear_off: must be one of")
    assert _error({"split": {"tear_lines": 0}}).startswith("split.tear_lines: must be between")


def test_load_reports_unreadable_and_bad_json():
    d = fwtest.tmpdir("cfg")
    try:
        path = d + "/config.json"
        with open(path, "w") as f:
            f.write("{not json")
        for bad in (path, d + "/missing.json"):
            try:
                config.load(bad)
            except config.ConfigError as e:
                assert str(e).startswith("(file) " + bad)
            else:
                raise AssertionError(bad)
        with open(path, "w") as f:
            f.write(json.dumps({"split": {"idle_ms": 1500}}))
        assert config.load(path)["split"]["idle_ms"] == 1500
    finally:
        fwtest.rmtree(d)


def test_capture_policy():
    """auto is the default (README, The tap's capture policy): forwarding_first where the
    backlog holds a burst (256 KiB: a PC, a board with PSRAM), keep_pace with a chip's 4 KiB;
    either can be chosen; anything else is refused, naming the field."""
    assert config.defaults()["capture"] == {"policy": "auto"}
    assert keeps_pace("auto", 4096) and keeps_pace("auto", bytearray(4096))
    assert keeps_pace("auto", 256 * 1024 - 1)
    assert not keeps_pace("auto", 256 * 1024) and not keeps_pace("auto", bytearray(256 * 1024))
    assert keeps_pace("keep_pace", 1 << 20) and not keeps_pace("forwarding_first", 4096)
    cfg = config.validate({"capture": {"policy": "forwarding_first"}})
    assert cfg["capture"]["policy"] == "forwarding_first"
    assert _error({"capture": {"policy": "fast"}}).startswith("capture.policy: must be one of")
    assert _error({"capture": {"policy": True}}).startswith("capture.policy: must be a string")
