"""The shared ESC/POS corpus (../shared/corpus beside the checkout, or $TILLTAP_CORPUS): its
streams and the printer settings each was made for."""
import glob
import os

from tilltap_host.unixport import ROOT

CORPUS = os.environ.get("TILLTAP_CORPUS") or os.path.join(ROOT, "..", "shared", "corpus")


def corpus_files():
    """Every stream in corpus/real, sorted; [] when the corpus is absent."""
    return sorted(glob.glob(os.path.join(CORPUS, "real", "*", "*.bin")))


def options_for(path):
    """Parser options a deployment would configure for the printer that made this stream."""
    name = os.path.basename(os.path.dirname(path))
    if name == "eljojo__estrella" or os.path.basename(path).startswith("tsp-143"):
        return {"profile": "star"}
    if name == "taoyuan__npos":
        return {"encoding": "gb18030"}
    return {}


def short(path):
    """A stream's name: its path below corpus/real."""
    return os.path.relpath(path, os.path.join(CORPUS, "real"))
