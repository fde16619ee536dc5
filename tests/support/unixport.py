"""Running code under the real MicroPython interpreter (the unix port) from pytest."""
import os
import subprocess
import sys

from tilltap_host.unixport import (  # noqa: F401
    FIRMWARE,
    FIRMWARE_TESTS,
    MP_LIB,
    ROOT,
    micropython_command,
    micropython_path,
)

VENV_BIN = os.path.join(ROOT, ".venv", "bin")


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
