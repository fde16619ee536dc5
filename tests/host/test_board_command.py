"""`tilltap board`: the esptool and mpremote commands a real board gets (printed, not run)."""
import json
import os
import subprocess

from unixport import VENV_BIN

TILLTAP = os.path.join(VENV_BIN, "tilltap")


def tilltap(*args):
    return subprocess.run([TILLTAP, "board"] + list(args), capture_output=True, text=True,
                          timeout=120)


def test_flash_uses_each_chips_offset():
    offsets = {"esp32-devkitc": ("esp32", "0x1000"), "esp32-s3-devkitc": ("esp32s3", "0x0"),
               "esp32-c3": ("esp32c3", "0x0")}
    for board, (chip, offset) in offsets.items():
        out = tilltap("flash", "--board", board, "--port", "/dev/ttyUSB0", "--firmware", "mp.bin",
                      "--dry-run")
        assert out.returncode == 0, out.stderr
        erase, write = out.stdout.splitlines()
        assert erase.endswith("--chip %s --port /dev/ttyUSB0 erase-flash" % chip)
        assert write.endswith("write-flash %s mp.bin" % offset)


def test_deploy_copies_precompiled_firmware_board_and_config(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"wifi": {"ssid": "shop"}, "server": {"host": "tilltap.local"}}))
    out = tilltap("deploy", "--board", "esp32-devkitc", "--port", "/dev/ttyUSB0", "--config",
                  str(cfg), "--dry-run")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for name in ("escpos_parser.mpy", "spool.mpy", "tap.mpy", "main.mpy", "__init__.mpy"):
        assert "tilltap_fw/" + name in text
    assert "protocol_check.mpy" not in text          # the server's half stays off the board
    assert ":lib/tilltap_fw/" in text
    assert "main.py :main.py" in text and "board.json :board.json" in text
    assert str(cfg) + " :config.json" in text


def test_deploy_romfs_writes_the_firmware_image_instead_of_lib(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"wifi": {"ssid": "shop"}, "server": {"host": "tilltap.local"}}))
    out = tilltap("deploy", "--board", "esp32-devkitc", "--port", "/dev/ttyUSB0", "--config",
                  str(cfg), "--romfs", "--dry-run")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert " romfs deploy " in lines[0] and lines[0].endswith("firmware.romfs")
    assert ":lib/" not in out.stdout and "main.py :main.py" in out.stdout
    assert str(cfg) + " :config.json" in out.stdout


def test_deploy_refuses_a_bad_config_naming_the_field(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"printer": {"baudrate": 12}}))
    out = tilltap("deploy", "--board", "esp32-devkitc", "--port", "/dev/ttyUSB0", "--config",
                  str(cfg), "--dry-run")
    assert out.returncode == 2
    assert "printer.baudrate: must be between" in out.stderr
    cfg.write_text(json.dumps({"mode": "inline"}))
    out = tilltap("deploy", "--board", "esp32-c3", "--port", "/dev/ttyUSB0", "--config",
                  str(cfg), "--dry-run")
    assert out.returncode != 0 and "not possible on esp32-c3" in out.stderr


def test_provision_registers_the_device_and_writes_its_credential(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"server": {"host": "tilltap.local"}}))
    url = "sqlite:///%s/server.db" % tmp_path
    out = tilltap("provision", "--device", "shop1-till2", "--config", str(cfg), "--db", url)
    assert out.returncode == 0, out.stderr
    written = json.loads(cfg.read_text())
    assert written["device_id"] == "shop1-till2"
    assert written["server"]["host"] == "tilltap.local"
    from tilltap.accounts import devices
    from tilltap.storage import database
    engine = database.make_engine(url)
    assert devices.verify(engine, "shop1-till2", written["server"]["credential"])
    again = tilltap("provision", "--device", "shop1-till2", "--config", str(cfg), "--db", url)
    assert again.returncode == 2 and "already registered" in again.stderr
