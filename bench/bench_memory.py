"""Heap the firmware needs on the MicroPython unix port for the demo workload (host board).

The firmware runs precompiled (.mpy, as `make deploy` puts it on a board) with a fixed heap;
the POS replays the corpus and generated receipts through it while the uplink delivers them
over MQTT to the real server. Reported: the heap taken by the loaded code, then per heap size:
pass-through (byte-exact both ways or not), receipts stored, MemoryErrors counted by capture,
the heap in use after a collection at the end, and the peak sampled while running (gc.mem_alloc
before the status collection). 64-bit objects are about twice the size of the ESP32's 32-bit
ones. TILLTAP_BENCH_HEAPS overrides the sizes ("128k,256k"), TILLTAP_BENCH_UPLINK the uplink.
"""
import asyncio
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests")]

from tilltap.demo import Demo, demo_streams, expected_receipts  # noqa: E402
from tilltap.unixport import compile_firmware, micropython_command, micropython_path  # noqa: E402

HEAPS = os.environ.get("TILLTAP_BENCH_HEAPS", "128k,192k,256k,384k").split(",")
UPLINK = os.environ.get("TILLTAP_BENCH_UPLINK", "mqtt")
TAP_MODULES = "main, spool, uplink, uplink_%s" % UPLINK


def code_heap():
    """Heap taken by importing what the tap loads (.mpy), and by the whole firmware."""
    with tempfile.TemporaryDirectory() as tmp:
        mpy = compile_firmware(tmp)
        out = []
        for modules in (TAP_MODULES, "main, spool, uplink, uplink_mqtt, uplink_http, fields, "
                                     "config, protocol_check"):
            probe = ("import gc\ngc.collect()\na=gc.mem_alloc()\nimport %s\n"
                     "gc.collect()\nprint(gc.mem_alloc()-a)\n" % modules)
            run = subprocess.run([micropython_command(), "-X", "heapsize=4M", "-c", probe],
                                 env=dict(os.environ, MICROPYPATH=mpy + ":" + micropython_path()),
                                 capture_output=True, text=True)
            out.append(int(run.stdout.strip() or 0))
        return out


async def workload(heap, jobs, want):
    with tempfile.TemporaryDirectory() as tmp:
        demo = Demo(tmp, UPLINK)
        try:
            await demo.start_with_heap(heap)
            sent, replies = await demo.replay(jobs)
            await demo.wait_stored(want, 60)
            status = demo.tap.status()
            exact = bytes(demo.printer.received) == sent and replies == bytes(
                demo.printer.replied)
            return status, exact, demo.stored()[0]
        finally:
            await demo.close()


async def run():
    jobs = demo_streams(30)
    want = expected_receipts(jobs)
    tap_code, all_code = code_heap()
    print("firmware code on the heap (.mpy, 64-bit): %d KB loaded by the tap (%s), %d KB for "
          "every module" % (tap_code // 1024, TAP_MODULES, all_code // 1024))
    print("demo workload: %d jobs, %d receipts, %s uplink" % (len(jobs), want, UPLINK))
    for heap in HEAPS:
        try:
            status, exact, stored = await workload(heap, jobs, want)
        except Exception as e:   # noqa: BLE001 -- a heap too small to boot is a figure too
            print("  -X heapsize=%-5s does not run: %r" % (heap, e))
            continue
        errors = status.get("capture_errors", 0) + status.get("store_errors", 0)
        print("  -X heapsize=%-5s pass-through %s, stored %d of %d, MemoryErrors in capture %d, "
              "in use after collection %d KB, peak %d KB" % (
                  heap, "byte-exact" if exact else "NOT EXACT", stored, want, errors,
                  status.get("mem_alloc", 0) // 1024,
                  status.get("mem_alloc_peak", 0) // 1024))
    print("target: the workload in heapsize=128k without a MemoryError "
          "(64-bit stand-in for ~100 KB on the ESP32)")


asyncio.run(run())
