"""Puts the tests' shared helpers (tests/, tests/firmware/) on sys.path; the firmware itself is
the installed package tilltap_fw, as the server imports it."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("tests/firmware", "tests"):
    path = os.path.join(ROOT, sub)
    if path not in sys.path:
        sys.path.insert(0, path)
