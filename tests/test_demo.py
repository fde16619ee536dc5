"""`tilltap demo --once`: the whole system on this PC, both uplinks, judged by its own report."""
import os
import subprocess

import pytest

from corpus import need_corpus
from unixport import VENV_BIN


@pytest.mark.parametrize("uplink", ["http", "mqtt"])
def test_demo_once_is_byte_exact_and_stores_every_receipt_once(uplink, tmp_path):
    need_corpus()
    result = subprocess.run([os.path.join(VENV_BIN, "tilltap"), "demo", "--once", "--uplink",
                             uplink, "--port", "0", "--dir", str(tmp_path), "--generated", "12"],
                            capture_output=True, text=True, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "identical: yes" in out and "identical: NO" not in out
    assert "each once" in out and "result:                        OK" in out
