"""Heap the firmware needs on the MicroPython unix port for the demo workload (host board).

The firmware runs precompiled (.mpy, as deployed) with a fixed heap; the POS replays the corpus
and generated receipts through it with the uplink delivering over HTTP. Reported: heap taken by
the loaded code, the peak heap sampled while running (gc.mem_alloc), and whether any
MemoryError happened. 64-bit objects are about twice the size of the ESP32's 32-bit ones.
"""
import asyncio
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests")]

from tilltap.demo import Demo, demo_streams, expected_receipts  # noqa: E402
from tilltap.unixport import compile_firmware, micropython_command  # noqa: E402

HEAP = os.environ.get("TILLTAP_BENCH_HEAP", "256k")


def code_heap():
    """Heap taken by importing every firmware module the tap loads, as .mpy."""
    import subprocess
    with tempfile.TemporaryDirectory() as tmp:
        mpy = compile_firmware(tmp)
        probe = ("import gc\ngc.collect()\na=gc.mem_alloc()\nimport main, uplink\n"
                 "gc.collect()\nprint(gc.mem_alloc()-a)\n")
        out = subprocess.run([micropython_command(), "-X", "heapsize=4M", "-c", probe],
                             env=dict(os.environ, MICROPYPATH=mpy + ":" + os.path.join(
                                 ROOT, ".venv", "mp-lib")), capture_output=True, text=True)
        return int(out.stdout.strip() or 0)


async def run():
    jobs = demo_streams(30)
    want = expected_receipts(jobs)
    with tempfile.TemporaryDirectory() as tmp:
        demo = Demo(tmp, os.environ.get("TILLTAP_BENCH_UPLINK", "mqtt"))
        try:
            await demo.start_with_heap(HEAP)
            await demo.replay(jobs)
            await demo.wait_stored(want, 180)
            status = demo.tap.status()
            log = demo.tap.log()
            stored = demo.stored()[0]
        finally:
            await demo.close()
    print("firmware code on the heap (all modules, .mpy, 64-bit): %d KB" % (code_heap() // 1024))
    print("demo workload at -X heapsize=%s: peak heap %d KB, receipts %d of %d stored, "
          "MemoryError: %s" % (HEAP, status.get("mem_alloc_peak", 0) // 1024,
                               stored, want, "yes" if "MemoryError" in log
                               or any("MemoryError" in p for p in status.get("problems", []))
                               else "no"))
    print("  heap free after a collection at the end: %d KB" % (status.get("mem_free", 0) // 1024))
    print("  captured %s, spool %s, uplink %s, capture errors %s" % (
        status.get("receipts"), status.get("spool", {}).get("count"), status.get("uplink"),
        status.get("capture_errors")))
    print("  store errors:", status.get("store_errors"), status.get("last_store_error"), "parser receipts:", status.get("parser", {}).get("receipts"))
    print("  spool drops:", status.get("spool", {}).get("dropped_by"))
    for problem in status.get("problems", []):
        print("  problem seen:", problem)
    print("target: the workload in heapsize=128k (64-bit stand-in for ~100 KB on the ESP32)")


asyncio.run(run())
