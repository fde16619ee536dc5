"""Every firmware test module also runs under the real MicroPython interpreter (unix port)."""
import glob
import os
import re

import pytest
from unixport import FIRMWARE_TESTS, run_micropython

MODULES = sorted(os.path.basename(p)[:-3]
                 for p in glob.glob(os.path.join(FIRMWARE_TESTS, "test_*.py")))


@pytest.mark.parametrize("module", MODULES)
def test_module_passes_on_micropython(module):
    result = run_micropython([os.path.join(FIRMWARE_TESTS, "mp_run.py"), module])
    output = result.stdout + result.stderr
    summary = re.search(r"(\d+) passed, (\d+) failed, (\d+) skipped", output)
    assert summary, output[-4000:]
    assert result.returncode == 0 and summary.group(2) == "0", output[-8000:]
    assert int(summary.group(1)) > 0 or int(summary.group(3)) > 0, output[-4000:]
