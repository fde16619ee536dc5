"""Parser throughput over one file, against a plain copy loop (runs on MicroPython and CPython).

Usage: <python> bench/parser_speed.py FILE [CHUNK [BYTES [OPTIONS [MODE]]]]
Prints one line of key=value figures: copy_mb_s (the floor: a plain copy loop over the same
bytes in the same chunks), parse_mb_s (all bytes) and image_mb_s (image payload bytes only).
BYTES (default 4000000): about how many bytes each figure is measured over (the file repeated).
OPTIONS: the parser's keyword options as name=value,name=value ("-" for none), e.g.
profile=star or encoding=gb18030. MODE "parse" or "copy" runs only that loop once and prints
nothing (for an instruction counter such as callgrind: parse minus copy, per byte).
"""
import sys
import time

from tilltap_fw.escpos_parser import Parser


def _now():
    if hasattr(time, "ticks_us"):
        return time.ticks_us() / 1e6
    return time.perf_counter()


def _timed(data, chunk, rounds, parse, options):
    """Seconds to copy the data chunk by chunk into a buffer, as the tap does, and (parse=True)
    to feed each chunk to a parser too; returns (seconds, parser stats or None)."""
    buf = bytearray(chunk)
    bmv = memoryview(buf)
    mv = memoryview(data)
    n = len(data)
    p = None
    t0 = _now()
    for _ in range(rounds):
        p = Parser(**options) if parse else None
        for i in range(0, n, chunk):
            k = n - i if n - i < chunk else chunk
            bmv[:k] = mv[i:i + k]
            if p is not None:
                p.feed(buf, k)
        if p is not None:
            p.close()
    return _now() - t0, (p.stats() if p is not None else None)


def _options(text):
    if not text or text == "-":
        return {}
    return dict(pair.split("=") for pair in text.split(","))


def main():
    path = sys.argv[1]
    chunk = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    with open(path, "rb") as f:
        data = f.read()
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 4000000
    options = _options(sys.argv[4] if len(sys.argv) > 4 else "")
    mode = sys.argv[5] if len(sys.argv) > 5 else "both"
    rounds = max(1, total // max(len(data), 1))
    if mode != "both":
        _timed(data, chunk, rounds, mode == "parse", options)
        return
    mb = len(data) * rounds / 1e6
    t_copy, _ = _timed(data, chunk, rounds, False, options)
    t_parse, stats = _timed(data, chunk, rounds, True, options)
    image_mb = stats["image_bytes"] * rounds / 1e6
    print("impl=%s bytes=%d copy_mb_s=%.1f parse_mb_s=%.2f image_mb_s=%.1f lines=%d" % (
        sys.implementation.name, len(data), mb / t_copy, mb / t_parse, image_mb / t_parse,
        stats["lines"]))


if __name__ == "__main__":
    main()
