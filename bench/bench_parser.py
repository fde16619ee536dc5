"""Parser throughput on the MicroPython unix port and on CPython, next to a plain copy loop.

Streams: text-heavy (generated receipts), command-dense (python-escpos styling every line:
ESC ! n, ESC E n, ESC a n, GS B n, ESC - n ... before each, one command per ~10 bytes), Star
Line Mode, CJK (GB18030 with FS & / FS .), image-heavy (raster payloads), and adversarial
worst cases (runs of NUL and 0x01 control bytes, macro replays). Beside each unix-port figure:
the ESP32-equivalent at 100x slower (see docs/micropython-esp32-notes.md), and instructions
per byte of the unix port's parse loop (valgrind --tool=callgrind where installed: a figure
that does not move with the machine's load).
Targets (unix port): command-dense >= 4 MB/s (moonshot 10), image payload bytes >= 150 MB/s,
worst case >= 1 MB/s.
Quick mode (TILLTAP_BENCH_QUICK=1): 20 receipts in a 100 KB stream, one image job, 400 KB
parsed per figure, no instruction counts (full: 120 receipts, 1 MB, 6 jobs, 4 MB).
"""
import os
import subprocess
import sys
import tempfile

import callgrind
from escpos.printer import Dummy
from PIL import Image, ImageDraw
from quick import QUICK, size

from tilltap_host.receipt_factory import generate_receipts, generate_stream
from tilltap_host.unixport import ROOT, micropython_command, micropython_path

CHUNK = 512   # what the tap hands the parser per read
RECEIPTS = size(120, 20)           # generated receipts in the text-heavy stream
STREAM = size(1_000_000, 100_000)  # bytes of text-heavy stream (the receipts repeated)
JOBS = size(6, 1)                  # image-heavy jobs
PARSED = size(4_000_000, 400_000)  # bytes parsed per measurement (the file, repeated)


def text_heavy():
    receipts = [r for r in generate_receipts(seed=11, count=RECEIPTS) if r.images == 0
                and r.language != "zh"]
    stream = generate_stream(receipts)
    return stream * max(1, STREAM // len(stream))


def _styled(p, text, **style):
    p.set(**style)
    p.text(text)


def command_dense():
    """python-escpos receipts as a POS library prints them: styles set before every line."""
    p = Dummy(profile="TM-T20II")
    for k in range(40):
        _styled(p, "CORNER SHOP %d\n" % k, align="center", bold=True, double_height=True)
        _styled(p, "Receipt 1%04d  2026-03-02 10:15\n" % k, align="left", underline=1)
        for i in range(12):
            _styled(p, "Item %02d%s%6.2f\n" % (i, " " * 20, i * 1.25), align="left",
                    bold=bool(i & 1), underline=0, invert=bool(i % 5 == 0))
        _styled(p, "TOTAL%s%6.2f\n" % (" " * 23, 99.5), align="right", bold=True,
                double_width=True)
        p.qr("https://example.org/r/%d" % k, native=True)
        p.cut()
    data = p.output
    return data * max(1, STREAM // len(data))


def star_line():
    """Star Line Mode receipts: ESC E / ESC F bold, ESC GS a n alignment, ESC i size,
    ESC - underline, ESC d n cut."""
    out = bytearray()
    for k in range(40):
        out += b"\x1b@\x1b\x1da\x01\x1bi\x01\x01STAR CAFE %d\n\x1bi\x00\x00" % k
        out += b"\x1b\x1da\x00"
        for i in range(12):
            out += b"\x1bE" if i & 1 else b"\x1bF"
            out += b"\x1b-\x01Item %02d\x1b-\x00%s%6.2f\n" % (i, b" " * 20, i * 1.25)
        out += b"\x1b\x1da\x02\x1bETOTAL    99.50\n\x1bF\x1bd\x02"
    data = bytes(out)
    return data * max(1, STREAM // len(data))


def cjk():
    receipts = [r for r in generate_receipts(seed=13, count=RECEIPTS) if r.language == "zh"]
    stream = generate_stream(receipts)
    return stream * max(1, STREAM // len(stream))


def control_runs():
    """Worst case: a receipt line, then a run of NUL and 0x01 bytes (each a control byte)."""
    data = (b"Line of text 1.00\n" + b"\x00\x01" * 500) * 20
    return data * max(1, STREAM // 4 // len(data))


def macro_replays():
    """Worst case: a recorded macro (GS : ... GS :) replayed (GS ^ r t m) again and again."""
    macro = b"\x1d:" + b"\x1b!\x00Macro line\n" * 8 + b"\x1d:"
    data = b"\x1b@" + macro + b"\x1d^\x10\x00\x00" * 400 + b"\x1dV\x00"
    return data * max(1, STREAM // 4 // len(data))


def image_heavy():
    """A driver-mode job: the receipt as tall raster images, a few text lines between."""
    img = Image.new("1", (576, 1200), 1)
    draw = ImageDraw.Draw(img)
    for y in range(0, 1200, 24):
        draw.text((10, y), "RASTER RECEIPT LINE %04d      12.50" % y, fill=0)
    p = Dummy(profile="TM-T20II")
    for k in range(JOBS):
        p.text("Job %d\n" % k)
        p.image(img, impl="bitImageRaster", fragment_height=240)
        p.cut()
    return p.output


def figures(impl, path, options="-"):
    script = os.path.join(ROOT, "bench", "parser_speed.py")
    if impl == "micropython":
        cmd = [micropython_command(), script]
        env = dict(os.environ, MICROPYPATH=micropython_path())
    else:
        cmd, env = [sys.executable, script], None
    result = subprocess.run(cmd + [path, str(CHUNK), str(PARSED), options], capture_output=True,
                            text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit("%s %s failed:\n%s" % (impl, script, result.stderr))
    return dict(kv.split("=") for kv in result.stdout.split())


def _instructions(path, options, mode, count):
    """Instructions the unix port executes for `mode` over count bytes (callgrind)."""
    return callgrind.instructions(["parser_speed.py", path, str(CHUNK), str(count), options,
                                   mode])


def instructions_per_byte(path, options, size):
    """(parse loop instructions - copy loop instructions) / bytes, on the unix port."""
    count = max(size, 200_000)
    return (_instructions(path, options, "parse", count) -
            _instructions(path, options, "copy", count)) / (count // size * size)


# name: (stream, parser options, target on the unix port in MB/s or None)
STREAMS = {
    "text-heavy": (text_heavy, "-", None),
    "command-dense": (command_dense, "-", 4.0),
    "star-line": (star_line, "profile=star", 4.0),
    "cjk": (cjk, "encoding=gb18030", 4.0),
    "image-heavy": (image_heavy, "-", None),
    "worst:control-runs": (control_runs, "-", 1.0),
    "worst:macro-replays": (macro_replays, "-", 1.0),
}
ESP32_FACTOR = 100      # MicroPython on an ESP32 vs this machine's unix port (notes, section 7)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, (make, options, target) in STREAMS.items():
            data = make()
            path = os.path.join(tmp, name.replace(":", "-") + ".bin")
            with open(path, "wb") as f:
                f.write(data)
            for impl in ("micropython", "cpython"):
                fig = figures(impl, path, options)
                mb_s = float(fig["parse_mb_s"])
                line = "parser %-20s %-11s %6.2f MB/s of stream" % (name, impl, mb_s)
                if name == "image-heavy":
                    line += ", image payload %6.1f MB/s" % float(fig["image_mb_s"])
                if impl == "micropython":
                    line += "  (ESP32 at %dx: %.0f KB/s)" % (ESP32_FACTOR,
                                                           mb_s * 1000 / ESP32_FACTOR)
                    if not QUICK and callgrind.available():
                        line += "  %.0f instructions/byte" % instructions_per_byte(
                            path, options, len(data))
                    if name == "image-heavy":
                        line += "  target: payload >= 150 MB/s"
                    elif target:
                        line += "  target: >= %.0f MB/s" % target
                else:
                    line += "  (copy-loop floor %.0f MB/s; %d bytes, %d-byte chunks)" % (
                        float(fig["copy_mb_s"]), int(fig["bytes"]), CHUNK)
                print(line, flush=True)


if __name__ == "__main__":
    main()
