"""Parser throughput on the MicroPython unix port and on CPython, next to a plain copy loop.

Targets (unix port): text-heavy receipts >= 4 MB/s, image payload bytes >= 100 MB/s.
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "firmware")]

from escpos.printer import Dummy  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from unixport import run_micropython  # noqa: E402

from tilltap_host.receipt_factory import generate_receipts, generate_stream  # noqa: E402

CHUNK = 512   # what the tap hands the parser per read


def text_heavy():
    receipts = [r for r in generate_receipts(seed=11, count=120) if r.images == 0
                and r.language != "zh"]
    stream = generate_stream(receipts)
    return stream * max(1, 1_000_000 // len(stream))


def image_heavy():
    """A driver-mode job: the receipt as tall raster images, a few text lines between."""
    img = Image.new("1", (576, 1200), 1)
    draw = ImageDraw.Draw(img)
    for y in range(0, 1200, 24):
        draw.text((10, y), "RASTER RECEIPT LINE %04d      12.50" % y, fill=0)
    p = Dummy(profile="TM-T20II")
    for k in range(6):
        p.text("Job %d\n" % k)
        p.image(img, impl="bitImageRaster", fragment_height=240)
        p.cut()
    return p.output


def figures(impl_cmd, path):
    if impl_cmd == "micropython":
        result = run_micropython([os.path.join(ROOT, "bench", "parser_speed.py"), path,
                                  str(CHUNK)], extra_path=(os.path.join(ROOT, "bench"),))
    else:
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "firmware"))
        result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "parser_speed.py"),
                                 path, str(CHUNK)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(result.stderr)
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


main()
