"""Instructions the MicroPython unix port executes for a bench script (valgrind --tool=callgrind):
figures that do not move with the machine's load, unlike MB/s on a shared PC."""
import os
import shutil
import subprocess
import tempfile

from tilltap_host.unixport import ROOT, micropython_command, micropython_path


def available():
    """True where valgrind is installed."""
    return shutil.which("valgrind") is not None


def instructions(args):
    """Instructions the unix port executes running args (a script under bench/ and its
    arguments), start-up included: compare two runs to get the work's own."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
               micropython_command(), os.path.join(ROOT, "bench", args[0])] + list(args[1:])
        subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT,
                       env=dict(os.environ, MICROPYPATH=micropython_path()))
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
    raise SystemExit("callgrind wrote no totals")
