"""firmware/codec_tables.py and command_tables.py: generated and fresh; the codec tables read on
the board as CPython's codecs read."""
import os
import subprocess
import sys

from tilltap_fw import codec_tables, escpos_parser
from tilltap_fw.fields_mode import PLACEHOLDER, Reader
from tilltap_host.unixport import ROOT


def test_the_committed_tables_are_what_the_generator_writes():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_codec_tables.py"),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_committed_command_tables_are_what_the_generator_writes():
    """firmware/command_tables.py (escpos_parser's framing tables) matches its SPEC."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_command_tables.py"),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_page_reads_as_the_servers_decoder_reads_it():
    """Bytes 0x80-0xFF of each page: the board's table gives what escpos_parser.decode_text
    gives on CPython (a byte the page leaves undefined is PLACEHOLDER there, \\xNN here)."""
    reader = Reader()
    raw = bytes(range(0x80, 0x100))
    for page in codec_tables.PAGES.split():
        board = reader.line(((page, 0, raw),))
        assert len(board) == len(raw), page
        for byte, mine in zip(raw, board):
            want = escpos_parser.decode_text(bytes([byte]), page)
            assert mine == (PLACEHOLDER if want.startswith("\\x") else want), (page, hex(byte))


def test_cjk_words_are_found_only_at_character_boundaries():
    """"合计" (BA CF BC C6 in GB18030) inside other characters' bytes is not a label."""
    reader = Reader()
    word = "合计".encode("gb18030")
    assert reader.line((("gb18030", 0, word + b" 9.00"),)).startswith("合计")
    shifted = b"\xb0" + word + b"\xa1"          # the same bytes, one byte off
    assert "合计" not in reader.line((("gb18030", 0, shifted),))
