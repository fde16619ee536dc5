"""Running code under the real MicroPython interpreter (the unix port) from pytest."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
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
    return os.path.join(VENV_BIN, "micropython")


def micropython_path(*extra):
    """MICROPYPATH for firmware code: the firmware, its tests, umqtt and the frozen-module dir."""
    return ":".join(list(extra) + [FIRMWARE, FIRMWARE_TESTS, MP_LIB, ".frozen"])


def run_micropython(args, heapsize=None, timeout=600, extra_path=(), env=None, **kwargs):
    """Run `micropython args...` with the firmware on its path; returns CompletedProcess."""
    cmd = [micropython_command()]
    if heapsize:
        cmd += ["-X", "heapsize=%s" % heapsize]
    full_env = dict(os.environ)
    full_env["MICROPYPATH"] = micropython_path(*extra_path)
    if env:
        full_env.update(env)
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=ROOT, **kwargs)


def python_command():
    return sys.executable
