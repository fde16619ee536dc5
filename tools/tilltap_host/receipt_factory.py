"""Realistic test receipts with exact ground truth, printed through python-escpos.

Every receipt is first described as a list of print operations (text, style, logo, barcode, QR,
cut). The same list is (a) played into python-escpos' ``Dummy`` printer to get the ESC/POS bytes
and (b) read back to get the ground truth, so both always agree. python-escpos is an independent
ESC/POS generator: the parser under test never saw how these bytes were made.

Printer profiles: 42-column stores use ``TM-T88V`` (512 dots), 48-column stores ``TM-T20II``
(576 dots). Both use Epson's ``ESC t`` numbering, support partial cuts, function A and B
barcodes and all three image commands, and state their paper width (so ``image(center=True)``
works and nothing is printed to stdout, unlike the ``default`` profile).

What python-escpos 3.1 emits (checked on the bytes, relevant to the parser):

* Text goes through "magic encode": before the first text it sends ``ESC t n`` and switches
  again mid-line whenever a character is missing from the current table. It tries tables it
  already used first, then the profile's tables ordered by slot number *as a string*
  ("13" < "15" < "16" < "2"), so: German ä ö ü ß Ä Ö Ü, French é è à ç ê î É, Spanish ñ á é í ó ú
  ¿ ¡ º and £ all stay in PC437 (``ESC t 0``); € selects ISO 8859-7 (``ESC t 15``, byte A4);
  Á Í Ó Ú (capitals) select PC857 (``ESC t 13``); œ/Œ select WPC1252 (``ESC t 16``). The current
  table is kept while it fits: after an Œ the rest of that receipt stays in WPC1252 (à = E0,
  € = 80), so the same character has different bytes in different receipts.
  Characters no table has would become "?"; ``_TextCheck`` decodes every text call again and
  refuses such text, so ground truth is exact.
* Chinese: a ``text()`` call containing any character in U+4E00..U+9FA5 is written as raw
  GB18030 bytes for the whole call, with no ``FS &`` / ``FS .`` and no ``ESC t``. Other calls of
  the same receipt (separators, numbers) still get ``ESC t 0`` first, so a Chinese stream holds
  ``ESC t 0`` *and* GB bytes: the printer is assumed to be in Chinese mode from power-on. Every
  Chinese line here is also valid GBK (no 4-byte GB18030 sequences; "￥" not "¥").
* CODE128 exists only as function B (``GS k 73 n``) and python-escpos requires the data to start
  with a code-set selector; we send ``{B`` + data (n counts the ``{B``) and record the data
  without it. Code set C would need binary digit pairs, which python-escpos cannot produce, and
  ``{`` in data would need ``{{``: both are avoided. EAN13/CODE39 use function A
  (``GS k 2/4 data NUL``) or B (``GS k 67/69 n data``). ``barcode()`` centres with ``ESC a 1``
  and leaves it on; the printer's HRI text (``GS H``) is not in ``lines``.
* Native QR: ``GS ( k`` model (fn 65), size (67), EC level (69), store (80, content as UTF-8),
  print (81). ``qr(native=False)`` sends LF, an image (``GS v 0``), LF, LF instead.
* Images: ``bitImageRaster`` -> ``GS v 0 m xL xH yL yH`` (m 0-3); ``graphics`` ->
  ``GS ( L pL pH 30 70 30 bx by 31 xL xH yL yH data`` then ``GS ( L 02 00 30 32`` (print);
  ``bitImageColumn`` -> ``ESC 3 16``, then per stripe ``ESC * m nL nH data LF`` (m 0/1/32/33,
  the LF is part of the image), then ``ESC 2``.
* Cuts: ``cut()`` = ``ESC d 6`` + ``GS V 0``; ``cut(mode="PART")`` = ``ESC d 6`` + ``GS V 1``;
  ``cut(feed=False)`` = ``GS V 66 0``, a *partial* cut whatever the mode (recorded as such).
* ``set(double_height=False)`` sends nothing; only ``set(normal_textsize=True)`` returns to
  normal size (``ESC ! 0`` three times). A size change sends ``ESC ! 0 ESC ! 0 ESC ! n`` before
  ``ESC E`` / ``ESC a`` (so ``ESC !`` never clears the bold set in the same call).

CRLF streams (``generate_stream(crlf=True)``) end our text lines with CR LF. The LFs python-escpos
adds by itself (around a non-native QR, after each ``ESC *`` stripe) stay bare LFs.
"""
from __future__ import annotations

import contextlib
import io
import random
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable

from escpos.codepages import CodePages
from escpos.printer import Dummy
from PIL import Image, ImageDraw

IMAGE_IMPLS = ("bitImageRaster", "graphics", "bitImageColumn")
_PROFILE_BY_WIDTH = {42: "TM-T88V", 48: "TM-T20II"}
# python-escpos' own test for "write this call as GB18030" (magicencode.MagicEncode.write).
_HAN = re.compile(r"[\u4e00-\u9fa5]")


@dataclass
class GeneratedReceipt:
    """One receipt: the exact bytes python-escpos produced and what is on the paper."""

    name: str
    language: str
    stream: bytes
    lines: list[str]
    barcodes: list[tuple[str, str]]
    qr_codes: list[str]
    images: int
    cut: str
    fields: dict
    _ops: list = field(default_factory=list, repr=False, compare=False)
    _profile: str = field(default="TM-T88V", repr=False, compare=False)

    def render(self, crlf: bool = False) -> bytes:
        """Print the receipt again, ending text lines with CR LF if asked (``stream`` is LF)."""
        return _render(self._ops, self._profile, crlf)


def generate_receipts(seed: int = 0, count: int = 30) -> list[GeneratedReceipt]:
    """Generate ``count`` receipts, the same ones for the same seed.

    Stores are used in turn (all five languages appear from count 5 on); the logo format
    follows the receipt index, so all three image commands appear from count 3 on.

    ``fields`` (ground truth, amounts as decimal strings with a dot, as printed):
    store, receipt_no, datetime (ISO 8601, local, seconds 00 when not printed), cashier,
    items [{name, qty, unit_price, amount, sku (only if printed)}] (qty "2" or "0.512" kg),
    subtotal, discounts [{description, amount}] (amount negative), tax (total tax printed, None
    if the receipt prints none), tax_lines [{rate, net, tax}], total, currency (ISO 4217),
    payments [{type, label, amount}] (type cash/card/wechat/alipay; amount applied to the sale),
    tendered and change (None unless printed), member_id (None if not printed).
    """
    rng = random.Random(seed)
    return [_build(_STORES[i % len(_STORES)], i, rng) for i in range(count)]


def generate_stream(receipts: list[GeneratedReceipt], copies: int = 1,
                    crlf: bool = False) -> bytes:
    """Concatenate receipts as one print connection would carry them.

    Each receipt is printed ``copies`` times in a row (customer copy, merchant copy...). Every
    copy starts with ``ESC @`` and ends with its cut.
    """
    return b"".join(r.stream if not crlf else r.render(crlf=True)
                    for r in receipts for _ in range(copies))


# ---------------------------------------------------------------------------------------------
# Print operations, rendering and ground truth


class _Layout:
    """Collects print operations; text lines are padded to the paper's column count."""

    def __init__(self, width: int):
        self.width = width
        self.ops: list[tuple[str, object]] = [("init", None)]

    def set(self, **style) -> None:
        self.ops.append(("set", style))

    def line(self, *pieces) -> None:
        """One printed line; str pieces are text, dict pieces are ``set()`` style changes."""
        for piece in pieces:
            self.ops.append(("set", piece) if isinstance(piece, dict) else ("text", piece))
        self.ops.append(("eol", None))

    def lr(self, left: str, right: str) -> None:
        """Left text and right-aligned text on one line."""
        self.line(_pad(left, right, self.width))

    def image(self, **spec) -> None:
        """A drawn logo: initials, size, impl, center, hd = (vertical, horizontal) density."""
        self.ops.append(("image", spec))

    def barcode(self, **spec) -> None:
        self.ops.append(("barcode", spec))

    def qr(self, **spec) -> None:
        self.ops.append(("qr", spec))

    def cashdraw(self) -> None:
        self.ops.append(("cashdraw", None))

    def cut(self, mode: str, feed: bool) -> None:
        self.ops.append(("cut", {"mode": mode, "feed": feed}))


def _cols(text: str) -> int:
    """Printed width in columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(left: str, right: str, width: int) -> str:
    """``left`` and ``right`` spaced apart to fill ``width`` columns (never truncated)."""
    gap = width - _cols(left) - _cols(right)
    if gap < 1:
        raise ValueError(f"{left!r} + {right!r} do not fit in {width} columns")
    return left + " " * gap + right


def _render(ops: list, profile: str, crlf: bool) -> bytes:
    """Play the operations into a python-escpos Dummy printer and return its bytes."""
    printer = Dummy(profile=profile)
    check = _TextCheck(printer)
    for kind, arg in ops:
        if kind == "init":
            printer.hw("INIT")
        elif kind == "set":
            printer.set(**arg)
        elif kind == "text":
            check.text(arg)
        elif kind == "eol":
            check.text("\r\n" if crlf else "\n")
        elif kind == "image":
            printer.image(_logo(arg["initials"], arg["size"]), impl=arg["impl"],
                          center=arg["center"], high_density_vertical=arg["hd"][0],
                          high_density_horizontal=arg["hd"][1])
        elif kind == "barcode":
            code = "{B" + arg["data"] if arg["symbology"] == "CODE128" else arg["data"]
            # barcode() announces the renderer it picked on stdout.
            with contextlib.redirect_stdout(io.StringIO()):
                printer.barcode(code, arg["symbology"], height=arg["height"], width=arg["module"],
                                pos=arg["pos"], function_type=arg["function_type"])
            printer.set(align="left")  # barcode() leaves centring on
        elif kind == "qr":
            if arg["native"]:
                printer.set(align="center")  # qr(native=True, center=True) is not implemented
                printer.qr(arg["content"], native=True, size=arg["size"])
                printer.set(align="left")
            else:
                printer.qr(arg["content"], native=False, size=arg["size"], center=True)
        elif kind == "cashdraw":
            printer.cashdraw(2)
        elif kind == "cut":
            printer.cut(mode=arg["mode"], feed=arg["feed"])
    return printer.output


class _TextCheck:
    """Sends text and decodes the bytes python-escpos produced the way the printer would.

    Raises if the decoded text differs from what was asked for (a "?" substitution, or a table
    without a standard codec), so ground truth only ever holds text that really is on paper.
    """

    def __init__(self, printer: Dummy):
        self.printer = printer
        self.codecs = {int(slot): CodePages.data.get(name, {}).get("python_encode")
                       for name, slot in printer.profile.get_code_pages().items()}
        self.codec = None  # python-escpos always selects a table before the first byte

    def text(self, text: str) -> None:
        start = len(self.printer._output_list)
        self.printer.text(text)
        sent = b"".join(self.printer._output_list[start:])
        if _HAN.search(text):
            try:
                ok = sent == text.encode("gbk")
            except UnicodeEncodeError:
                ok = False
        else:
            ok = self._decode(sent) == text
        if not ok:
            raise ValueError(f"python-escpos cannot print {text!r} exactly (sent {sent!r})")

    def _decode(self, data: bytes) -> str:
        out: list[str] = []
        pos = 0
        while pos < len(data):
            if data.startswith(b"\x1bt", pos):
                self.codec = self.codecs.get(data[pos + 2])
                pos += 3
                continue
            end = data.find(b"\x1bt", pos)
            end = len(data) if end < 0 else end
            if self.codec is None:
                return f"<no standard codec for {data!r}>"
            out.append(data[pos:end].decode(self.codec))
            pos = end
        return "".join(out)


def _ground_truth(ops: list) -> dict:
    """What the paper shows, read from the same operations the stream was printed from."""
    lines, barcodes, qr_codes, images, cut = [], [], [], 0, None
    pending: list[str] = []
    for kind, arg in ops:
        if pending and kind not in ("text", "set", "eol"):
            raise ValueError("a line must end before a barcode, image, QR or cut")
        if kind == "text":
            pending.append(arg)
        elif kind == "eol":
            text = "".join(pending).rstrip(" ")
            pending = []
            if text:
                lines.append(text)
        elif kind == "image":
            images += 1
        elif kind == "barcode":
            barcodes.append((arg["symbology"], arg["data"]))
        elif kind == "qr":
            if arg["native"]:
                qr_codes.append(arg["content"])
            else:
                images += 1  # rendered to a picture: no payload for the parser to read
        elif kind == "cut":
            cut = "full" if arg["mode"] == "FULL" and arg["feed"] else "partial"
    return {"lines": lines, "barcodes": barcodes, "qr_codes": qr_codes, "images": images,
            "cut": cut}


def _logo(initials: str, size: tuple[int, int]) -> Image.Image:
    """A small drawn logo: frame, filled disc, the store's initials."""
    width, height = size
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width - 1, height - 1), outline=0, width=3)
    draw.ellipse((6, 6, height - 6, height - 6), fill=0)
    draw.text((height + 4, height // 2 - 6), initials, fill=0)
    return img


# ---------------------------------------------------------------------------------------------
# Stores


@dataclass(frozen=True)
class _Item:
    name: str
    price: str        # unit price, or price per kg when weighed
    tax: str          # tax class key in _Store.tax_rates
    weighed: bool = False


@dataclass(frozen=True)
class _Store:
    key: str
    language: str
    name: str
    header: tuple[str, ...]               # centred lines under the name
    width: int
    currency: str
    decimal_comma: bool
    date_format: Callable[[datetime], str]
    seconds: bool                         # whether the date format shows seconds
    receipt_no: Callable[[random.Random], str]
    meta: tuple[str, ...]                 # "{date}", "{no}", "{cashier}"; "|" splits left/right
    cashiers: tuple[str, ...]
    catalogue: tuple[_Item, ...]
    item_style: str                       # "after", "prefix", "block" or "zh"
    tax_rates: dict                       # class -> rate (Decimal as str); empty: no tax printed
    tax_included: bool
    tax_line: str                         # "{rate}", "{net}", "{gross}", "{code}"
    tax_codes: bool                       # print the class letter after item amounts
    labels: dict                          # subtotal, discount, total, tendered, change
    total_format: str                     # right side of the total line, "{amount}"
    total_style: str                      # "bold", "double", "split" or "invert"
    payments: tuple[tuple[str, str], ...]  # (type, label), cash first
    member: str | None                    # member line with "{id}"
    member_digits: int
    footer: tuple[str, ...]
    small_print: tuple[str, ...] = ()     # printed in font B
    logo: str | None = None               # initials drawn in the logo
    barcode: str | None = None
    qr: str | None = None                 # "tse", "einvoice", "survey", "zh", "image"
    tse: bool = False
    always_tendered: bool = False         # print tendered/change for every payment type


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


_STORES: tuple[_Store, ...] = (
    _Store(
        key="en-supermarket", language="en", name="FRESHWAY", width=48, currency="GBP",
        header=("Fresh Food Market", "12 High Street, Oxford OX1 4AB", "VAT No. GB 123 4567 89"),
        decimal_comma=False, date_format=lambda d: f"{d:%Y-%m-%d %H:%M}", seconds=False,
        receipt_no=lambda r: f"4821-03-{_digits(r, 6)}",
        meta=("{date}|Till 03", "Receipt No: {no}", "Cashier: {cashier}"),
        cashiers=("Emma", "Oliver", "Priya", "Tom"),
        catalogue=(
            _Item("Semi Skimmed Milk 2L", "1.45", "Z"), _Item("Free Range Eggs x6", "2.10", "Z"),
            _Item("Wholemeal Bread 800g", "1.25", "Z"), _Item("Bananas Loose", "0.88", "Z", True),
            _Item("Cheddar Mature 400g", "3.75", "Z"), _Item("Orange Juice 1L", "1.95", "Z"),
            _Item("Washing Up Liquid", "1.50", "S"), _Item("Dark Chocolate 100g", "1.80", "S"),
            _Item("Crisps Sea Salt 6pk", "2.25", "S"), _Item("Jalapeño Peppers 190g", "1.60", "Z"),
            _Item("Crème Fraîche 300ml", "1.35", "Z"), _Item("Toothpaste 75ml", "2.40", "S"),
        ),
        item_style="after", tax_rates={"S": "20", "Z": "0"}, tax_included=True,
        tax_line="VAT {rate}% on {gross}", tax_codes=False,
        labels={"subtotal": "SUBTOTAL", "discount": "Multibuy saving", "total": "TOTAL",
                "tendered": "Cash tendered", "change": "Change"},
        total_format="£{amount}", total_style="double",
        payments=(("cash", "Cash"), ("card", "Card")),
        member="Rewards card: {id}", member_digits=12,
        footer=("Thank you for shopping at Freshway!",),
        small_print=("Keep your receipt for refunds within 28 days.",),
        logo="FW", barcode="EAN13",
    ),
    _Store(
        key="de-baeckerei", language="de", name="Bäckerei Schäfer", width=42, currency="EUR",
        header=("Hauptstraße 17", "79098 Freiburg", "USt-IdNr.: DE123456789"),
        decimal_comma=True, date_format=lambda d: f"{d:%d.%m.%Y %H:%M}", seconds=False,
        receipt_no=lambda r: str(r.randrange(1000, 99999)),
        meta=("Beleg-Nr. {no}|{date}", "Es bediente Sie: {cashier}"),
        cashiers=("Jürgen", "Sabine", "Gülay", "Frau Weiß"),
        catalogue=(
            _Item("Brötchen", "0.45", "B"), _Item("Laugenbrezel", "0.80", "B"),
            _Item("Roggenmischbrot 1kg", "4.20", "B"), _Item("Käsekuchen Stück", "2.90", "B"),
            _Item("Nussecke", "2.20", "B"), _Item("Franzbrötchen", "1.90", "B"),
            _Item("Mohnschnecke", "2.10", "B"), _Item("Apfelstrudel", "2.80", "B"),
            _Item("Kaffee groß", "3.20", "A"), _Item("Heiße Schokolade", "3.50", "A"),
            _Item("Müsli-Brötchen", "0.95", "B"), _Item("Butterbrezel", "1.60", "B"),
        ),
        item_style="prefix", tax_rates={"A": "19", "B": "7"}, tax_included=True,
        tax_line="enth. MwSt {rate}%", tax_codes=False,
        labels={"subtotal": "Zwischensumme", "discount": "Rabatt", "total": "Summe",
                "tendered": "Gegeben", "change": "Rückgeld"},
        total_format="{amount} €", total_style="split",
        payments=(("cash", "Bar"), ("card", "EC-Karte")),
        member=None, member_digits=0,
        footer=("Vielen Dank für Ihren Einkauf!",),
        logo="BS", qr="tse", tse=True,
    ),
    _Store(
        key="fr-cafe", language="fr", name="Café de la Gare", width=42, currency="EUR",
        header=("3 place de la Gare", "69002 Lyon", "SIRET 123 456 789 00012"),
        decimal_comma=True, date_format=lambda d: f"{d:%d/%m/%Y %Hh%M}", seconds=False,
        receipt_no=lambda r: f"{r.randrange(1, 999999):06d}",
        meta=("Ticket n° {no}", "{date}|Table {table}", "Serveur : {cashier}"),
        cashiers=("Hélène", "François", "Zoé", "Jérôme"),
        catalogue=(
            _Item("Café expresso", "1.90", "M"), _Item("Café crème", "3.20", "M"),
            _Item("Chocolat chaud", "3.80", "M"), _Item("Thé à la menthe", "3.50", "M"),
            _Item("Croissant", "1.30", "M"), _Item("Pain au chocolat", "1.40", "M"),
            _Item("Croque-monsieur", "7.50", "M"), _Item("Quiche lorraine", "6.90", "M"),
            _Item("Crème brûlée", "5.50", "M"), _Item("Œuf à la coque", "2.50", "M"),
            _Item("Verre de rosé", "4.50", "N"), _Item("Bière pression 25cl", "3.90", "N"),
        ),
        item_style="prefix", tax_rates={"M": "10", "N": "20"}, tax_included=True,
        tax_line="dont TVA {rate}% sur {gross}", tax_codes=False,
        labels={"subtotal": "Sous-total", "discount": "Remise", "total": "Total TTC",
                "tendered": "Espèces reçues", "change": "Rendu monnaie"},
        total_format="{amount} €", total_style="bold",
        payments=(("cash", "Espèces"), ("card", "CB")),
        member=None, member_digits=0,
        footer=("Merci de votre visite, à bientôt !",),
        logo="CG", qr="einvoice",
    ),
    _Store(
        key="es-moda", language="es", name="MODA SÁNCHEZ", width=42, currency="EUR",
        header=("C/ Núñez de Balboa 45", "28001 Madrid", "CIF B-12345678"),
        decimal_comma=True, date_format=lambda d: f"{d:%d/%m/%Y %H:%M}", seconds=False,
        receipt_no=lambda r: f"T001-{_digits(r, 6)}",
        meta=("Factura simplificada: {no}", "Fecha: {date}", "Le atendió: {cashier}"),
        cashiers=("Iñaki", "María José", "Begoña", "Ángel"),
        catalogue=(
            _Item("CAMISETA ALGODÓN BÁSICA", "12.95", "G"),
            _Item("PANTALÓN VAQUERO SLIM", "39.95", "G"),
            _Item("JERSEY PUNTO TRENZADO", "29.95", "G"), _Item("VESTIDO ESTAMPADO", "35.95", "G"),
            _Item("CHAQUETA ACOLCHADA", "59.95", "G"), _Item("BUFANDA LANA", "15.95", "G"),
            _Item("CALCETINES PACK 3", "7.95", "G"), _Item("ZAPATILLAS LONA", "25.95", "G"),
            _Item("CINTURÓN PIEL", "19.95", "G"), _Item("SUDADERA NIÑO", "17.95", "G"),
        ),
        item_style="block", tax_rates={"G": "21"}, tax_included=True,
        tax_line="IVA {rate}% Base {net}", tax_codes=False,
        labels={"subtotal": "Subtotal", "discount": "Descuento", "total": "TOTAL",
                "tendered": "Entregado", "change": "Cambio"},
        total_format="{amount} €", total_style="invert",
        payments=(("cash", "Efectivo"), ("card", "Tarjeta")),
        member="Socio nº {id}", member_digits=8,
        footer=("¡Gracias por su compra!", "Cambios y devoluciones: 30 días"),
        small_print=("Conserve este ticket para cualquier cambio.",),
        logo="MS", barcode="CODE128", qr="image",
    ),
    _Store(
        key="zh-supermarket", language="zh", name="华联超市", width=48, currency="CNY",
        header=("北京市朝阳区建国路88号", "电话：010-65812345"),
        decimal_comma=False, date_format=lambda d: f"{d.year}年{d.month}月{d.day}日 {d:%H:%M}",
        seconds=False, receipt_no=lambda r: f"HL{_digits(r, 10)}",
        meta=("单号：{no}", "日期：{date}", "收银员：{cashier}"),
        cashiers=("王芳", "李娜", "张伟", "刘洋"),
        catalogue=(
            _Item("可口可乐330ml", "3.00", "-"), _Item("康师傅红烧牛肉面", "4.50", "-"),
            _Item("金龙鱼大米5kg", "39.90", "-"), _Item("伊利纯牛奶250ml", "2.80", "-"),
            _Item("农夫山泉550ml", "2.00", "-"), _Item("蒙牛酸奶", "6.50", "-"),
            _Item("香蕉（散装）", "6.98", "-", True), _Item("五花肉", "29.80", "-", True),
            _Item("青岛啤酒500ml", "5.50", "-"), _Item("洗洁精1.5kg", "12.90", "-"),
        ),
        item_style="zh", tax_rates={}, tax_included=True, tax_line="", tax_codes=False,
        labels={"subtotal": "小计", "discount": "优惠", "total": "合计",
                "tendered": "实收", "change": "找零"},
        total_format="￥{amount}", total_style="bold",
        payments=(("cash", "现金"), ("wechat", "微信支付"), ("alipay", "支付宝")),
        member="会员号：{id}", member_digits=10,
        footer=("谢谢惠顾，欢迎再次光临！",), always_tendered=True,
        logo="HL", barcode="CODE128", qr="zh",
    ),
    _Store(
        key="en-cafe", language="en", name="BLUE DOOR COFFEE", width=42, currency="USD",
        header=("214 Valencia St", "San Francisco, CA 94103", "(415) 555-0142"),
        decimal_comma=False,
        date_format=lambda d: (f"{d:%m/%d/%Y} {d.hour % 12 or 12}:{d:%M} "
                               f"{'AM' if d.hour < 12 else 'PM'}"),
        seconds=False, receipt_no=lambda r: str(r.randrange(1000, 9999)),
        meta=("Order #{no}", "{date}", "Server: {cashier}"),
        cashiers=("Jess", "Marco", "Aiden", "Sofía"),
        catalogue=(
            _Item("Latte 12oz", "4.75", "T"), _Item("Cappuccino", "4.50", "T"),
            _Item("Americano", "3.25", "T"), _Item("Cold Brew", "4.95", "T"),
            _Item("Blueberry Muffin", "3.50", "T"), _Item("Croissant", "3.75", "T"),
            _Item("Avocado Toast", "9.50", "T"), _Item("Chai Latte", "4.95", "T"),
            _Item("Café Mocha", "5.25", "T"), _Item("Açaí Bowl", "10.50", "T"),
        ),
        item_style="prefix", tax_rates={"T": "8.625"}, tax_included=False,
        tax_line="Sales Tax {rate}%", tax_codes=False,
        labels={"subtotal": "Subtotal", "discount": "Loyalty reward", "total": "TOTAL",
                "tendered": "Cash tendered", "change": "Change"},
        total_format="${amount}", total_style="bold",
        payments=(("cash", "Cash"), ("card", "VISA")),
        member="Loyalty member {id}", member_digits=9,
        footer=("Thanks for stopping by!",),
        qr="survey",
    ),
    _Store(
        key="de-supermarkt", language="de", name="FRISCHMARKT MÜLLER", width=48, currency="EUR",
        header=("Bahnhofstraße 5, 80335 München", "Tel. 089 1234567"),
        decimal_comma=True, date_format=lambda d: f"{d:%d.%m.%Y %H:%M:%S}", seconds=True,
        receipt_no=lambda r: str(r.randrange(1000, 9999)),
        meta=("{date}|Bon-Nr. {no}", "Kasse 2  Bediener: {cashier}"),
        cashiers=("Özlem", "Jörg", "Anneliese", "Björn"),
        catalogue=(
            _Item("Vollmilch 3,5% 1L", "1.19", "B"), _Item("Äpfel Braeburn", "2.99", "B", True),
            _Item("Gouda jung 400g", "3.49", "B"), _Item("Weißbier 0,5L", "1.09", "A"),
            _Item("Spülmittel", "1.45", "A"), _Item("Bio Möhren 1kg", "1.79", "B"),
            _Item("Süßkartoffeln", "3.49", "B", True), _Item("Mineralwasser 1,5L", "0.39", "A"),
            _Item("Pfand", "0.25", "A"), _Item("Müsli Nuss 750g", "3.29", "B"),
            _Item("Toilettenpapier 8x", "3.95", "A"),
        ),
        item_style="after", tax_rates={"A": "19", "B": "7"}, tax_included=True,
        tax_line="{code} MwSt {rate}% Netto {net}", tax_codes=True,
        labels={"subtotal": "Zwischensumme", "discount": "Rabatt", "total": "SUMME EUR",
                "tendered": "Gegeben", "change": "Rückgeld"},
        total_format="{amount}", total_style="double",
        payments=(("cash", "Bar"), ("card", "EC-Karte")),
        member="PAYBACK-Karte: {id}", member_digits=10,
        footer=("Vielen Dank für Ihren Einkauf!",),
        small_print=("Umtausch nur mit Kassenbon.",),
        barcode="EAN13", tse=True,
    ),
    _Store(
        key="fr-pharmacie", language="fr", name="PHARMACIE DU MARCHÉ", width=42, currency="EUR",
        header=("12 rue de la République", "13001 Marseille", "Tél. 04 91 12 34 56"),
        decimal_comma=True, date_format=lambda d: f"{d:%d/%m/%Y %Hh%M}", seconds=False,
        receipt_no=lambda r: f"{r.randrange(1, 99999):05d}",
        meta=("Ticket n° {no}", "Le {date}", "Caissière : {cashier}"),
        cashiers=("Amélie", "Noël", "Cécile", "Loïc"),
        catalogue=(
            _Item("Doliprane 1000mg 8 cp", "2.18", "R"), _Item("Spasfon Lyoc 80mg", "3.95", "R"),
            _Item("Sérum physiologique", "3.20", "I"),
            _Item("Crème hydratante 50ml", "12.90", "N"),
            _Item("Pastilles gorge miel", "5.40", "I"), _Item("Thermomètre digital", "9.90", "N"),
            _Item("Gel hydroalcoolique", "3.50", "N"), _Item("Vitamine C 500mg", "6.80", "I"),
            _Item("Écran solaire SPF50", "15.90", "N"),
        ),
        item_style="after", tax_rates={"R": "2.1", "I": "5.5", "N": "20"}, tax_included=True,
        tax_line="TVA {rate}% sur {gross}", tax_codes=False,
        labels={"subtotal": "Sous-total", "discount": "Remise fidélité", "total": "TOTAL TTC",
                "tendered": "Espèces reçues", "change": "Rendu"},
        total_format="{amount} €", total_style="split",
        payments=(("cash", "Espèces"), ("card", "Carte bancaire")),
        member="Carte fidélité n° {id}", member_digits=7,
        footer=("Merci de votre confiance.",),
        small_print=("Les médicaments ne sont ni repris ni échangés.",),
        logo="PM", barcode="CODE39",
    ),
)


# ---------------------------------------------------------------------------------------------
# Building one receipt

_CENT = Decimal("0.01")


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _ean13(first12: str) -> str:
    """Append the EAN-13 check digit."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


def _sku(store: _Store, item: _Item) -> str:
    """A fixed EAN-13 per item (Spanish or Chinese GS1 prefix)."""
    prefix = "690" if store.language == "zh" else "841"
    return _ean13(prefix + f"{zlib.crc32(item.name.encode()) % 10**9:09d}")


def _build(store: _Store, index: int, rng: random.Random) -> GeneratedReceipt:
    """Lay out receipt number ``index`` of ``store``, print it and collect its ground truth."""
    def num(value: Decimal) -> str:
        return f"{value}".replace(".", ",") if store.decimal_comma else f"{value}"

    layout = _Layout(store.width)
    when = datetime(2026, 1, 1, 7) + timedelta(
        days=rng.randrange(365), minutes=rng.randrange(15 * 60),
        seconds=rng.randrange(60) if store.seconds else 0)
    receipt_no = store.receipt_no(rng)
    cashier = rng.choice(store.cashiers)

    # Logo, then the centred header.
    if store.logo:
        layout.image(initials=store.logo,
                     size=(rng.choice((120, 150, 200, 256)), rng.choice((40, 48, 60))),
                     impl=IMAGE_IMPLS[index % 3], center=rng.random() < 0.5,
                     hd=rng.choice(((True, True), (True, True), (False, True), (True, False))))
    wide = _cols(store.name) * 2 <= store.width and rng.random() < 0.5
    layout.line({"align": "center", "bold": True, "double_height": True, "double_width": wide},
                store.name)
    layout.set(normal_textsize=True, bold=False)
    for text in store.header:
        layout.line(text)
    layout.set(align="left")
    layout.line()
    values = {"date": store.date_format(when), "no": receipt_no, "cashier": cashier,
              "table": rng.randrange(1, 30)}
    for template in store.meta:
        left, _, right = template.format(**values).partition("|")
        if right:
            layout.lr(left, right)
        else:
            layout.line(left)
    rule = "=" if index % 2 else "-"
    layout.line(rule * store.width)

    # Items.
    items: list[dict] = []
    gross_by_class: dict[str, Decimal] = {}
    if store.item_style == "zh":
        layout.line(_pad("商品/条码", "    数量      单价      金额", store.width))
    for item in rng.sample(store.catalogue, rng.randint(1, min(7, len(store.catalogue)))):
        price = Decimal(item.price)
        qty = ((Decimal(rng.randrange(200, 2000)) / 1000) if item.weighed
               else Decimal(rng.choice((1, 1, 1, 2, 3))))
        amount = _money(qty * price)
        entry = {"name": item.name, "qty": f"{qty}", "unit_price": f"{price}",
                 "amount": f"{amount}"}
        qty_text = f"{num(qty)} kg x {num(price)}/kg" if item.weighed else f"{qty} x {num(price)}"
        code = f" {item.tax}" if store.tax_codes else ""
        if store.item_style == "after":
            layout.lr(item.name, num(amount) + code)
            if item.weighed or qty > 1:
                layout.line("  " + qty_text)
        elif store.item_style == "prefix":
            layout.lr(f"{qty} x {item.name}" if qty > 1 or rng.random() < 0.5 else item.name,
                      num(amount))
        elif store.item_style == "block":
            entry["sku"] = _sku(store, item)
            layout.line(item.name)
            layout.line(f"  Ref. {entry['sku']}")
            layout.lr("  " + qty_text, num(amount))
        else:  # zh: name, then barcode number and the columns
            entry["sku"] = _sku(store, item)
            layout.line(item.name)
            layout.line(_pad(entry["sku"], f"{qty:>8}{price:>10}{amount:>10}", store.width))
        items.append(entry)
        gross_by_class[item.tax] = gross_by_class.get(item.tax, Decimal(0)) + amount
    layout.line(rule * store.width)

    subtotal = sum((Decimal(i["amount"]) for i in items), Decimal(0))
    layout.lr(store.labels["subtotal"], num(subtotal))
    discounts = []
    if rng.random() < 0.3:
        target = rng.choice(items)
        percent = rng.choice((10, 20, 25, 50))
        cut_off = -_money(Decimal(target["amount"]) * percent / 100)
        if cut_off:
            description = f"{store.labels['discount']} {percent}%"
            layout.lr(description, num(cut_off))
            discounts.append({"description": description, "amount": f"{cut_off}"})
            tax_class = next(i.tax for i in store.catalogue if i.name == target["name"])
            gross_by_class[tax_class] += cut_off
    net_total = subtotal + sum((Decimal(d["amount"]) for d in discounts), Decimal(0))

    # Tax: included in the prices (Europe) or added to them (US).
    tax_lines = []
    by_rate = (sorted(gross_by_class, key=lambda c: -Decimal(store.tax_rates[c]))
               if store.tax_rates else ())
    for tax_class in by_rate:
        rate, gross = Decimal(store.tax_rates[tax_class]), gross_by_class[tax_class]
        tax = (_money(gross * rate / (100 + rate)) if store.tax_included
               else _money(gross * rate / 100))
        net = gross - tax if store.tax_included else gross
        tax_lines.append({"rate": f"{rate}", "net": f"{net}", "tax": f"{tax}"})
        layout.lr(store.tax_line.format(rate=num(rate), net=num(net), gross=num(gross),
                                        code=tax_class),
                  num(tax))
    tax_total = sum((Decimal(t["tax"]) for t in tax_lines), Decimal(0))
    total = net_total if store.tax_included else net_total + tax_total

    _total_line(layout, store, store.total_format.format(amount=num(total)))

    # Payments, member, TSE, codes, footer, cut.
    payments, tendered, change = _payments(store, total, rng)
    for payment in payments:
        layout.lr(payment["label"], num(Decimal(payment["amount"])))
    if tendered is not None:
        layout.lr(store.labels["tendered"], num(tendered))
        layout.lr(store.labels["change"], num(change))
    member_id = None
    if store.member and rng.random() < 0.5:
        member_id = _digits(rng, store.member_digits)
        layout.line()
        layout.line(store.member.format(id=member_id))
    tse = (_tse(layout, rng, when, cash_only=all(p["type"] == "cash" for p in payments))
           if store.tse else None)
    layout.line()
    _codes(layout, store, index, rng, receipt_no, total, tse)
    layout.set(align="center")
    for text in store.footer:
        layout.line(text)
    if store.small_print:
        layout.set(font="b")
        for text in store.small_print:
            layout.line(text)
        layout.set(font="a")
    layout.set(align="left")
    if any(p["type"] == "cash" for p in payments):
        layout.cashdraw()
    layout.cut(mode="PART" if index % 5 in (2, 3) else "FULL", feed=index % 5 != 4)

    profile = _PROFILE_BY_WIDTH[store.width]
    truth = _ground_truth(layout.ops)
    fields = {
        "store": store.name, "receipt_no": receipt_no,
        "datetime": when.isoformat(timespec="seconds"), "cashier": cashier, "items": items,
        "subtotal": f"{subtotal}", "discounts": discounts,
        "tax": f"{tax_total}" if tax_lines else None, "tax_lines": tax_lines, "total": f"{total}",
        "currency": store.currency, "payments": payments,
        "tendered": None if tendered is None else f"{tendered}",
        "change": None if change is None else f"{change}", "member_id": member_id,
    }
    return GeneratedReceipt(name=f"{store.key}-{index}", language=store.language,
                            stream=_render(layout.ops, profile, crlf=False), fields=fields,
                            _ops=layout.ops, _profile=profile, **truth)


def _total_line(layout: _Layout, store: _Store, amount: str) -> None:
    label = store.labels["total"]
    if store.total_style == "double":
        layout.line({"bold": True, "double_height": True, "double_width": True},
                    _pad(label, amount, store.width // 2))
        layout.set(normal_textsize=True, bold=False)
    elif store.total_style == "split":  # bold label, plain amount: a style change mid-line
        layout.line({"bold": True}, label, {"bold": False},
                    _pad("", amount, store.width - _cols(label)))
    elif store.total_style == "invert":
        layout.line({"invert": True}, _pad(label, amount, store.width))
        layout.set(invert=False)
    else:
        layout.line({"bold": True}, _pad(label, amount, store.width))
        layout.set(bold=False)


def _payments(store: _Store, total: Decimal, rng: random.Random):
    """Payments (amount applied to the sale) and, for cash, the amount handed over and change."""
    cash_label, others = store.payments[0][1], store.payments[1:]
    roll = rng.random()
    if roll < 0.4:
        paid, cash_due = [], total
    else:
        kind, label = rng.choice(others)
        card_part = (total if roll < 0.9 or store.language == "zh"
                     else _money(total * Decimal(rng.randint(3, 7)) / 10))
        paid = [{"type": kind, "label": label, "amount": f"{card_part}"}]
        cash_due = total - card_part
    if cash_due > 0:
        paid.append({"type": "cash", "label": cash_label, "amount": f"{cash_due}"})
        notes = [Decimal(n).quantize(_CENT) for n in (5, 10, 20, 50, 100, 200) if n >= cash_due]
        tendered = cash_due if rng.random() < 0.25 or not notes else notes[0]
        return paid, tendered, tendered - cash_due
    if store.always_tendered:
        return paid, total, Decimal("0.00")
    return paid, None, None


def _tse(layout: _Layout, rng: random.Random, when: datetime, cash_only: bool) -> dict:
    """Print the German fiscal (TSE) block and return its values for the TSE QR code."""
    tse = {"payment": "Bar" if cash_only else "Unbar", "transaction": rng.randrange(10000, 999999),
           "signature_counter": rng.randrange(1000, 99999),
           "start": f"{when:%Y-%m-%dT%H:%M:%S}",
           "stop": f"{when + timedelta(seconds=rng.randrange(2, 40)):%Y-%m-%dT%H:%M:%S}"}
    layout.line()
    layout.line(f"TSE-Transaktion: {tse['transaction']}")
    layout.line(f"TSE-Start: {tse['start']}")
    layout.line(f"TSE-Stop:  {tse['stop']}")
    layout.line(f"TSE-Seriennr.: {rng.getrandbits(128):032x}")
    return tse


def _codes(layout: _Layout, store: _Store, index: int, rng: random.Random, receipt_no: str,
           total: Decimal, tse: dict | None) -> None:
    """The store's barcode and QR code, if it prints them."""
    digits = "".join(c for c in receipt_no if c.isdigit())
    if store.barcode:
        data = {
            "EAN13": _ean13("2" + digits.rjust(11, "0")[-11:]),
            "CODE39": f"PH-{digits}",
            "CODE128": f"No.{digits}" if store.language != "zh" else receipt_no,
        }[store.barcode]
        layout.barcode(symbology=store.barcode, data=data,
                       function_type="B" if store.barcode == "CODE128" or index % 2 else "A",
                       pos=rng.choice(("BELOW", "ABOVE", "BOTH", "OFF")),
                       height=rng.choice((48, 64, 80)), module=rng.choice((2, 3)))
    if store.qr == "tse":
        assert tse is not None, "a TSE QR code needs the store's TSE block"
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        signature = "".join(rng.choice(alphabet) for _ in range(96))
        content = (f"V0;Kasse-01;Kassenbeleg-V1;Beleg^{total}_0.00_0.00_0.00_0.00^{total}:"
                   f"{tse['payment']};"
                   f"{tse['transaction']};{tse['signature_counter']};{tse['start']}.000Z;"
                   f"{tse['stop']}.000Z;ecdsa-plain-SHA384;unixTime;{signature}==")
        layout.qr(content=content, native=True, size=rng.choice((3, 4)))
    elif store.qr == "einvoice":
        layout.line("Votre facture en ligne :")
        layout.qr(content=f"https://factures.example.fr/t/CDG/{receipt_no}?k={rng.getrandbits(64):016x}",
                  native=True, size=rng.choice((4, 5, 6)))
    elif store.qr == "survey":
        layout.line("Tell us how we did:")
        layout.qr(content=f"https://bluedoor.example.com/survey?order={receipt_no}", native=True,
                  size=4)
    elif store.qr == "zh":
        layout.line("扫码开具电子发票")
        layout.qr(content=f"华联超市电子小票|单号:{receipt_no}|合计:￥{total}", native=True,
                  size=4)
    elif store.qr == "image":
        layout.line("Devoluciones online:")
        layout.qr(content=f"https://modasanchez.example.es/devoluciones?t={receipt_no}",
                  native=False, size=3)
