"""Runs a batch of fuzz inputs (tests/support/parser_fuzz.py, write_batch) through the parser
under MicroPython, as the board's capture feeds it (buffer, length, start): each input in
capture's 128-byte slices, then in its own chunks. Counts exceptions, MemoryErrors and inputs
whose chunked events differ; prints the first few failures, then one JSON summary line.

    micropython -X heapsize=N parser_fuzz_mp.py BATCH [ROMFS_IMAGE]

With ROMFS_IMAGE the firmware is imported from that image, as a board with the firmware in
ROM runs it (tilltap_host.unixport.rom_heapsize sizes the heap for the image).
"""
import gc
import json
import struct
import sys
import time

if len(sys.argv) > 2:
    import vfs

    with open(sys.argv[2], "rb") as _f:
        vfs.mount(vfs.VfsRom(_f.read()), "/rom")
    sys.path.insert(0, "/rom")

from tilltap_fw.escpos_parser import Parser  # noqa: E402 -- from the image mounted above

_SHOWN = 5
_SLICE = 128     # capture.py's slice: the bytes the board hands the parser at a time
_CHUNK = 512     # tap.py's chunk: the most bytes capture takes at a time


def _bounds(size, step, cuts):
    """The chunk ends: every step bytes or at cuts, and size; a chunk longer than _CHUNK is cut
    there too (on the board no feed() is larger: a 16 KB event list on a fragmented 128k heap
    would fail by luck, not by a fault of the parser)."""
    last = 0
    for cut in tuple(range(step, size, step) if step else cuts) + (size,):
        while cut - last > _CHUNK:
            last += _CHUNK
            yield last
        if cut > last:
            yield cut
            last = cut


def _digest(events, count, fingerprint):
    for e in events:
        fingerprint = (fingerprint * 31 + hash(e)) & 0x3FFFFFFF
    return count + len(events), fingerprint


def parse(data, step, cuts, profile, encoding):
    """(events, fingerprint) of data fed in chunks (every step bytes, or at cuts), then
    close(). Events are not kept (the board's assembler consumes them as they come): a
    fingerprint of their sequence stands for them."""
    p = Parser(profile=profile, encoding=encoding)
    count = fingerprint = 0
    pos = 0
    for cut in _bounds(len(data), step, cuts):
        count, fingerprint = _digest(p.feed(data, cut - pos, pos), count, fingerprint)
        pos = cut
    return _digest(p.close(), count, fingerprint)


def run(path):
    counts = {"inputs": 0, "bytes": 0, "exceptions": 0, "memory_errors": 0, "chunk_mismatch": 0,
              "max_events": 0}
    gc.collect()
    counts["heap_free_at_start"] = gc.mem_free()
    started = time.ticks_ms()
    with open(path, "rb") as f:
        profiles = json.loads(f.readline())
        while True:
            head = f.read(9)
            if len(head) < 9:
                break
            size, profile, step, ncuts = struct.unpack("<IBHH", head)
            cuts = struct.unpack("<%dI" % ncuts, f.read(4 * ncuts)) if ncuts else ()
            data = f.read(size)
            index = counts["inputs"]
            counts["inputs"] += 1
            counts["bytes"] += size
            kind = None
            try:
                name, encoding = profiles[profile]
                whole = parse(data, _SLICE, (), name, encoding)
                counts["max_events"] = max(counts["max_events"], whole[0])
                if (step or cuts) and parse(data, step, cuts, name, encoding) != whole:
                    kind = "chunk_mismatch"
                    error = None
                whole = None
            except MemoryError as e:
                kind, error = "memory_errors", e
            except Exception as e:   # noqa: BLE001 -- every failure is counted and shown
                kind, error = "exceptions", e
            if kind:
                counts[kind] += 1
                if counts[kind] <= _SHOWN:
                    print("FAIL %s input %d (%d bytes, profile %d)" % (kind, index, size, profile))
                    if error is not None:
                        sys.print_exception(error)
    counts["ms"] = time.ticks_diff(time.ticks_ms(), started)
    print(json.dumps(counts))


run(sys.argv[1])
