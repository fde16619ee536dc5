"""Runs firmware test modules under MicroPython: every `test_*` function, then one summary line.

Usage: micropython tests/firmware/mp_run.py test_module [test_module ...]
The same modules run under pytest on CPython; see fwtest.py for the shared helpers.
"""
import sys

import fwtest


def run(module_names):
    passed = failed = skipped = 0
    for name in module_names:
        module = __import__(name)
        for attr in sorted(dir(module)):
            if not attr.startswith("test_"):
                continue
            func = getattr(module, attr)
            try:
                func()
            except fwtest.SkipTest as e:
                skipped += 1
                print("SKIP %s.%s: %s" % (name, attr, e))
                continue
            except Exception as e:
                failed += 1
                print("FAIL %s.%s" % (name, attr))
                sys.print_exception(e)
                continue
            passed += 1
            print("PASS %s.%s" % (name, attr))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return failed


if __name__ == "__main__":
    sys.exit(1 if run(sys.argv[1:]) else 0)
