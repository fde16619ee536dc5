"""Parser throughput over one file, against a plain copy loop (runs on MicroPython and CPython).

Usage: <python> bench/parser_speed.py FILE [CHUNK]
Prints one line of key=value figures: copy_mb_s (the floor: a plain copy loop over the same
bytes in the same chunks), parse_mb_s (all bytes) and image_mb_s (image payload bytes only).
"""
import sys
import time

from escpos_parser import Parser


def _now():
    if hasattr(time, "ticks_us"):
        return time.ticks_us() / 1e6
    return time.perf_counter()


def _copy_loop(data, chunk, rounds):
    buf = bytearray(chunk)
    bmv = memoryview(buf)
    mv = memoryview(data)
    n = len(data)
    t0 = _now()
    for _ in range(rounds):
        for i in range(0, n, chunk):
            k = n - i if n - i < chunk else chunk
            bmv[:k] = mv[i:i + k]
    return _now() - t0


def _parse(data, chunk, rounds):
    buf = bytearray(chunk)
    bmv = memoryview(buf)
    mv = memoryview(data)
    n = len(data)
    t0 = _now()
    for _ in range(rounds):
        p = Parser()
        for i in range(0, n, chunk):
            k = n - i if n - i < chunk else chunk
            bmv[:k] = mv[i:i + k]
            p.feed(bmv[:k])
        p.close()
    return _now() - t0, p.stats()


def main():
    path = sys.argv[1]
    chunk = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    with open(path, "rb") as f:
        data = f.read()
    rounds = max(1, 4000000 // max(len(data), 1))
    mb = len(data) * rounds / 1e6
    t_copy = _copy_loop(data, chunk, rounds)
    t_parse, stats = _parse(data, chunk, rounds)
    image_mb = stats["image_bytes"] * rounds / 1e6
    print("impl=%s bytes=%d copy_mb_s=%.1f parse_mb_s=%.2f image_mb_s=%.1f lines=%d" % (
        sys.implementation.name, len(data), mb / t_copy, mb / t_parse, image_mb / t_parse,
        stats["lines"]))


main()
