"""firmware/model_tables.py: generated, fresh, and read as escpos-printer-db says."""
import os
import subprocess
import sys

from escpos import capabilities

from tilltap_fw import escpos_parser, model_tables, printer_models, protocol_check
from tilltap_host.unixport import ROOT


def test_the_committed_tables_are_what_the_generator_writes():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_printer_models.py"),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_model_reads_as_escpos_printer_db_says():
    """Each model's pages, cutter and Star flag as python-escpos's own profile gives them; a
    page with a Python codec decodes as that codec does."""
    models = printer_models.names()
    assert "TM-T88V" in models and "POS-5890" in models
    assert models == sorted(capabilities.CAPABILITIES["profiles"])
    raw = bytes(range(0x80, 0x100))
    for model in models:
        profile = capabilities.get_profile(model)
        table, cuts, star = printer_models.find(model)
        assert cuts == (profile.supports("paperFullCut") or profile.supports("paperPartCut"))
        assert star == profile.supports("starCommands"), model
        for n, name in profile.codePages.items():
            got = printer_models.page(table, int(n))
            if name == "Unknown":
                assert got == printer_models.UNKNOWN_PAGE, (model, n)
                continue
            assert got, (model, n)
            codec = capabilities.CAPABILITIES["encodings"][name].get("python_encode")
            if codec and name != "CP932":     # CP932 stands for the single-byte Katakana page
                assert escpos_parser.decode_text(raw, got) == raw.decode(codec, "backslashreplace")
        assert printer_models.page(table, 256) is None


def test_names_that_are_no_model_are_not_found():
    for name in ("", "TM-T88", "tm-t88v", "TM-T88V ", "0:cp437", " TM-T88V"):
        assert printer_models.find(name) is None, name


def test_the_server_accepts_spans_in_every_models_pages():
    """The board names a span's encoding as the model's table does: the server must take every
    such name (a record it refuses stays in the board's spool), and no other."""
    names = {item.split(":", 1)[1] for table in model_tables.TABLES for item in table.split()}
    names.discard(printer_models.UNKNOWN_PAGE)
    assert "cp3840" in names and "cp1257" in names
    for name in names:
        assert protocol_check.is_span_encoding(name), name
    for name in (printer_models.UNKNOWN_PAGE, "cp9999", "rot13", ""):
        assert not protocol_check.is_span_encoding(name), name
