"""Spool figures: write amplification, receipts per MiB of flash, boot recovery time.

Runs bench/mp_spool_bench.py under the MicroPython unix port (VfsLfs2 over tests/firmware/
flashsim.py, the ESP32's 4 KiB-block geometry). Targets are printed, never asserted.
Quick mode (TILLTAP_BENCH_QUICK=1): 40 records per write-amplification run, 500 records for
the recovery times (full: 200 and 5000).
"""
import os
import subprocess
import sys

from mp_spool_bench import receipt_json  # one receipt for both sides
from quick import QUICK

from tilltap_fw import spool
from tilltap_host.unixport import ROOT, micropython_command, micropython_path


def main():
    typical = receipt_json(7)
    deflated = len(spool._deflate([typical], bytearray(256)))
    print("spool typical receipt: %d B JSON text, %d B deflated (CPython zlib, 1 KiB window)"
          % (len(typical), deflated), flush=True)
    args = [os.path.join(ROOT, "bench", "mp_spool_bench.py"), str(deflated)]
    result = subprocess.run([micropython_command(), "-X", "heapsize=64M"] + args + (
        ["quick"] if QUICK else []), capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, MICROPYPATH=micropython_path()))
    sys.stdout.write(result.stdout)
    if result.returncode:
        sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
