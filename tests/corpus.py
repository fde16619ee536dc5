"""The shared ESC/POS corpus (../shared/corpus or $TILLTAP_CORPUS) and how to parse each file."""
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.environ.get("TILLTAP_CORPUS") or os.path.join(ROOT, "..", "shared", "corpus")


def corpus_files():
    """Every stream in corpus/real, sorted; [] when the corpus is absent."""
    return sorted(glob.glob(os.path.join(CORPUS, "real", "*", "*.bin")))


def need_corpus():
    if not corpus_files():
        pytest.skip("ESC/POS corpus not found at %s (set TILLTAP_CORPUS)" % CORPUS)


def options_for(path):
    """Parser options a deployment would configure for the printer that made this stream."""
    name = os.path.basename(os.path.dirname(path))
    if name == "eljojo__estrella" or os.path.basename(path).startswith("tsp-143"):
        return {"profile": "star"}
    if name == "taoyuan__npos":
        return {"encoding": "gb18030"}
    return {}


def short(path):
    return os.path.relpath(path, os.path.join(CORPUS, "real"))
