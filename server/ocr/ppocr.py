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
    reader.recognise([image, ...]) -> [Reading("应收：242.00", [0.99, 0.93, ...]), ...]
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
# Pieces are run in batches of _BATCH, sorted by width so that little padding is added, two
# batches at once on one thread each (generated driver receipts, per receipt: one batch at a
# time on 2 threads 0.77 s wall / 1.31 s CPU, on 1 thread 1.13 / 1.12). Pieces run one at a
# time cost less still (0.83 s CPU) but read worse: raster-2.bin's 实收 (tendered) became 实妆
# and its payment was lost; the padding of a batch (mid grey, as PaddleOCR pads) helps.
_BATCH = 8
_WORKERS = 2


@dataclass
class Reading:
    """One piece's text and each character's probability (0-1)."""

    text: str
    probabilities: list[float]

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

    def recognise(self, images: list[Image.Image], stretch: float = 1.0) -> list[Reading]:
        """The Reading of each image, one line of text each. stretch: widen the images this
        many times more than their height is scaled (small print: the recognizer gives one
        character step per 8 columns, too few for narrow letters)."""
        order = sorted(range(len(images)),
                       key=lambda k: images[k].width / max(images[k].height, 1))
        batches = [order[start:start + _BATCH] for start in range(0, len(order), _BATCH)]
        readings: dict[int, Reading] = {}
        with ThreadPoolExecutor(_WORKERS) as pool:
            for batch, read in zip(batches, pool.map(lambda b: self._batch(images, b, stretch),
                                                     batches)):
                readings.update(zip(batch, read))
        return [readings[k] for k in range(len(images))]

    def _batch(self, images: list[Image.Image], batch: list[int],
               stretch: float) -> list[Reading]:
        widths = [max(1, math.ceil(_HEIGHT * stretch * images[k].width
                                   / max(images[k].height, 1)))
                  for k in batch]
        tensor = np.zeros((len(batch), 3, _HEIGHT, max(widths)), dtype=np.float32)
        for row, (k, width) in enumerate(zip(batch, widths)):
            grey = images[k].convert("L").resize((width, _HEIGHT), Image.Resampling.BILINEAR)
            # scaled to -1..1 as in training; padding stays 0 (mid grey), as PaddleOCR pads
            tensor[row, :, :, :width] = np.asarray(grey, dtype=np.float32) / 127.5 - 1.0
        probs = self.session.run(None, {self.input: tensor})[0]
        return [self._decode(probs[row]) for row in range(len(batch))]

    def _decode(self, probs) -> Reading:
        """Greedy CTC: the best class per step, repeats merged, blanks dropped."""
        best = probs.argmax(axis=1)
        chars, confidence, previous = [], [], 0
        for step, cls in enumerate(best.tolist()):
            if cls != 0 and cls != previous:
                chars.append(self.characters[cls])
                confidence.append(float(probs[step, cls]))
            previous = cls
        return Reading("".join(chars), confidence)
