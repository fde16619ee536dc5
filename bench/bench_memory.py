"""Heap the firmware needs on the MicroPython unix port for the demo workload (host board).

The firmware runs from a ROMFS image (`rom:`, as a production board boots it: code in flash)
or precompiled on the filesystem (`mpy:`, as `make deploy` without ROMFS=1) with a fixed heap;
the POS replays the corpus and generated receipts through it while the uplink delivers them
over MQTT to the real server. Reported: the heap taken by the loaded code, then per heap size:
pass-through (byte-exact both ways or not), receipts stored, MemoryErrors counted by capture,
the heap in use after a collection at the end, and the peak sampled while running (gc.mem_alloc
before the status collection). 64-bit objects are about twice the size of the ESP32's 32-bit
ones. In rom: runs the heap is that much beside the image (tilltap_host.unixport.rom_heapsize).
A third part names the upload mode (default full): "rom:128k:fields" loads the board's extractor
and its byte tables. TILLTAP_BENCH_HEAPS overrides the runs ("rom:128k,mpy:256k"),
TILLTAP_BENCH_UPLINK the uplink. Quick mode (TILLTAP_BENCH_QUICK=1): one run, rom:128k, and 5
generated receipts after the corpus (full: the five runs above, 30 generated receipts).
Exits non-zero when no run ran at all (the bench itself is broken, not a heap too small).
"""
import asyncio
import os
import subprocess
import sys
import tempfile

from quick import size

from tilltap_host.demo import Demo, demo_streams, expected_receipts
from tilltap_host.unixport import (
    PACKAGE,
    build_romfs,
    compile_firmware,
    micropython_command,
    micropython_path,
)

RUNS = os.environ.get("TILLTAP_BENCH_HEAPS", size(
    "rom:112k,rom:120k,rom:128k,rom:128k:fields,mpy:256k,mpy:384k", "rom:128k")).split(",")
UPLINK = os.environ.get("TILLTAP_BENCH_UPLINK", "mqtt")
GENERATED = size(30, 5)   # generated receipts after the corpus files
TAP_MODULES = ", ".join("%s.%s" % (PACKAGE, m) for m in (
    "main", "runner", "network_mode", "record", "spool", "uplink", "uplink_" + UPLINK))


def code_heap():
    """Heap taken by importing what the tap loads, as .mpy files and from the ROMFS image."""
    with tempfile.TemporaryDirectory() as tmp:
        mpy = compile_firmware(os.path.join(tmp, "mpy"))
        image = build_romfs(os.path.join(tmp, "firmware.romfs"))
        mount = ("import vfs,sys\nf=open(%r,'rb')\nvfs.mount(vfs.VfsRom(f.read()),'/rom')\n"
                 "sys.path.insert(0,'/rom')\n" % image)
        out = []
        for setup, path in (("", mpy + ":" + micropython_path()), (mount, ".frozen")):
            probe = ("%simport gc\ngc.collect()\na=gc.mem_alloc()\nimport %s\n"
                     "gc.collect()\nprint(gc.mem_alloc()-a)\n" % (setup, TAP_MODULES))
            run = subprocess.run([micropython_command(), "-X", "heapsize=4M", "-c", probe],
                                 env=dict(os.environ, MICROPYPATH=path),
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit("importing the tap's modules failed:\n" + run.stderr)
            out.append(int(run.stdout.strip()))
        return out + [os.path.getsize(image)]


async def workload(heap, rom, jobs, want, mode):
    with tempfile.TemporaryDirectory() as tmp:
        demo = Demo(tmp, UPLINK, upload_mode=mode)
        try:
            await demo.start_with_heap(heap, rom=rom)
            sent, replies = await demo.replay(jobs)
            await demo.wait_stored(want, 60)
            status = demo.tap.status()
            exact = bytes(demo.printer.received) == sent and replies == bytes(
                demo.printer.replied)
            return status, exact, demo.stored()[0]
        finally:
            await demo.close()


async def run():
    jobs = demo_streams(GENERATED)
    want = expected_receipts(jobs)
    mpy_code, rom_code, image = code_heap()
    print("heap taken by the code the tap loads (%s and what they import, 64-bit): %d KB as "
          ".mpy files, %d KB from the ROMFS image (%d KB in flash)"
          % (TAP_MODULES, mpy_code // 1024, rom_code // 1024, image // 1024), flush=True)
    print("demo workload: %d jobs, %d receipts, %s uplink" % (len(jobs), want, UPLINK))
    ran = 0
    for spec in RUNS:
        kind, heap, mode = (spec + ":full").split(":")[:3]
        try:
            status, exact, stored = await workload(heap, kind == "rom", jobs, want, mode)
        except Exception as e:   # noqa: BLE001 -- a heap too small to boot is a figure too
            print("  %s heap %-5s does not run: %r" % (kind, heap, e), flush=True)
            continue
        ran += 1
        if kind == "rom":   # the image is on the heap too (no flash to map): not the firmware's
            for key in ("mem_alloc", "mem_alloc_peak"):
                status[key] = status.get(key, 0) - image
        errors = status.get("capture_errors", 0) + status.get("store_errors", 0)
        uplink = status.get("uplink", {})
        print("  %s heap %-5s %-6s pass-through %s, stored %d of %d, MemoryErrors in capture "
              "%d, uplink failures %d (last: %s), in use after collection %d KB, peak %d KB" % (
                  kind, heap, mode, "byte-exact" if exact else "NOT EXACT", stored, want, errors,
                  uplink.get("failures", 0), uplink.get("last_error"),
                  status.get("mem_alloc", 0) // 1024,
                  status.get("mem_alloc_peak", 0) // 1024), flush=True)
    print("target: the workload in heapsize=128k without a MemoryError, with 8 KB to spare "
          "(it runs in 120k too) (64-bit stand-in for ~100 KB on the ESP32; code in flash as on "
          "a production board)")
    return 0 if ran else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(run()))
