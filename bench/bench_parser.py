"""Parser throughput on the MicroPython unix port and on CPython, next to a plain copy loop.

Targets (unix port): text-heavy receipts >= 4 MB/s, image payload bytes >= 100 MB/s.
Quick mode (TILLTAP_BENCH_QUICK=1): 20 receipts in a 100 KB stream, one image job, 400 KB
parsed per figure (full: 120 receipts, 1 MB, 6 jobs, 4 MB).
"""
import os
import subprocess
import sys
import tempfile

from escpos.printer import Dummy
from PIL import Image, ImageDraw
from quick import size

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


def figures(impl, path):
    script = os.path.join(ROOT, "bench", "parser_speed.py")
    if impl == "micropython":
        cmd = [micropython_command(), script]
        env = dict(os.environ, MICROPYPATH=micropython_path())
    else:
        cmd, env = [sys.executable, script], None
    result = subprocess.run(cmd + [path, str(CHUNK), str(PARSED)], capture_output=True,
                            text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit("%s %s failed:\n%s" % (impl, script, result.stderr))
    return dict(kv.split("=") for kv in result.stdout.split())


def main():
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"text-heavy": text_heavy(), "image-heavy": image_heavy()}
        for name, data in runs.items():
            path = os.path.join(tmp, name + ".bin")
            with open(path, "wb") as f:
                f.write(data)
            for impl in ("micropython", "cpython"):
                fig = figures(impl, path)
                line = "parser %-11s %-11s %6.2f MB/s of stream" % (name, impl,
                                                                    float(fig["parse_mb_s"]))
                if name == "image-heavy":
                    line += ", image payload %6.1f MB/s" % float(fig["image_mb_s"])
                line += "  (copy-loop floor %.0f MB/s; %d bytes, %d-byte chunks)" % (
                    float(fig["copy_mb_s"]), int(fig["bytes"]), CHUNK)
                if impl == "micropython":
                    target = "text >= 4 MB/s" if name == "text-heavy" else "payload >= 100 MB/s"
                    line += "  target: " + target
                print(line, flush=True)


if __name__ == "__main__":
    main()
