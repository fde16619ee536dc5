"""`tilltap parse` as a user runs it: the installed console command."""
import json
import os
import subprocess

import pytest
from corpus import corpus_files, need_corpus
from unixport import VENV_BIN

from tilltap_host.receipt_factory import generate_receipts, generate_stream

TILLTAP = os.path.join(VENV_BIN, "tilltap")


def tilltap(*args):
    return subprocess.run([TILLTAP] + list(args), capture_output=True, text=True, timeout=120)


def test_parse_prints_one_json_object_per_file(tmp_path):
    receipts = [r for r in generate_receipts(seed=3, count=6) if r.language != "zh"][:3]
    path = tmp_path / "three.bin"
    path.write_bytes(generate_stream(receipts))
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    result = tilltap("parse", "--chunk-size", "5", str(path), str(empty))
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["file"] for o in out] == [str(path), str(empty)]
    parsed = out[0]["receipts"]
    assert len(parsed) == 3
    for r, p in zip(receipts, parsed):
        assert set(p) >= {"lines", "barcodes", "codes2d", "images", "cut"}
        assert [line for line in p["lines"] if line.strip()] == r.lines
        assert [tuple(b) for b in p["barcodes"]] == [tuple(b) for b in
                                                                       r.barcodes]
        assert all(set(i) >= {"width", "height"} for i in p["images"])
        assert p["cut"] == r.cut
    assert out[0]["stats"]["bytes"] == path.stat().st_size
    assert out[1]["receipts"] == []


def test_stream_without_cut_is_one_receipt(tmp_path):
    path = tmp_path / "nocut.bin"
    path.write_bytes(b"\x1b@Coffee   3.50\nTotal   3.50\n")
    out = json.loads(tilltap("parse", str(path)).stdout)
    assert out["receipts"] == [{"lines": ["Coffee   3.50", "Total   3.50"], "barcodes": [],
                                "codes2d": [], "images": [], "cut": None, "end": "end",
                                "drawer": False}]


def test_bad_file_is_reported_and_others_still_processed(tmp_path):
    good = tmp_path / "good.bin"
    good.write_bytes(b"ok\n")
    result = tilltap("parse", str(tmp_path / "missing.bin"), str(good))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "missing.bin" in result.stderr
    assert json.loads(result.stdout)["receipts"][0]["lines"] == ["ok"]


def test_unknown_option_values_fail_with_one_line():
    for args in (["--profile", "ibm"], ["--codepage-map", "acme"], ["--encoding", "koi8"]):
        result = tilltap("parse", *args, "x.bin")
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert "acme" in result.stderr or "invalid choice" in result.stderr


def test_chinese_receipt_with_encoding_option():
    need_corpus()
    path = next(p for p in corpus_files() if p.endswith("taoyuan__npos/text-1.bin"))
    out = json.loads(tilltap("parse", "--encoding", "gb18030", path).stdout)
    assert "实收：80" in " ".join(out["receipts"][0]["lines"])


def test_parse_ocr_reads_a_raster_only_receipt(tmp_path):
    """A driver's picture of a receipt: no text until --ocr reads it; --fields then extracts."""
    from tilltap_host import raster_receipts
    font = raster_receipts.find_font("Liberation Sans")
    if font is None:
        pytest.skip("font Liberation Sans not installed")
    (receipt,) = raster_receipts.driver_receipts(font, 512, False, seed=3, count=1)
    path = tmp_path / "driver.bin"
    path.write_bytes(receipt.stream)
    plain = json.loads(tilltap("parse", str(path)).stdout)["receipts"][0]
    assert plain["lines"] == [] and "ocr" not in plain
    result = tilltap("parse", "--ocr", "--fields", str(tmp_path / "missing.bin"), str(path))
    assert result.returncode == 1 and "missing.bin" in result.stderr
    (read,) = json.loads(result.stdout)["receipts"]
    assert read["lines"] == read["ocr"]["lines"] and read["ocr"]["seconds"] > 0
    assert raster_receipts.lines_exact(read["lines"], receipt.lines) >= 0.9 * len(receipt.lines)
    assert read["fields"]["total"] == receipt.total


def test_an_extractor_failure_loses_only_its_file(tmp_path, monkeypatch, capsys):
    """`tilltap parse --fields` isolates each file: a file whose extraction fails is reported
    on stderr (exit status 1) and the files after it are still printed. The extractor never
    raises on any text (property test in test_extract.py), so the failure is injected."""
    import argparse

    from tilltap.cli import parse

    bad, good = tmp_path / "bad.bin", tmp_path / "good.bin"
    bad.write_bytes(b"\x1b@POISON   1.00\n")
    good.write_bytes(b"\x1b@Coffee   3.50\nTotal   3.50\n")
    real = parse.add_fields

    def add_fields(receipt):
        if "POISON" in receipt["lines"][0]:
            raise ValueError("'x' is not in list")
        return real(receipt)

    monkeypatch.setattr(parse, "add_fields", add_fields)
    args = argparse.Namespace(files=[str(bad), str(good)], profile="epson", codepage_map=None,
                              encoding=None, chunk_size=0, fields=True, ocr=False,
                              printer_model="", tear_off="auto", tear_lines=5)
    assert parse.run(args) == 1
    out, err = capsys.readouterr()
    assert "bad.bin: ValueError" in err
    (printed,) = [json.loads(line) for line in out.splitlines()]
    assert printed["file"] == str(good) and printed["receipts"][0]["fields"]["total"] == "3.50"
