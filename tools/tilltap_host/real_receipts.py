"""receipts-real (../shared/corpus/receipts-real): its fixed tune/measure split and its scoring.

Extraction rules are tuned on the "tune" part only; the "measure" part is only scored (the
test's thresholds and the README's figures), so the figures say how the rules do on receipts
they were not tuned on. The split is deterministic and stratified per dataset: within each
dataset the receipts are ordered by the SHA-256 of their id ("sroie/000") and the first 70% are
the tune part. `python -m tilltap_host.real_receipts split` rewrites the list (tests/data/
receipts-real-split.tsv), which is committed so a change of corpus shows in review.

Scoring (the corpus README's): total exact (decimal compare), date exact (the date part of
"datetime"; either reading of an ambiguous date counts), items (an expected item is found when
an extracted item's name contains its name and the amounts are equal; share of expected items),
lines exact after collapsing runs of spaces (blank lines left out).
"""
import decimal
import hashlib
import json
import os
import re

from tilltap_host.corpus import CORPUS
from tilltap_host.unixport import ROOT

REAL = os.path.join(CORPUS, "receipts-real")
DATASETS = ("sroie", "cord", "wildreceipt")
SPLIT_FILE = os.path.join(ROOT, "tests", "data", "receipts-real-split.tsv")
TUNE_SHARE = 0.7
_SPACES = re.compile(r"\s+")


def make_split():
    """{id: "tune" | "measure"} from the corpus folder (the rule above)."""
    out = {}
    for dataset in DATASETS:
        ids = sorted("%s/%s" % (dataset, n[:-4])
                     for n in os.listdir(os.path.join(REAL, dataset)) if n.endswith(".bin"))
        ids.sort(key=lambda i: hashlib.sha256(i.encode()).hexdigest())
        cut = round(len(ids) * TUNE_SHARE)
        for k, rid in enumerate(ids):
            out[rid] = "tune" if k < cut else "measure"
    return out


def split():
    """{id: part} as committed in tests/data/receipts-real-split.tsv."""
    with open(SPLIT_FILE, encoding="utf-8") as f:
        rows = [line.split("\t") for line in f.read().splitlines()[1:] if line]
    return dict(rows)


def receipts(part):
    """[(id, stream bytes, ground truth dict)] of one part ("tune", "measure" or "all")."""
    out = []
    for rid, which in sorted(split().items()):
        if part not in ("all", which):
            continue
        base = os.path.join(REAL, rid)
        with open(base + ".bin", "rb") as f, open(base + ".json", encoding="utf-8") as g:
            out.append((rid, f.read(), json.load(g)))
    return out


def _dec(value):
    try:
        return decimal.Decimal(value)
    except (decimal.InvalidOperation, TypeError, ValueError):
        return None


def _name(text):
    return _SPACES.sub(" ", text or "").strip().lower()


def score(fields, lines, truth):
    """{figure: (right, out of)} for one receipt; figures the ground truth lacks are left out.

    fields: the extracted fields dict (ReceiptFields.to_dict() or the board's); lines: the
    parsed text lines (None to leave the lines figure out).
    """
    out = {}
    if truth.get("total") is not None:
        want = _dec(truth["total"])
        out["totals"] = (int(want is not None and _dec(fields.get("total")) == want), 1)
    if truth.get("date"):
        dates = {truth["date"]} | set(truth.get("date_alternatives") or ())
        got = (fields.get("datetime") or "")[:10]
        out["dates"] = (int(got in dates), 1)
    if truth.get("items"):
        got = [(_name(i.get("name")), _dec(i.get("amount")), _dec(i.get("qty")))
               for i in fields.get("items", ())]
        found = counted = counted_right = named = 0
        for item in truth["items"]:
            name, amount = _name(item["name"]), _dec(item["amount"])
            match = [(n, q) for n, a, q in got if name in n and a == amount]
            if match:
                found += 1
                named += name in [n for n, _q in match]
                want = _dec(item.get("qty"))
                if want is not None:   # not "1PK", "2X", "(2@$1.95)"
                    counted += 1
                    counted_right += match[0][1] == want
        out["items"] = (found, len(truth["items"]))
        if found:
            # not in the corpus README's score: of the items found, those whose name is the
            # printed name alone (no count, code, price or currency left in it)
            out["names"] = (named, found)
        if counted:
            # not in the corpus README's score: of the items found whose truth has a number
            # for the quantity, those read with that quantity
            out["quantities"] = (counted_right, counted)
    if truth.get("currency"):
        out["currency"] = (int(fields.get("currency") == truth["currency"]), 1)
    if lines is not None:
        got, want = ([_SPACES.sub(" ", x.strip()) for x in ls if x and x.strip()]
                     for ls in (lines, truth["lines"]))
        out["lines"] = (sum(1 for a, b in zip(got, want) if a == b), len(want))
    return out


def measure(part, extract=None):
    """{group: {figure: [right, out of]}} over one part through `tilltap parse --fields`'s path
    (parse_stream, then add_fields); groups: each dataset, each ground-truth currency (the
    shop's country) as "currency XXX", and "all". Also {id: {figure: (right, out of)}} per
    receipt, for looking at the failures of the tune part.

    extract: fields of a parsed receipt dict (default: the server's add_fields).
    """
    from tilltap_fw.receipt import parse_stream
    if extract is None:
        from tilltap.analysis.extract import add_fields

        def extract(receipt):
            return add_fields(receipt)["fields"]
    totals: dict = {}
    per_receipt: dict = {}
    for rid, stream, truth in receipts(part):
        parsed, _ = parse_stream(stream)
        lines = [line for r in parsed for line in r["lines"]]
        fields = extract(parsed[0]) if parsed else {}
        got = score(fields, lines, truth)
        per_receipt[rid] = got
        groups = (truth["dataset"], "currency %s" % (truth.get("currency") or "unknown"), "all")
        for group in groups:
            row = totals.setdefault(group, {})
            for figure, (right, out_of) in got.items():
                cell = row.setdefault(figure, [0, 0])
                cell[0] += right
                cell[1] += out_of
    return totals, per_receipt


_WORD_SPACE = re.compile(r"(?<=\S) (?=\S)")


def glued_totals(part):
    """(right, out of): totals of the part's SROIE and CORD receipts with the single spaces
    removed from their lines, as WildReceipt's transcriptions lose them ("GRANDTOTAL"): how the
    rules cope with glued labels on receipts whose spaced form they read (the firmware's
    extractor on the ground truth's lines, no parsing)."""
    from tilltap_fw.fields import extract
    right = out_of = 0
    for _rid, _stream, truth in receipts(part):
        if truth["dataset"] == "wildreceipt" or truth.get("total") is None:
            continue
        got = extract([_WORD_SPACE.sub("", line) for line in truth["lines"]])["total"]
        right += _dec(got) == _dec(truth["total"])
        out_of += 1
    return right, out_of


_TOTAL_WORDS = re.compile(r"total|jumlah|amount|due|payable|summe|\btl\b", re.I)
_AMOUNT_END = re.compile(r"\S*\d[\d.,]*\S*\s*$")
# How a total's line is changed, as WildReceipt's transcriptions change rows (the lines
# given: the line's label and its amount, each at its column):
PERTURBATIONS = {
    # the boxes it could not read left out: only the amount is left
    "unlabelled": lambda label, amount: [amount],
    # a skewed photo's row rebuilt as two: the label above its amount, or under it
    "label above": lambda label, amount: [label, amount],
    "label under": lambda label, amount: [amount, label],
}


def perturbed_totals(part, how):
    """(right, out of): totals of the part's receipts read right as they are, read again with
    their total's line changed as PERTURBATIONS[how] says: how far the rules find the total
    when its row is damaged (from cash less change, the items' sum, the line above or under).
    The total's line is the first with a total word and the total's digits in its last word;
    receipts without one are not counted, nor for the splits those with no label before the
    amount."""
    from tilltap_fw.fields import extract
    change = PERTURBATIONS[how]
    right = out_of = 0
    for _rid, _stream, truth in receipts(part):
        want = _dec(truth.get("total"))
        lines = truth["lines"]
        if want is None or _dec(extract(lines)["total"]) != want:
            continue
        digits = truth["total"].replace(".", "").lstrip("0")
        for k, line in enumerate(lines):
            end = _AMOUNT_END.search(line)
            if end and _TOTAL_WORDS.search(line) and digits in re.sub(r"\D", "", end.group()):
                label = line[:end.start()].rstrip()
                if label.strip() or how == "unlabelled":
                    rows = change(label, " " * end.start() + end.group())
                    right += _dec(extract(lines[:k] + rows + lines[k + 1:])["total"]) == want
                    out_of += 1
                break
    return right, out_of


FIGURES = ("totals", "dates", "items", "names", "quantities", "lines", "currency")


def report(totals):
    """Printable lines: one per group, figures as percentages with their counts."""
    out = []
    for group in sorted(totals, key=lambda g: (g == "all", g.startswith("currency"), g)):
        row = totals[group]
        out.append("%-16s %s" % (group, ", ".join(
            "%s %.1f%% (%d/%d)" % (f, 100.0 * row[f][0] / row[f][1], row[f][0], row[f][1])
            for f in FIGURES if f in row and row[f][1])))
    return out


def write_split():
    """Writes tests/data/receipts-real-split.tsv from the corpus."""
    os.makedirs(os.path.dirname(SPLIT_FILE), exist_ok=True)
    with open(SPLIT_FILE, "w", encoding="utf-8") as f:
        f.write("id\tpart\n")
        for rid, part in sorted(make_split().items()):
            f.write("%s\t%s\n" % (rid, part))


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["split"]:
        write_split()
    elif sys.argv[1:2] == ["glued"]:   # python -m tilltap_host.real_receipts glued [part]
        print("totals with spaces lost: %d of %d" % glued_totals(
            sys.argv[2] if len(sys.argv) > 2 else "tune"))
    elif sys.argv[1:2] == ["damaged"]:   # ... damaged [part]: the total's row damaged
        for how in PERTURBATIONS:
            print("totals, %s: %d of %d" % ((how,) + perturbed_totals(
                sys.argv[2] if len(sys.argv) > 2 else "tune", how)))
    else:  # measure a part: python -m tilltap_host.real_receipts [tune|measure|all]
        print("\n".join(report(measure(sys.argv[1] if len(sys.argv) > 1 else "tune")[0])))
