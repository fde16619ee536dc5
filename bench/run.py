"""`make bench`: runs every bench/bench_*.py in turn and prints their figures.

Each bench script prints its own figures (one per line, `name: value unit`); targets are
reported next to the measured value, never asserted.
"""
import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    wanted = argv[1:]
    scripts = sorted(glob.glob(os.path.join(HERE, "bench_*.py")))
    failed = 0
    for script in scripts:
        name = os.path.basename(script)[len("bench_"):-3]
        if wanted and name not in wanted:
            continue
        print("== %s" % name, flush=True)
        result = subprocess.run([sys.executable, script], cwd=os.path.dirname(HERE))
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
