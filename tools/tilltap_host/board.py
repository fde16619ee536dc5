"""`tilltap board ...`: flash MicroPython, deploy the firmware and its configuration, open a REPL.

    tilltap board flash  --board esp32-devkitc --port /dev/ttyUSB0 --firmware ESP32_GENERIC.bin
    tilltap board deploy --board esp32-devkitc --port /dev/ttyUSB0 --config config.json [--romfs]
    tilltap board provision --device shop12-till1 --config config.json [--db URL]
    tilltap board repl   --port /dev/ttyUSB0
    tilltap board logs   --port /dev/ttyUSB0

`--dry-run` prints the commands instead of running them. The Makefile's flash, deploy, repl
and logs targets call these.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

from tilltap_fw import config as device_config
from tilltap_host.unixport import BOOT_STUB, PACKAGE, ROOT, build_romfs, compile_firmware

BOARDS = os.path.join(ROOT, "boards")
_ESPTOOL_CHIP = {"esp32": "esp32", "esp32s3": "esp32s3", "esp32c3": "esp32c3"}


def board_names():
    return sorted(n for n in os.listdir(BOARDS) if os.path.isfile(os.path.join(BOARDS, n,
                                                                                "board.json")))


def load_board(name):
    path = os.path.join(BOARDS, name, "board.json")
    if not os.path.isfile(path):
        raise SystemExit("tilltap board: unknown board %r (known: %s)"
                         % (name, ", ".join(board_names())))
    with open(path) as f:
        return json.load(f)


def add_command(parent):
    ap = parent.add_parser("board", help="flash, deploy to and talk to a board",
                           description="Flash MicroPython, deploy the firmware and "
                                       "configuration, open a REPL.")
    sub = ap.add_subparsers(dest="board_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("provision", help="register a device with the server and write its "
                                         "ID and credential into a config file")
    p.add_argument("--device", required=True, help="the device ID to register")
    p.add_argument("--config", required=True, help="device configuration JSON to update")
    p.add_argument("--db", default=os.environ.get("TILLTAP_DB", "sqlite:///tilltap.db"),
                   help="the server's database URL (default $TILLTAP_DB or sqlite:///tilltap.db)")
    for name, helptext in (("flash", "erase the flash and write a MicroPython image"),
                           ("deploy", "copy the precompiled firmware, board and config"),
                           ("repl", "open the board's REPL"),
                           ("logs", "attach to the running firmware's console")):
        p = sub.add_parser(name, help=helptext)
        if name in ("flash", "deploy"):
            p.add_argument("--board", required=True, help="one of: " + ", ".join(board_names()))
        p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
        p.add_argument("--dry-run", action="store_true", help="print the commands only")
        if name == "flash":
            p.add_argument("--firmware", required=True,
                           help="MicroPython .bin for the chip (micropython.org/download)")
            p.add_argument("--baud", type=int, default=460800)
        if name == "deploy":
            p.add_argument("--config", required=True, help="device configuration JSON")
            p.add_argument("--romfs", action="store_true",
                           help="write the firmware as a ROMFS image to the board's romfs "
                                "partition (a MicroPython build with one: README)")
    ap.set_defaults(run=run)


def _bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def flash_commands(board, port, firmware, baud=460800):
    """esptool commands that put a MicroPython image on the board, at its chip's offset."""
    chip = _ESPTOOL_CHIP.get(board["chip"])
    if chip is None:
        raise SystemExit("tilltap board: %s is not flashed with esptool" % board["name"])
    esptool = _bin("esptool")
    return [[esptool, "--chip", chip, "--port", port, "erase-flash"],
            [esptool, "--chip", chip, "--port", port, "--baud", str(baud), "write-flash",
             board["flash_offset"], firmware]]


def deploy_commands(board, port, config_path, build_dir, romfs=False):
    """mpremote commands that copy the .mpy firmware (or, romfs: write its ROMFS image, code
    then runs from flash and leaves the heap), board.json and config.json."""
    with open(config_path) as f:
        cfg = device_config.validate(json.load(f))   # refuse a bad config before copying
    if cfg["mode"] not in board["modes"]:
        raise SystemExit("tilltap board: mode %r is not possible on %s (possible: %s)"
                         % (cfg["mode"], board["name"], ", ".join(board["modes"])))
    stub = os.path.join(build_dir, "main.py")
    with open(stub, "w") as f:
        f.write(BOOT_STUB)
    mpremote = _bin("mpremote")
    if romfs:
        image = build_romfs(os.path.join(build_dir, "firmware.romfs"))
        cmds = [[mpremote, "connect", port, "romfs", "deploy", image]]
    else:
        package = os.path.join(compile_firmware(os.path.join(build_dir, "lib")), PACKAGE)
        files = sorted(os.path.join(package, f) for f in os.listdir(package))
        cmds = [[mpremote, "connect", port, "fs", "mkdir", ":lib"],
                [mpremote, "connect", port, "fs", "mkdir", ":lib/" + PACKAGE]]
        cmds.append([mpremote, "connect", port, "fs", "cp"] + files + [":lib/%s/" % PACKAGE])
    cmds.append([mpremote, "connect", port, "fs", "cp", stub, ":main.py"])
    cmds.append([mpremote, "connect", port, "fs", "cp", os.path.join(BOARDS, board["name"],
                                                                      "board.json"),
                 ":board.json"])
    cmds.append([mpremote, "connect", port, "fs", "cp", config_path, ":config.json"])
    cmds.append([mpremote, "connect", port, "reset"])
    return cmds


def provision(db_url, device, config_path):
    """Registers the device and writes its ID and credential into the config file (atomically).

    The config is validated before anything is registered, so a bad file changes nothing.
    """
    from tilltap.accounts import devices
    from tilltap.storage import database
    try:
        with open(config_path) as f:
            given = json.load(f)
    except FileNotFoundError:
        given = {}
    given["device_id"] = device
    given.setdefault("server", {})["credential"] = "(set below)"
    device_config.validate(given)
    tmp = config_path + ".tmp"
    # opened before the device is registered: a folder that cannot be written fails here, not
    # after the credential exists (it is shown once and the ID could not be registered again)
    f = open(tmp, "w")
    try:
        with f:
            engine = database.make_engine(db_url)
            try:
                given["server"]["credential"] = devices.add(engine, device)
            finally:
                engine.dispose()
            json.dump(given, f, indent=2)
    except BaseException:
        os.remove(tmp)
        raise
    os.replace(tmp, config_path)


def run(args):
    if args.board_command == "provision":
        try:
            provision(args.db, args.device, args.config)
        except (device_config.ConfigError, ValueError, OSError) as e:
            print("tilltap board provision: %s" % e, file=sys.stderr)
            return 2
        print("registered %s; its credential is in %s (deploy it with: make deploy CONFIG=%s)"
              % (args.device, args.config, args.config))
        return 0
    build = tempfile.mkdtemp(prefix="tilltap-deploy-")
    try:
        return _run(args, build)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _run(args, build):
    port = args.port
    if args.board_command == "flash":
        cmds = flash_commands(load_board(args.board), port, args.firmware, args.baud)
        if not args.dry_run and not os.path.isfile(args.firmware):
            print("tilltap board: no such firmware file: %s" % args.firmware, file=sys.stderr)
            return 2
    elif args.board_command == "deploy":
        try:
            cmds = deploy_commands(load_board(args.board), port, args.config, build,
                                   args.romfs)
        except device_config.ConfigError as e:
            print("tilltap board: %s: %s" % (args.config, e), file=sys.stderr)
            return 2
    elif args.board_command == "repl":
        cmds = [[_bin("mpremote"), "connect", port, "repl"]]
    else:
        cmds = [[_bin("mpremote"), "connect", port, "resume", "repl"]]
    for cmd in cmds:
        print(" ".join(shlex.quote(c) for c in cmd), flush=True)
        if not args.dry_run:
            result = subprocess.run(cmd)
            # mkdir of an existing directory fails harmlessly
            if result.returncode and cmd[4] != "mkdir":
                return result.returncode
    return 0
