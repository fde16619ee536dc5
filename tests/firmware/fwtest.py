"""Helpers shared by firmware tests under pytest (CPython) and mp_run.py (MicroPython)."""
import os
import random

try:
    import pytest

    SkipTest = pytest.skip.Exception

    def skip(reason):
        pytest.skip(reason)

except ImportError:

    class SkipTest(Exception):
        pass

    def skip(reason):
        raise SkipTest(reason)


IS_MICROPYTHON = __import__("sys").implementation.name == "micropython"
_counter = [0]


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _rmtree(path):
    for entry in os.listdir(path):
        full = path + "/" + entry
        if os.stat(full)[0] & 0x4000:
            _rmtree(full)
        else:
            os.remove(full)
    os.rmdir(path)


def tmpdir(tag="t"):
    """A fresh, empty directory under $TMPDIR or /tmp (removed first if it exists)."""
    base = os.getenv("TMPDIR") or "/tmp"
    _counter[0] += 1
    path = "%s/tilltap-%s-%08x-%d" % (base, tag, random.getrandbits(32), _counter[0])
    if _exists(path):
        _rmtree(path)
    os.mkdir(path)
    return path


def rmtree(path):
    """Remove a directory tree made by tmpdir()."""
    if _exists(path):
        _rmtree(path)


def corpus_dir():
    """../shared/corpus (or $TILLTAP_CORPUS); skips the test when it is absent."""
    path = os.getenv("TILLTAP_CORPUS")
    if not path:
        here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
        path = here + "/../../../shared/corpus"
    if not _exists(path + "/real"):
        skip("ESC/POS corpus not found at %s (set TILLTAP_CORPUS)" % path)
    return path


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def pending(spool, limit, max_bytes=None):
    """spool.pending() with each record's parts joined, checking that the parts are small
    (the uplink never needs a block of a whole record's size)."""
    out = []
    for seq, parts in spool.pending(limit, max_bytes):
        assert parts and max(len(p) for p in parts) <= 1024, [len(p) for p in parts]
        out.append((seq, b"".join(bytes(p) for p in parts)))
    return out
