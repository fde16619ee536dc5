"""`make bench`: runs every bench/bench_*.py in turn and prints their figures.

    .venv/bin/python bench/run.py [NAME ...]      # make bench [ONLY="ingest spool"]
    TILLTAP_BENCH_QUICK=1 .venv/bin/python bench/run.py

Each bench script prints its own figures (one per line, `name: value unit`); targets are
reported next to the measured value, never asserted. A script exits 0 when it ran, non-zero
when it crashed (or its workload failed, e.g. receipts not stored); this runner exits non-zero
if any script did, or if a NAME matches no script.

Quick mode: with TILLTAP_BENCH_QUICK=1 every script runs with small inputs (few receipts,
devices, iterations, one heap size), in well under a minute each, and prints the same kind of
figures; `make test` runs them all that way (tests/host/test_bench_quick.py) so that a bench
cannot rot unnoticed. Quick figures are not the ones to compare with the targets. Every script
does it the same way: `from quick import QUICK, size` (bench/quick.py), then
`COUNT = size(full, quick)` for each input size; each script's docstring lists its quick sizes.
Without the variable the scripts run at full size.
"""
import glob
import os
import subprocess
import sys
import time

from quick import QUICK

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    wanted = argv[1:]
    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    names = [os.path.basename(s)[len("bench_"):-3] for s in scripts]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        print("no bench script named %s (there are: %s)" % (", ".join(unknown), ", ".join(names)))
        return 2
    failed = []
    for name, script in zip(names, scripts):
        if wanted and name not in wanted:
            continue
        print("== %s%s" % (name, " (quick mode: small inputs)" if QUICK else ""), flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, script], cwd=os.path.dirname(HERE))
        print("== %s: %s in %.1f s" % (name, "done" if result.returncode == 0 else
                                       "FAILED (exit status %d)" % result.returncode,
                                       time.monotonic() - started), flush=True)
        if result.returncode != 0:
            failed.append(name)
    if failed:
        print("failed: %s" % ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
