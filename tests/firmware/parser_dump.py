"""Prints the parser's events for each file as one JSON line (run under MicroPython by tests)."""
import json
import sys

from tilltap_fw.escpos_parser import LINE, Parser


def dump(path, profile, encoding, chunk):
    with open(path, "rb") as f:
        data = f.read()
    p = Parser(profile=profile, encoding=encoding or None)
    out = []
    mv = memoryview(data)
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        out += p.feed(mv[i:i + step])
    out += p.close()
    events = []
    for e in out:
        if e[0] == LINE and e[2] is not None:
            e = (LINE, None, [[enc, intl, "".join("%02x" % b for b in raw)]
                              for enc, intl, raw in e[2]])
        events.append(list(e))
    print(json.dumps({"file": path, "events": events, "stats": p.stats()}))


for arg in sys.argv[1:]:
    path, profile, encoding, chunk = arg.split("|")
    dump(path, profile, encoding, int(chunk))
