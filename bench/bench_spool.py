"""Spool figures: write amplification, receipts per MiB of flash, boot recovery time.

Runs bench/mp_spool_bench.py under the MicroPython unix port (VfsLfs2 over tests/firmware/
flashsim.py, the ESP32's 4 KiB-block geometry). Targets are printed, never asserted.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("tests", "firmware", "tests/firmware", "bench"):
    sys.path.insert(0, os.path.join(ROOT, sub))

from mp_spool_bench import receipt_json  # noqa: E402  (one receipt for both sides)
from unixport import run_micropython  # noqa: E402

from tilltap_fw import spool  # noqa: E402


def main():
    typical = receipt_json(7)
    deflated = len(spool._deflate(typical))
    print("spool typical receipt: %d B JSON text, %d B deflated (CPython zlib, 1 KiB window)"
          % (len(typical), deflated))
    result = run_micropython([os.path.join(ROOT, "bench", "mp_spool_bench.py"), str(deflated)],
                             heapsize="64M")
    sys.stdout.write(result.stdout)
    if result.returncode:
        sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
