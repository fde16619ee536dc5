"""Every real stream in the corpus: no exception, same output for every chunking, on both
interpreters."""
import json

import pytest
from corpus import corpus_files, need_corpus, options_for, short
from unixport import FIRMWARE_TESTS, run_micropython

from tilltap_fw.escpos_parser import LINE, decode_text
from tilltap_fw.receipt import parse_stream

FILES = corpus_files()


@pytest.mark.parametrize("path", FILES, ids=[short(p) for p in FILES])
def test_corpus_stream_is_chunk_invariant(path):
    with open(path, "rb") as f:
        data = f.read()
    whole = parse_stream(data, 0, **options_for(path))
    for chunk in (1, 7, 64):
        assert parse_stream(data, chunk, **options_for(path)) == whole, chunk
    _receipts, stats = whole
    assert stats["bytes"] == len(data)
    assert stats["desync"] == 0


def test_chinese_gbk_receipt_decodes():
    need_corpus()
    path = next(p for p in FILES if p.endswith("taoyuan__npos/text-1.bin"))
    receipts, _ = parse_stream(open(path, "rb").read(), encoding="gb18030")
    text = "\n".join(receipts[0]["lines"])
    for word in ("来钱客栈", "收银", "单号", "商品名称", "肥皂", "实收", "找零", "欢迎光临"):
        assert word in text
    assert receipts[0]["cut"] == "partial"


def test_star_receipt_codes():
    need_corpus()
    path = next(p for p in FILES if p.endswith("eljojo__estrella/full_receipt.bin"))
    receipts, _ = parse_stream(open(path, "rb").read(), profile="star")
    r = receipts[0]
    assert "TOTAL:  48.31" in r["lines"]
    assert r["barcodes"] == [["CODE39", "CHURRA-2026-0001"]]
    assert [t for t, _ in r["codes2d"]] == ["QR", "PDF417"]


def test_micropython_gives_the_same_events_as_cpython():
    """The board's parser (unix port) and the server's (CPython) agree on every corpus stream."""
    need_corpus()
    from tilltap_fw import escpos_parser

    args = []
    for path in FILES:
        opts = options_for(path)
        args.append("%s|%s|%s|%d" % (path, opts.get("profile", "epson"), opts.get("encoding", ""),
                                     512))
    result = run_micropython([FIRMWARE_TESTS + "/parser_dump.py"] + args, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    dumps = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(dumps) == len(FILES)
    for dump, path in zip(dumps, FILES):
        p = escpos_parser.Parser(**options_for(path))
        data = open(path, "rb").read()
        expected = [list(e) for e in p.feed(data) + p.close()]
        got = dump["events"]
        assert len(got) == len(expected), short(path)
        for g, e in zip(got, expected):
            if g[0] == LINE and g[1] is None:
                # the board kept raw bytes; the server decodes them to the same text
                text = "".join(decode_text(bytes.fromhex(h), enc, intl) for enc, intl, h in g[2])
                assert [LINE, text.rstrip(" "), None] == e, short(path)
            else:
                assert g == e, short(path)
        stats = p.stats()
        assert dump["stats"] == stats, short(path)
