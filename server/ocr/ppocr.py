"""Text-line recognition with PaddleOCR's PP-OCRv4 recognizer (Chinese and Latin, ONNX).

Tesseract's chi_sim cannot read a driver's dithered grey glyphs (raster-2.bin: 应收 and 实收 at
no setting tried); PP-OCRv4, trained on photographed and scanned Chinese text, reads them (see
server/ocr/reader.py). Only the recognizer is used: server/ocr/layout.py cuts the page into
line pieces itself, so neither the detector nor OpenCV is needed.

The model file comes from the PyPI package rapidocr-onnxruntime, installed without its
dependencies (tools/setup.sh): only its data is used, run with onnxruntime and numpy. The
character list is stored in the model's metadata.

    reader = LineReader.load()          # None when the model or onnxruntime is not installed
    reader.read([image, ...]) -> [("应收：242.00", 0.97), ...]
    reader.recognise([image, ...]) -> [Reading("应收：242.00", [0.99, 0.93, ...], span), ...]
"""
from __future__ import annotations

import importlib.util
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

MODEL_PACKAGE = "rapidocr_onnxruntime"
MODEL_FILE = os.path.join("models", "ch_PP-OCRv4_rec_infer.onnx")
_HEIGHT = 48            # the recognizer's input height
# Pieces are run one at a time, two at once on one thread each (generated driver receipts of
# the tuned fonts, per receipt): in batches of 8 sorted by width, each padded to its widest
# piece, the recognizer took 1.09 s CPU, one at a time 0.70 s, and read as well (Latin 163 ->
# 166 lines of 188, Chinese 193 of 200). Each piece is padded on the right with _PAD columns of
# mid grey, as PaddleOCR pads: without it a piece's last character was sometimes dropped
# (raster.bin's "光临！" read "光临").
_WORKERS = 2
_PAD = 8


@dataclass
class Reading:
    """One piece's text and each character's probability (0-1)."""

    text: str
    probabilities: list[float]
    # where the characters were read, as shares of the image's width: the first one's step
    # start and the last one's step end (0, 0 for an empty reading)
    span: tuple[float, float] = (0.0, 0.0)
    steps: int = 0          # the recognizer's output steps (one per 8 input columns)

    @property
    def confidence(self) -> float:
        """Mean character probability (0 for an empty reading)."""
        return sum(self.probabilities) / len(self.probabilities) if self.probabilities else 0.0


def model_path() -> str | None:
    """Where the recognizer model is installed, or None. Found without importing the package
    (its __init__ needs OpenCV, which is not installed)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(next(iter(spec.submodule_search_locations)), MODEL_FILE)
    return path if os.path.exists(path) else None


class LineReader:
    """One loaded recognizer; read() is thread-safe (onnxruntime sessions are)."""

    _shared = None
    _lock = threading.Lock()

    def __init__(self, path: str):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # one thread per run, _WORKERS runs at once (see _WORKERS)
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, options,
                                                    providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        characters = self.session.get_modelmeta().custom_metadata_map["character"].splitlines()
        # CTC class 0 is the blank; the last class is a space
        self.characters = [""] + characters + [" "]
        self.charset = frozenset(characters)

    @classmethod
    def load(cls) -> LineReader | None:
        """The process's reader, loaded once; None if the model or onnxruntime is missing."""
        with cls._lock:
            if cls._shared is None:
                path = model_path()
                if path is None or importlib.util.find_spec("onnxruntime") is None:
                    return None
                cls._shared = cls(path)
            return cls._shared

    def read(self, images: list[Image.Image], stretch: float = 1.0) -> list[tuple[str, float]]:
        """(text, mean character probability 0-1) of each image, one line of text each (see
        recognise)."""
        return [(r.text, r.confidence) for r in self.recognise(images, stretch)]

    def recognise(self, images: list[Image.Image], stretch: float = 1.0,
                  pad: float = 0.0) -> list[Reading]:
        """The Reading of each image, one line of text each. stretch: widen the images this
        many times more than their height is scaled (small print: the recognizer gives one
        character step per 8 columns, too few for narrow letters); pad: mid grey added on the
        right, a share of the image's width (a piece read as if in a batch with wider ones)."""
        with ThreadPoolExecutor(_WORKERS) as pool:
            return list(pool.map(lambda image: self._read_one(image, stretch, pad), images))

    def _read_one(self, image: Image.Image, stretch: float, pad: float) -> Reading:
        """One image through the recognizer (see recognise)."""
        width = max(1, math.ceil(_HEIGHT * stretch * image.width / max(image.height, 1)))
        tensor = np.zeros((1, 3, _HEIGHT, width + _PAD + int(pad * width)), dtype=np.float32)
        grey = image.convert("L").resize((width, _HEIGHT), Image.Resampling.BILINEAR)
        # scaled to -1..1 as in training; padding stays 0 (mid grey), as PaddleOCR pads
        tensor[0, :, :, :width] = np.asarray(grey, dtype=np.float32) / 127.5 - 1.0
        probs = self.session.run(None, {self.input: tensor})[0]
        step = tensor.shape[3] / probs.shape[1]     # input columns per output step
        return self._decode(probs[0], step / width)

    def _decode(self, probs, step: float) -> Reading:
        """Greedy CTC: the best class per step, repeats merged, blanks dropped. step: the
        image's width one output step covers (a share)."""
        best = probs.argmax(axis=1)
        chars, confidence, previous, steps = [], [], 0, []
        for at, cls in enumerate(best.tolist()):
            if cls != 0 and cls != previous:
                chars.append(self.characters[cls])
                confidence.append(float(probs[at, cls]))
                steps.append(at)
            previous = cls
        span = (steps[0] * step, (steps[-1] + 1) * step) if steps else (0.0, 0.0)
        return Reading("".join(chars), confidence, span, len(best))
