"""Receipt fields on the server: the board's rules (firmware/fields.py) and what needs full Python.

The board extracts total, subtotal, currency, receipt and member number, date, payments and
items with firmware/fields.py. The server runs the same scanner and keyword tables, and adds:
store name, cashier and register, discounts, tax lines, amount tendered and change, item SKUs,
the receipt's barcode and QR contents, and per-printer layout templates that override the
built-in rules where a printer's layout defeats them.

    fields = extract_fields(lines, codes, template)   # -> ReceiptFields
    receipt = add_fields(receipt_dict)    # `tilltap parse --fields`: adds receipt["fields"]

Card numbers are masked (fields.mask_cards) before anything is extracted or output.

A template is data only (JSON), checked by load_template():

    {"name": "Bäckerei Schäfer TM-T88V",
     "decimal_comma": true,
     "fields": {
        "total":      {"pattern": "^Summe\\s+(?P<value>\\S+)"},
        "receipt_no": {"anchor": "^Beleg-Nr", "columns": [10, 16]},
        "store":      {"line": 0},
        "cashier":    {"anchor": "^Es bediente", "offset": 1}},
     "items": {"start": "^=+$", "end": "^Zwischensumme",
               "pattern": "^(?:(?P<qty>\\d+) x )?(?P<name>.+?)\\s{2,}(?P<amount>\\S+)$"}}

A field rule picks a line by "pattern" (regex searched in each line; the value is the group
"value", else group 1, else the whole match), by "anchor" (regex; then "offset" lines further
down, value = "columns" [start, end] of that line or the text after the anchor) or by "line"
(index, negative from the end; value = "columns" or the whole line). "occurrence": "first"
(default) or "last". Items: optional "start"/"end" regexes bounding the item lines, and either
"pattern" (named groups name, qty, unit_price, amount, sku) or "columns" ({group: [start, end]}).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from tilltap_fw import escpos_parser, protocol_check
from tilltap_fw import fields as rules


@dataclass
class Item:
    name: str | None
    qty: str
    unit_price: str | None
    amount: str
    sku: str | None = None


@dataclass
class Payment:
    type: str           # cash, card, wechat, alipay
    amount: str
    label: str | None = None


@dataclass
class Discount:
    description: str
    amount: str         # negative as printed


@dataclass
class TaxLine:
    rate: str | None    # percent, "19"
    tax: str
    net: str | None = None


@dataclass
class ReceiptFields:
    """Everything extracted from one receipt. Amounts are decimal strings with a dot."""

    store: str | None = None
    receipt_no: str | None = None
    datetime: str | None = None          # ISO 8601, local time as printed
    cashier: str | None = None
    register: str | None = None
    items: list[Item] = field(default_factory=list)
    subtotal: str | None = None
    discounts: list[Discount] = field(default_factory=list)
    tax: str | None = None                # total tax printed, None if none is
    tax_lines: list[TaxLine] = field(default_factory=list)
    total: str | None = None
    currency: str | None = None           # ISO 4217
    payments: list[Payment] = field(default_factory=list)
    tendered: str | None = None
    change: str | None = None
    member_id: str | None = None
    codes: list[list[str]] = field(default_factory=list)   # [kind, data]: EAN13, QR, ...

    def to_dict(self) -> dict:
        return asdict(self)


# ---- built-in rules ---------------------------------------------------------------------------

_SKU = re.compile(r"(?<![\d.,])\d{6,14}(?![\d.,])")
_DECORATION = " \t-—=*~_#+.·•"
# Words before the net amount on a tax line; any other amount there is the gross.
_NET_WORDS = ("net", "netto", "nett", "base", "ht")


class _ServerExtractor(rules.Extractor):
    """firmware/fields.py's Extractor plus the fields the board leaves to the server."""

    def __init__(self, lines):
        super().__init__(lines)
        self.lines = lines
        self.cashier = None
        self.register = None
        self.discounts = []
        self.tax_lines = []
        self.payment_labels = []  # as printed, in the order of self.payments

    def on_line(self, index, line, text, nums, hits, found):
        for h, (start, end, name, tag) in enumerate(hits):
            stop = hits[h + 1][0] if h + 1 < len(hits) else len(text)
            if name == "cashier" and self.cashier is None:
                self.cashier = _text_after(line, end, stop)
            elif name == "register" and self.register is None:
                self.register = rules.token_after(line, text, end, stop)
        labelled = set()
        for hit, num in found:
            labelled.add(hit[2])
            if hit[2] == "payment":
                self.payment_labels.append(_payment_label(line, hits, hit))
            elif hit[2] == "tax":
                self.tax_lines.append(self._tax_line(text, nums, hit, num))
            elif hit[2] == "discount":
                self.discounts.append(Discount(_strip_label(line[:num[0]]),
                                               rules.fmt(num[2], num[3])))
        if not labelled and nums and not self._is_item_line(index):
            last = nums[-1]
            # an unlabelled negative amount after the items ("Coupon 00112563  -5.00") is a
            # discount (among them, with a name of its own, it is an item: fields.py)
            if (last[2] < 0 and rules.is_money(last, self.decimals)
                    and not text[last[1]:].strip(" *")):
                self.discounts.append(Discount(_strip_label(line[:last[0]]),
                                               rules.fmt(last[2], last[3])))

    def _is_item_line(self, index):
        return bool(self.items) and self.items[-1][5] == index

    def _tax_line(self, text, nums, hit, num):
        """'VAT 20% on 10.95  1.83', 'MwSt 7% Netto 8,80  0,62', 'IVA 21% Base 53,55  11,25'."""
        rate = net = None
        tax = rules.fmt(num[2], num[3])
        for other in nums:
            if other[4] & rules.PERCENT and rate is None:
                rate = rules.fmt(other[2], other[3])
            elif other is not num and other[0] > hit[1] and rules.is_money(other, self.decimals):
                base = rules.fmt(other[2], other[3])
                if rules.find_word(text[hit[1]:other[0]], _NET_WORDS) >= 0:
                    net = base
                else:  # the gross amount the tax is included in
                    net = rules.add_amounts((base, "-" + tax))
        return TaxLine(rate, tax, net)

    def fields(self, codes) -> ReceiptFields:
        base = self.result()
        labels = self.payment_labels
        payments = [Payment(p["type"], p["amount"], labels[k] if k < len(labels) else None)
                    for k, p in enumerate(base["payments"])]
        items = [Item(name, qty, price, amount, self._sku(first, last))
                 for name, qty, price, amount, first, last in self.items]
        tax = rules.add_amounts(t.tax for t in self.tax_lines) if self.tax_lines else None
        return ReceiptFields(
            store=_store_name(self.lines), receipt_no=base["receipt_no"],
            datetime=base["datetime"], cashier=self.cashier, register=self.register,
            items=items, subtotal=base["subtotal"], discounts=self.discounts, tax=tax,
            tax_lines=self.tax_lines, total=base["total"], currency=base["currency"],
            payments=payments, tendered=self._first("tendered"), change=self._first("change"),
            member_id=base["member_id"], codes=list(codes))

    def _sku(self, first, last):
        """A 6-14 digit article number printed on an item's lines (EAN, PLU, own codes)."""
        for index in range(first, last + 1):
            line = self.lines[index]
            match = _SKU.search(line) if line else None
            if match:
                return match.group()
        return None


def _text_after(line, start, stop):
    """'Server: Jess  Table 4' -> 'Jess': the text after a label, up to a wide gap or the
    next "label:" ('收银：1001 牌号：0001' -> '1001')."""
    value = line[start:stop].lstrip(" :：#.-")
    value = _NEXT_FIELD.split(value.strip(), maxsplit=1)[0]
    return value or None


_NEXT_FIELD = re.compile(r"\s{2,}|\s+(?=\S+[:：])")


def _strip_label(text):
    return text.strip().rstrip(" :：$€£￥¥")


def _payment_label(line, hits, hit):
    """The payment words as printed: "Visa Credit Card" (three labels in a row), "现金"; None
    when the label ended the line above (its amount is on this line)."""
    if hit not in hits:
        return None
    start = hits.index(hit)
    while start and hits[start - 1][2] == "payment":
        start -= 1
    return line[hits[start][0]:hit[1]]


def _store_name(lines):
    """The first header line with a word in it, decoration trimmed ('—城画—' -> '城画')."""
    for line in lines[:6]:
        if line and rules.has_word(line):
            name = line.strip(_DECORATION)
            if name:
                return name
    return None


def _item_name(item):
    """An item's name from upload mode "fields": as sent, or decoded from its bytes where the
    board could not read it (name_raw, fields_mode.py)."""
    if "name_raw" not in item:
        return item["name"]
    try:
        spans = tuple((enc, intl, protocol_check.unb64(data))
                      for enc, intl, data in item["name_raw"])
    except protocol_check.ProtocolError:
        return None      # bytes that are not base64: no name to read, the item still counts
    return escpos_parser.decode_line(spans).strip() or None


def board_fields(fields: dict) -> ReceiptFields:
    """The ReceiptFields of a record the board sent in upload mode "fields" (protocol.py
    FIELD_KEYS, already checked by protocol_check): there are no lines to extract from."""
    mask = rules.mask_cards          # as for lines: no card number is stored
    return ReceiptFields(
        receipt_no=mask(fields["receipt_no"]), datetime=fields["datetime"],
        items=[Item(mask(_item_name(i)), i["qty"], i["unit_price"], i["amount"])
               for i in fields["items"]],
        subtotal=fields["subtotal"], total=fields["total"], currency=fields["currency"],
        payments=[Payment(p["type"], p["amount"]) for p in fields["payments"]],
        member_id=mask(fields["member_id"]))


def extract_fields(lines, codes=(), template=None) -> ReceiptFields:
    """All fields of one receipt. lines may hold None (undecoded); card numbers are masked first.

    codes: the receipt's barcodes and 2D codes, [kind, data] pairs as a record holds them.
    template: a validated template (load_template) whose fields override the built-in rules.
    """
    lines = [rules.mask_cards(line) for line in lines]
    extractor = _ServerExtractor(lines).run(lines)
    result = extractor.fields([[kind, rules.mask_cards(data)] for kind, data in codes])
    if template is not None:
        found = apply_template(template, lines)
        for name, value in found.items():
            if value is not None and value != []:
                setattr(result, name, value)
    return result


def add_fields(receipt: dict, template=None) -> dict:
    """`tilltap parse --fields`: the receipt dict with card numbers masked and a "fields" object.

    fields has total, subtotal, currency, receipt_no, datetime, member_id, payments [{type,
    amount, label}], items [{name, qty, unit_price, amount, sku}] and the server's other fields
    (store, cashier, register, discounts, tax, tax_lines, tendered, change, codes).
    """
    out = dict(receipt)
    out["lines"] = [rules.mask_cards(line) for line in receipt.get("lines", ())]
    for key in ("barcodes", "codes2d"):
        out[key] = [[kind, rules.mask_cards(data)] for kind, data in receipt.get(key, ())]
    out["fields"] = extract_fields(out["lines"], out["barcodes"] + out["codes2d"],
                                   template).to_dict()
    return out


# ---- templates --------------------------------------------------------------------------------


class TemplateError(ValueError):
    """A layout template that is not valid; the message names the bad key."""


_AMOUNT_FIELDS = ("subtotal", "tax", "total", "tendered", "change")
_TEXT_FIELDS = ("store", "receipt_no", "cashier", "register", "currency", "member_id")
TEMPLATE_FIELDS = _AMOUNT_FIELDS + _TEXT_FIELDS + ("datetime",)
_ITEM_GROUPS = ("name", "qty", "unit_price", "amount", "sku")
_RULE_KEYS = ("pattern", "anchor", "line", "offset", "columns", "occurrence")


@dataclass(frozen=True)
class Template:
    """A checked layout template: compiled patterns, nothing executable."""

    name: str | None
    decimal_comma: bool | None
    fields: dict            # field -> rule dict (patterns compiled)
    items: dict | None


def load_template(data) -> Template:
    """Check a template (dict or JSON text) and compile its patterns; TemplateError if bad."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise TemplateError("template: not JSON: %s" % e) from None
    if not isinstance(data, dict):
        raise TemplateError("template: must be a JSON object")
    _only_keys(data, ("name", "decimal_comma", "fields", "items"), "template")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise TemplateError("template.name: must be a string")
    comma = data.get("decimal_comma")
    if comma is not None and not isinstance(comma, bool):
        raise TemplateError("template.decimal_comma: must be true or false")
    rules_in = data.get("fields", {})
    if not isinstance(rules_in, dict):
        raise TemplateError("template.fields: must be an object")
    checked = {}
    for key, rule in rules_in.items():
        if key not in TEMPLATE_FIELDS:
            raise TemplateError("template.fields.%s: unknown field (known: %s)"
                                % (key, ", ".join(TEMPLATE_FIELDS)))
        checked[key] = _check_rule(rule, "template.fields." + key)
    items = data.get("items")
    if items is not None:
        items = _check_items(items, "template.items")
    return Template(name, comma, checked, items)


def _only_keys(obj, known, where):
    for key in obj:
        if key not in known:
            raise TemplateError("%s.%s: unknown key (known: %s)" % (where, key, ", ".join(known)))


def _regex(value, where):
    if not isinstance(value, str):
        raise TemplateError("%s: must be a regular expression string" % where)
    try:
        return re.compile(value)
    except re.error as e:
        raise TemplateError("%s: bad regular expression: %s" % (where, e)) from None


def _span(value, where):
    if not (isinstance(value, list) and len(value) == 2 and
            all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
            and value[0] < value[1]):
        raise TemplateError("%s: must be [start, end] columns, 0 <= start < end" % where)
    return tuple(value)


def _check_rule(rule, where):
    if not isinstance(rule, dict):
        raise TemplateError("%s: must be an object" % where)
    _only_keys(rule, _RULE_KEYS, where)
    kinds = [k for k in ("pattern", "anchor", "line") if k in rule]
    if len(kinds) != 1:
        raise TemplateError("%s: needs exactly one of pattern, anchor, line" % where)
    out = {"occurrence": rule.get("occurrence", "first")}
    if out["occurrence"] not in ("first", "last"):
        raise TemplateError("%s.occurrence: must be \"first\" or \"last\"" % where)
    if "pattern" in rule:
        if "columns" in rule or "offset" in rule:
            raise TemplateError("%s: pattern takes no columns or offset" % where)
        out["pattern"] = _regex(rule["pattern"], where + ".pattern")
    elif "anchor" in rule:
        out["anchor"] = _regex(rule["anchor"], where + ".anchor")
        offset = rule.get("offset", 0)
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TemplateError("%s.offset: must be an integer" % where)
        out["offset"] = offset
    else:
        line = rule["line"]
        if not isinstance(line, int) or isinstance(line, bool):
            raise TemplateError("%s.line: must be an integer" % where)
        if "offset" in rule:
            raise TemplateError("%s: line takes no offset" % where)
        out["line"] = line
    if "columns" in rule:
        out["columns"] = _span(rule["columns"], where + ".columns")
    return out


def _check_items(items, where):
    if not isinstance(items, dict):
        raise TemplateError("%s: must be an object" % where)
    _only_keys(items, ("start", "end", "pattern", "columns"), where)
    out = {}
    for key in ("start", "end"):
        if key in items:
            out[key] = _regex(items[key], "%s.%s" % (where, key))
    if ("pattern" in items) == ("columns" in items):
        raise TemplateError("%s: needs exactly one of pattern, columns" % where)
    if "pattern" in items:
        pattern = _regex(items["pattern"], where + ".pattern")
        for group in pattern.groupindex:
            if group not in _ITEM_GROUPS:
                raise TemplateError("%s.pattern: unknown group (?P<%s>) (known: %s)"
                                    % (where, group, ", ".join(_ITEM_GROUPS)))
        if "amount" not in pattern.groupindex:
            raise TemplateError("%s.pattern: needs a (?P<amount>...) group" % where)
        out["pattern"] = pattern
    else:
        columns = items["columns"]
        if not isinstance(columns, dict):
            raise TemplateError("%s.columns: must be an object" % where)
        for key, span in columns.items():
            if key not in _ITEM_GROUPS:
                raise TemplateError("%s.columns.%s: unknown column (known: %s)"
                                    % (where, key, ", ".join(_ITEM_GROUPS)))
            _span(span, "%s.columns.%s" % (where, key))
        if "amount" not in columns:
            raise TemplateError("%s.columns: needs an amount column" % where)
        out["columns"] = {k: tuple(v) for k, v in columns.items()}
    return out


def apply_template(template, lines) -> dict:
    """The fields a template finds in the lines: {field: value}, "items" if it has an item rule.

    template: a Template or anything load_template() accepts. Amounts are normalised to decimal
    strings with a dot, datetime to ISO 8601; fields the template's rules do not find are None.
    """
    if not isinstance(template, Template):
        template = load_template(template)
    lines = [line if line is not None else "" for line in lines]
    comma = template.decimal_comma
    if comma is None:
        comma = rules.receipt_style(lines)[0]
    out = {}
    for name, rule in template.fields.items():
        raw = _find(rule, lines)
        out[name] = _normalise(name, raw, comma)
    if template.items is not None:
        out["items"] = _template_items(template.items, lines, comma)
    return out


def _find(rule, lines):
    """The raw text a field rule selects, None if its line is not there."""
    found = None
    if "line" in rule:
        index = rule["line"]
        if -len(lines) <= index < len(lines):
            found = _cut(lines[index], rule, 0)
        return found
    for index, line in enumerate(lines):
        if "pattern" in rule:
            match = rule["pattern"].search(line)
            if match:
                found = _group(match)
        else:
            match = rule["anchor"].search(line)
            target = index + rule["offset"]
            if match and 0 <= target < len(lines):
                found = _cut(lines[target], rule, match.end() if target == index else 0)
        if found is not None and rule["occurrence"] == "first":
            return found
    return found


def _group(match):
    if "value" in match.re.groupindex:
        return match.group("value")
    return match.group(1) if match.re.groups else match.group()


def _cut(line, rule, after):
    if "columns" in rule:
        start, end = rule["columns"]
        return line[start:end].strip() or None
    return line[after:].strip(" :：\t") or None


def _normalise(name, raw, comma):
    if raw is None:
        return None
    if name in _AMOUNT_FIELDS:
        return _amount(raw, comma)
    if name == "datetime":
        text = rules.fold(raw)
        date = rules.find_date(text, False)
        if date is None:
            return None
        time = rules.find_time(text, date[3])
        if time is None:
            return "%04d-%02d-%02d" % date[:3]
        return "%04d-%02d-%02dT%02d:%02d:%02d" % (date[:3] + time)
    if name == "currency":
        return rules.currency(rules.fold(raw.strip())) or raw.strip()
    return raw.strip()


def _amount(raw, comma):
    """The last number in raw as a decimal string ('21,90 €' -> '21.90'), None if none."""
    nums = rules.numbers(rules.fold(raw), comma)
    if not nums:
        return None
    return rules.fmt(nums[-1][2], nums[-1][3])


def _template_items(spec, lines, comma):
    start = 0
    if "start" in spec:
        start = next((i + 1 for i, line in enumerate(lines) if spec["start"].search(line)),
                     len(lines))
    end = len(lines)
    if "end" in spec:
        end = next((i for i in range(start, len(lines)) if spec["end"].search(lines[i])),
                   len(lines))
    items = []
    for line in lines[start:end]:
        if "pattern" in spec:
            match = spec["pattern"].search(line)
            if not match:
                continue
            parts = {k: v for k, v in match.groupdict().items() if v is not None}
        else:
            parts = {k: line[a:b].strip() for k, (a, b) in spec["columns"].items()}
            parts = {k: v for k, v in parts.items() if v}
        amount = _amount(parts.get("amount", ""), comma)
        if amount is None:
            continue
        qty = _amount(parts["qty"], comma) if "qty" in parts else None
        price = _amount(parts["unit_price"], comma) if "unit_price" in parts else None
        if price is None:
            price = amount if qty in (None, "1") else rules.unit_price(
                rules.decimal(amount), rules.decimal(qty))
        items.append(Item(parts.get("name", "").strip() or None, qty or "1", price, amount,
                          parts.get("sku")))
    return items
