"""Quick mode of the bench scripts (see run.py): TILLTAP_BENCH_QUICK=1 runs each with small
inputs, so that `make test` can run every one of them (tests/host/test_bench_quick.py) and a
script cannot rot unnoticed. Same code paths and the same kind of figures, only fewer receipts,
devices, iterations or heap sizes: quick figures are not the ones to compare with the targets.
"""
import os

QUICK = os.environ.get("TILLTAP_BENCH_QUICK") == "1"


def size(full, quick):
    """`quick` in quick mode, else `full` (a count, a list of runs, ...)."""
    return quick if QUICK else full

