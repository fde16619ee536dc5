"""Receipt fields from printed text lines: total, items, payments, date, receipt and member number.

Runs on the board (MicroPython: no `re`, small tables, one pass over the lines, nothing kept per
line) and on the server, whose extractor (server/extract.py) builds on the same scanner and the
same keyword tables: the tables below are the single source of truth for both.

    extract(lines) -> {"total": "12.50", "subtotal": "12.50", "currency": "EUR",
                       "receipt_no": "4711", "datetime": "2026-03-01T14:05:00",
                       "member_id": None, "payments": [{"type": "card", "amount": "12.50"}],
                       "items": [{"name": "Latte", "qty": "2", "unit_price": "4.75",
                                  "amount": "9.50"}]}

Lines are str, or None where the board could not decode one (skipped). Amounts are decimal
strings as printed, with a dot ("10.47", "1.272", "-0.65"); None where a field is absent.
mask_cards(line) (cardmask.py) hides card numbers before a line is stored or sent.

How it reads a receipt (no fixed layout):
- Labels: keywords (LABELS) found leftmost-longest, so "Cash tendered" is not "Cash" and
  "Sous-total" is not "total". A label's value is the last number before the next label on the
  line: "现金 242.00  实收：246.00" is a payment and a tendered amount.
- Numbers glued to letters ("330ml", "12h44"), dates, times and hyphenated codes are not
  amounts. Decimal comma or point is decided once per receipt by counting "d,dd" / "d.dd".
- Items: lines before the first summary label (subtotal, total, tax, payment...) that end in an
  amount, with quantity and unit price from "3 x Name", a "3 x 1.50" line after the item, or
  quantity/price/amount columns that multiply out; a line of numbers only takes its name from
  the text line above it.
"""
from .cardmask import mask_cards  # noqa: F401 -- part of this module's API for the server

# ---- rules (data) -----------------------------------------------------------------------------
# Keywords are lower case; matched on folded text (see fold()) at word boundaries for Latin
# words. The tag of a "total" group is its priority ("0": amount due, beats "1": plain total);
# of a "payment" group the payment type. Fields "net" and "count" only stop a longer phrase from
# being read as a total ("Total HT", "Total items").
LABELS = (
    ("total", "0", ("due", "pay this amount", "amount due", "balance due", "total due", "to pay",
                    "zu zahlen", "amt due", "grand total", "total payable", "total rounded",
                    "rounded total", "total after rounding", "total bill", "total belanja",
                    "jumlah bayar", "total bayar", "net à payer", "à payer", "a pagar",
                    "total a pagar", "bal due", "amount payable", "net payable", "te betalen",
                    "please pay", "amount to pay", "a payer", "net a payer", "à régler",
                    "montant dû", "da pagare", "att betala", "at betale",
                    "å betale", "do zapłaty", "к оплате", "应收", "应收金额", "应付", "应付金额",
                    "实付", "实付金额")),
    ("total", "1", ("total", "tl", "ttl", "somme", "nett total", "net total", "nett",
                    "total sales", "total amount", "total ttc", "total eur", "totale", "totaal",
                    "totalt", "kokku", "sum", "summa", "suma", "razem", "celkem", "yhteensä",
                    "ukupno", "skupaj", "kopā", "iš viso", "σύνολο", "συνολο", "합계", "tổng cộng",
                    "totaal bedrag", "toplam", "összesen", "i alt", "итого", "endbetrag",
                    "rechnungsbetrag", "tagihan", "importo", "summe", "gesamt", "gesamtbetrag",
                    "gesamtsumme", "endsumme", "montant total", "importe total", "合计", "合計",
                    "总计", "總計", "总额", "总金额", "消费合计")),
    # weakest: only when no other total is printed ("GROSSAMT: 124.00", "NetAmount: 6325.00"
    # after the tax, "FARE: $12.50", a card slip's "SALE $16.24")
    ("total", "2", ("amount", "gross amount", "gross amt", "net amount", "net amt", "nett amount",
                    "fare",
                    "sale", "purchase", "balance", "saldo", "betrag", "bedrag", "montant",
                    "importe", "tot")),
    ("net", "", ("total ht", "total net", "summe netto", "base imponible", "net sales",
                 "total excl", "total exclusive", "total excluding", "total before")),
    ("count", "", ("total items", "total item", "total qty", "total quantity", "items total",
                   "total points", "total point",
                   "anzahl artikel", "nombre d'articles", "总数", "件数")),
    ("subtotal", "", ("subtotal", "sub-total", "sub total", "subtotale", "subtotaal", "sous-total",
                      "sous total", "zwischensumme", "小计", "小計")),
    ("tax", "", ("tax", "sales tax", "vat", "mwst", "mwst.", "ust", "mehrwertsteuer", "tva", "iva",
                 "gst", "hst", "pst", "pajak", "ppn", "btw", "mva", "moms", "total tva",
                 "total tax", "税额", "税金", "税")),
    ("rounding", "", ("rounding", "rounding adjustment", "rounding adj", "round off",
                      "pembulatan")),
    ("discount", "", ("discount", "saving", "savings", "coupon", "total savings", "rabatt",
                      "nachlass", "remise", "réduction", "descuento", "dto", "优惠", "折扣",
                      "折让", "抹零")),
    ("tendered", "", ("tendered", "paid", "amount paid", "bayar", "dibayar", "cash tendered",
                      "amount tendered", "given",
                      "cash given", "gegeben", "bar gegeben", "reçu", "espèces reçues",
                      "montant reçu", "entregado", "efectivo entregado", "recibido", "实收",
                      "实收金额", "收款")),
    ("change", "", ("change", "change due", "resto", "tagasi", "kembali", "kembalian", "rückgeld",
                    "wechselgeld", "rendu", "rendu monnaie", "monnaie rendue", "cambio", "vuelto",
                    "troco", "reszta", "vaihtoraha", "växel", "vráceno", "wisselgeld", "сдача",
                    "para üstü", "visszajáró", "お釣り", "お釣", "거스름돈", "tiền thừa",
                    "su cambio", "找零", "找赎", "找續")),
    ("payment", "cash", ("cash", "tunai", "contante", "contanti", "kontant", "bar", "barzahlung",
                         "espèces", "especes", "efectivo", "contado", "contant", "dinheiro",
                         "gotówka", "käteinen", "hotově", "nakit", "наличные", "készpénz",
                         "gotovina", "현금", "tiền mặt", "现金", "現金")),
    ("payment", "card", ("card", "credit", "debit", "credit card", "debit card", "visa",
                         "mastercard", "maestro", "amex", "american express", "ec", "ec-karte",
                         "girocard", "karte", "kreditkarte", "cb", "carte", "carte bancaire",
                         "carte bleue", "tarjeta", "tarjeta crédito", "edc", "kartu", "kaart",
                         "pin", "bancomat", "银行卡", "刷卡", "信用卡", "银联")),
    ("payment", "wechat", ("wechat", "wechat pay", "微信", "微信支付")),
    ("payment", "alipay", ("alipay", "支付宝")),
    ("member", "", ("member", "member no", "membership", "rewards card", "loyalty", "loyalty card",
                    "club card", "payback", "payback-karte", "kunden-nr", "kundennummer",
                    "kundenkarte", "carte fidélité", "carte de fidélité", "n° client", "socio",
                    "tarjeta socio", "会员号", "会员卡", "会员卡号", "会员")),
    ("receipt_no", "", ("receipt", "receipt no", "invoice", "invoice no", "order", "trans", "tr#",
                        "trans#", "beleg", "beleg-nr", "belegnr", "bon-nr", "bonnr", "bon nr",
                        "rechnung", "rechnungsnr", "quittung", "ticket", "facture", "factura",
                        "factura simplificada", "单号", "小票号", "流水号", "票号", "订单号",
                        "单据号")),
    ("cashier", "", ("cashier", "server", "clerk", "operator", "sales associate", "served by",
                     "bediener", "kassierer", "kassiererin", "es bediente sie", "caissier",
                     "caissière", "serveur", "serveuse", "vendeur", "vendeuse", "le atendió",
                     "atendido por", "cajero", "cajera", "收银员", "收银", "店员", "服务员",
                     "营业员")),
    ("register", "", ("till", "register", "kasse", "caisse", "caja", "terminal", "pos", "收银机",
                      "款台", "机号")),
)
# Labels whose amount is a receipt total: their line ends the item list.
SUMMARY = ("total", "subtotal", "tax", "payment", "tendered", "change", "net")
# Money handed over: a line with a rate ("10%") is none of these.
PAID = ("payment", "tendered", "change")
MONEY = ("total", "subtotal", "tax", "discount", "payment", "tendered", "change", "rounding")
# Cash rounding step of currencies whose receipts print a rounding line: 5 cents.
ROUNDED_CURRENCIES = ("MYR", "CHF", "AUD", "NZD", "SGD")
# A label and its amount may have only currency words between them ("SUMME EUR 9,42"), so
# "Total savings 3.00" or "Bar Snack 3.50" are no total or payment.
STRICT = ("total", "subtotal", "payment", "tendered", "change")

# Words that may stand between a total label and its amount ("TOTAL INCL GST@6%").
FILLERS = ("gst", "vat", "tax", "sst", "amount", "amt", "rounded", "payable", "due")

# Symbol or ISO code -> ISO 4217. Longest first: "R$" before "$". "$" alone is taken as USD.
CURRENCIES = (("us$", "USD"), ("au$", "AUD"), ("nz$", "NZD"), ("s$", "SGD"), ("c$", "CAD"),
              ("hk$", "HKD"), ("r$", "BRL"), ("€", "EUR"), ("£", "GBP"), ("₩", "KRW"),
              ("₹", "INR"), ("￥", "CNY"), ("¥", "CNY"), ("元", "CNY"), ("$", "USD"),
              ("eur", "EUR"), ("euro", "EUR"), ("euros", "EUR"), ("gbp", "GBP"), ("usd", "USD"),
              ("cny", "CNY"), ("rmb", "CNY"),
              ("rm", "MYR"), ("myr", "MYR"), ("rp", "IDR"), ("idr", "IDR"), ("sgd", "SGD"),
              ("aed", "AED"), ("chf", "CHF"), ("jpy", "JPY"), ("krw", "KRW"), ("cad", "CAD"),
              ("aud", "AUD"), ("sek", "SEK"), ("nok", "NOK"), ("dkk", "DKK"), ("pln", "PLN"),
              ("czk", "CZK"), ("inr", "INR"), ("rs", "INR"), ("zar", "ZAR"), ("thb", "THB"),
              ("hkd", "HKD"), ("twd", "TWD"), ("vnd", "VND"), ("sar", "SAR"),
              ("qar", "QAR"), ("kwd", "KWD"), ("omr", "OMR"), ("jod", "JOD"),
              ("xpf", "XPF"), ("mxn", "MXN"), ("brl", "BRL"), ("huf", "HUF"),
              ("egp", "EGP"), ("pkr", "PKR"), ("lkr", "LKR"), ("nzd", "NZD"))
# Signs read only glued to an amount: "R288.40" (rand), "E12.50" (euro on printers without a €
# glyph; also a £ or € misread); alone, such a letter is a tax code column.
GLUED_SIGNS = ("r", "e")
# The store's country from words only printed there, when no currency is printed: ISO 4217 of
# its currency. Then a receipt whose amounts have no cents but group thousands is taken as
# rupiah (the only such currency among the stores these receipts come from).
COUNTRY_SIGNALS = (("sdn bhd", "MYR"), ("sdn. bhd", "MYR"), ("s/b", "MYR"), ("malaysia", "MYR"),
                   ("selangor", "MYR"), ("johor", "MYR"), ("kuala lumpur", "MYR"),
                   ("jalan", "MYR"), ("jln", "MYR"), ("gst id", "MYR"), ("gst reg", "MYR"),
                   ("indonesia", "IDR"), ("jakarta", "IDR"), ("tunai", "IDR"), ("kembali", "IDR"),
                   ("ppn", "IDR"), ("pb1", "IDR"), ("belanja", "IDR"), ("singapore", "SGD"),
                   ("gst reg no", "MYR"), ("u.a.e", "AED"), ("dubai", "AED"))
# Signals that name the country for sure, enough to read a "$" alone as its currency (a
# "GST REG" is printed in Canada and New Zealand too).
COUNTRY_NAMES = ("sdn bhd", "sdn. bhd", "malaysia", "selangor", "johor", "kuala lumpur",
                 "indonesia", "jakarta", "singapore", "u.a.e", "dubai")
NO_CENTS_CURRENCY = "IDR"
# Words that may stand between an item's numbers: "3 x 1.50", "1,272 kg x 2,99/kg".
TIMES = ("x", "×", "*", "@")
# What a name ends with before its unit price ("Hefe à 3,30", "Latte @ 3.50"; not "a", which
# may be the name's: "VITAMIN A")
PRICE_MARKS = ("@", "à", "á", "x", "×")
UNITS = ("kg", "g", "lb", "lbs", "pc", "pcs", "st", "stk", "ea", "uds", "个", "件", "瓶", "斤",
         "份", "杯", "盒", "包", "袋", "只", "支")
# Column captions: tell a "price qty amount" table from a "qty price amount" one.
QTY_WORDS = ("qty", "quantity", "menge", "anz", "anzahl", "qté", "quantité", "cant", "cantidad",
             "uds", "qtà", "quantità", "qtd", "aantal", "antal", "ilość", "kogus", "määrä", "jml",
             "数量", "數量", "수량")
PRICE_WORDS = ("price", "unit price", "preis", "einzelpreis", "e-preis", "prix", "p.u.",
               "precio", "prezzo", "prijs", "pris", "preço", "cena", "hind", "hinta", "harga",
               "单价", "單價", "단가")
# Words after the label of a number: "Receipt No: 12", "Ticket n° 5", "Order #3".
NUMBER_WORDS = ("no", "nr", "n°", "nº", "num", "number", "nummer", "numéro", "núm")
MONTHS = (("jan", 1), ("ene", 1), ("feb", 2), ("fév", 2), ("fev", 2), ("mar", 3), ("mär", 3),
          ("apr", 4), ("avr", 4), ("abr", 4), ("may", 5), ("mai", 5), ("jun", 6), ("juin", 6),
          ("jul", 7), ("juil", 7), ("aug", 8), ("aoû", 8), ("aou", 8), ("ago", 8), ("sep", 9),
          ("oct", 10), ("okt", 10), ("nov", 11), ("dec", 12), ("dez", 12), ("déc", 12),
          ("dic", 12))

# Number flags
PERCENT = 1      # "19%"
PER_UNIT = 2     # "2,99/kg"
CODE = 4         # 8+ integer digits, or a leading zero ("0001"): a code, not an amount

# ---- text -------------------------------------------------------------------------------------


def _is_letter(c):
    """Latin (incl. accented), Greek, Cyrillic: the same answer on CPython and MicroPython."""
    o = ord(c)
    return 97 <= o <= 122 or 65 <= o <= 90 or (0xC0 <= o < 0x2E80 and o != 0xD7 and o != 0xF7)


def _is_cjk(c):
    o = ord(c)
    return 0x2E80 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7A3 or 0xF900 <= o <= 0xFAFF


def _is_digit(c):
    return "0" <= c <= "9"


def has_word(text):
    """True if the text has a letter or a CJK character (a name, not just numbers)."""
    for c in text:
        if _is_letter(c) or _is_cjk(c):
            return True
    return False


def fold(line):
    """Lower case, full-width ASCII as ASCII, box-drawing as spaces; one char per char.

    Positions in the folded text are positions in the line, so values are cut from the line.
    MicroPython's lower() only knows ASCII: Latin-1, Latin Extended-A, Greek, Cyrillic and
    Vietnamese capitals are mapped here.
    """
    low = line.lower()
    if len(low) != len(line):  # CPython: a few capitals lower-case to two characters
        low = "".join(c if len(c.lower()) != 1 else c.lower() for c in line)
    chars = None
    i = 0
    for c in low:
        o = ord(c)
        if o >= 0xC0:
            n = 0
            if o <= 0xDE and o != 0xD7:
                n = o + 32
            elif 0x410 <= o <= 0x42F:   # Cyrillic capitals ("ИТОГО")
                n = o + 32
            elif 0xFF01 <= o <= 0xFF5E:
                n = o - 0xFEE0
                if 65 <= n <= 90:
                    n += 32
            elif o == 0x3000 or 0x2500 <= o <= 0x257F:
                n = 32
            elif o == 0x152:
                n = 0x153
            elif 0x100 <= o <= 0x17E:   # Latin Extended-A ("KOPĀ", "IŠ VISO", "HOTOVĚ")
                if (0x139 <= o <= 0x148 or o >= 0x179) == (o % 2 == 1) \
                        and o not in (0x138, 0x149, 0x178):
                    n = o + 1
            elif 0x391 <= o <= 0x3A9 and o != 0x3A2:   # Greek capitals ("ΣΥΝΟΛΟ")
                n = o + 32
            elif 0x1EA0 <= o <= 0x1EF9 and o % 2 == 0:   # Vietnamese ("TỔNG CỘNG")
                n = o + 1
            if n:
                if chars is None:
                    chars = list(low)
                chars[i] = chr(n)
        i += 1
    return "".join(chars) if chars else low


# ---- numbers ----------------------------------------------------------------------------------


def _parse_number(s, comma):
    """'1.234,50' -> (mantissa 123450, scale 2, int digits); None for '19.01.2026'.

    One separator followed by three digits is a thousands separator unless it is the receipt's
    decimal mark: "5,100" is 5100 on a decimal-point receipt, "1,272" kg on a decimal-comma one.
    comma None: the receipt prints no cents ("48.000" rupiah), so such a separator groups
    thousands whichever it is.
    """
    dec = "," if comma else "" if comma is None else "."
    ndot = s.count(".")
    ncom = s.count(",")
    if ndot and ncom:
        dec = "." if s.rfind(".") > s.rfind(",") else ","
        head, _, frac = s.rpartition(dec)
        groups = head.split("," if dec == "." else ".")
    elif ndot or ncom:
        sep = "." if ndot else ","
        parts = s.split(sep)
        if len(parts) == 2 and (sep == dec or len(parts[1]) != 3):
            head, frac, groups = parts[0], parts[1], (parts[0],)
        else:
            frac, groups = "", parts
    else:
        frac, groups = "", (s,)
    if len(groups) > 1:
        if not 1 <= len(groups[0]) <= 3:
            return None
        for g in groups[1:]:
            if len(g) != 3:
                return None
        if (frac and s.count(dec) > 1):
            return None
    digits = "".join(groups)
    return int(digits + frac), len(frac), len(digits)


def numbers(text, comma):
    """Amount-like numbers of a folded line: [(start, end, mantissa, scale, flags)].

    start..end covers the digits (and a leading minus sign). Skipped: numbers glued to letters
    ("330ml", "x6", "12h44", "DE123"), dates, times and hyphenated codes ("4821-03-825979").
    "3x1.50" counts as two numbers.
    """
    out = []
    n = len(text)
    i = 0
    while i < n:
        if not _is_digit(text[i]):
            i += 1
            continue
        j = i + 1
        while j < n:
            c = text[j]
            if _is_digit(c):
                j += 1
            elif (c == "." or c == ",") and j + 1 < n and _is_digit(text[j + 1]):
                j += 2
            else:
                break
        num = _number_at(text, i, j, comma)
        if num is not None:
            out.append(num)
        i = j
    return out


def _number_at(text, i, j, comma):
    n = len(text)
    before = text[i - 1] if i else " "
    before2 = text[i - 2] if i > 1 else " "
    after = text[j] if j < n else " "
    after2 = text[j + 1] if j + 1 < n else " "
    if _is_letter(before) and not (before in "x×" and _is_digit(before2)) \
            and not _currency_before(text, i):
        return None
    # "2x3" is counted; so is "2x" opening a line of numbers ("2x   10.000   20.000"), not after
    # a name ("Toilettenpapier 8x") nor before one ("3X LARGE SHIRT")
    if _is_letter(after) and not (after in "x×" and (_is_digit(after2) or (
            not _is_letter(after2) and not text[:i].strip() and not has_word(text[j + 1:])))) \
            and not _currency_after(text, j) and not _tax_code_after(text, i, j):
        return None
    if (before in ":/-" and _is_digit(before2)) or (after in ":/-" and _is_digit(after2)):
        return None
    if before == "-" and _is_letter(before2):
        return None
    s = text[i:j]
    if before == "." and comma is False and j - i == 2 and s.isdigit() \
            and not (_is_digit(before2) or _is_letter(before2) or before2 == "."):
        return (i - 1, j, int(s), 2, 0)   # ".82", "$.50": cents without a leading zero
    if comma is not True and "." not in s and _unit_after(text, j):
        comma = True       # "1,272 kg": a weight's decimals
    elif comma is not False and "," not in s and _unit_after(text, j):
        comma = False      # "2.699 kg" on a decimal-comma receipt
    parsed = _parse_number(s, comma)
    if parsed is None:
        return None
    mant, scale, ndigits = parsed
    # "牌号：0001": a number, never an amount, though it may count ("01 x Latte"); ".00" is cents
    padded = len(s) > 1 and s[0] == "0" and s.isdigit() and before != "."
    flags = CODE if ndigits >= 8 or padded else 0
    if after == "%":
        flags |= PERCENT
    elif after == "/" and _is_letter(after2):
        flags |= PER_UNIT
    if before == "-" or (after == "-" and (after2 == " " or j + 1 >= n)):
        mant = -mant
        if before == "-":
            i -= 1
    elif mant and _minus_before_currency(text, i):   # "-$8.94", "-RM 0.02"
        mant = -mant
    return (i, j, mant, scale, flags)


def _unit_after(text, j):
    """True if a weight unit follows the number ending at text[j]: "2.699 kg", "1,272kg"."""
    k = j + 1 if j < len(text) and text[j] == " " else j
    e = k
    while e < len(text) and _is_letter(text[e]):
        e += 1
    return text[k:e] in ("kg", "g", "lb", "lbs")


def _currency_after(text, j):
    """True if the letters glued after text[j - 1] are a currency code ("400.00usd")."""
    e = j
    while e < len(text) and _is_letter(text[e]):
        e += 1
    return e - j == 3 and currency(text[j:e]) is not None


def _tax_code_after(text, i, j):
    """'58.14G', '2.99R', '.99B': an amount with a tax code letter glued after it."""
    return (j + 1 >= len(text) or text[j + 1] == " ") and text[j] != "x" \
        and (j - i >= 4 or (j - i == 2 and i > 0 and text[i - 1] == ".")) \
        and text[j - 3] in ".," and _is_digit(text[j - 1])


def _currency_before(text, i):
    """True if the letters glued before text[i] are a currency code ("rm14.10", "eur154,40")."""
    k = i
    while k and _is_letter(text[k - 1]):
        k -= 1
    return i - k <= 3 and (text[k:i] in GLUED_SIGNS or currency(text[k:i]) is not None)


def _minus_before_currency(text, i):
    """A minus sign before the currency sign or code in front of an amount: "-rm 0.02"."""
    k = i
    if k and text[k - 1] == " ":
        k -= 1
    e = k
    while k and not _is_digit(text[k - 1]) and text[k - 1] not in " -" and e - k < 3:
        k -= 1
    return k < e and k and text[k - 1] == "-" and currency(text[k:e]) is not None \
        and (k < 2 or not _is_digit(text[k - 2]))


def fmt(mant, scale):
    """(123450, 2) -> '1234.50'."""
    sign = "-" if mant < 0 else ""
    digits = str(abs(mant))
    if scale <= 0:
        return sign + digits
    digits = "0" * (scale + 1 - len(digits)) + digits
    return sign + digits[:-scale] + "." + digits[-scale:]


def _times_matches(qty, price, amount):
    """qty * price equals amount to within half of amount's last printed digit."""
    scale = qty[3] + price[3]
    product = qty[2] * price[2]
    if scale >= amount[3]:
        target = amount[2] * 10 ** (scale - amount[3])
        unit = 10 ** (scale - amount[3])
    else:
        product *= 10 ** (amount[3] - scale)
        target, unit = amount[2], 1
    return 2 * abs(product - target) <= unit


def unit_price(amount, qty):
    """The unit price, amount / qty: in amount's decimals when it divides evenly (rupiah stay
    whole: 10,000 / 2 -> '5000'), else rounded half up to at least 2 decimals."""
    den = qty[2]
    if den <= 0:
        return None
    even = amount[2] * 10 ** qty[3]
    if even % den == 0:
        return fmt(even // den, amount[3])
    scale = max(amount[3], 2)
    num = amount[2] * 10 ** (scale - amount[3] + qty[3])
    return fmt((2 * num + den) // (2 * den), scale)


# ---- labels -----------------------------------------------------------------------------------


def _whole_word(text, k, word):
    """True if word, found at text[k:], is not part of a longer Latin word ("total" in
    "subtotal"). CJK keywords match anywhere."""
    e = k + len(word)
    return not ((_is_letter(word[0]) and k and _is_letter(text[k - 1])) or
                (_is_letter(word[-1]) and e < len(text) and _is_letter(text[e])))


def find_word(text, words):
    """Position of the first of words in text as a whole word, -1 if none is there."""
    best = -1
    for word in words:
        k = text.find(word)
        while k >= 0 and not _whole_word(text, k, word):
            k = text.find(word, k + 1)
        if k >= 0 and (best < 0 or k < best):
            best = k
    return best


def labels(text):
    """Keyword hits in a folded line, leftmost-longest, no overlaps: [(start, end, field, tag)]."""
    found = []
    for field, tag, words in LABELS:
        for word in words:
            if text.find(word) >= 0:     # most keywords are not on a line: one find in C
                _find_label(text, word, field, tag, found)
    for field, tag, word in _glued_labels():
        if text.find(word) >= 0:
            _find_label(text, word, field, tag, found)
    if not found:
        misread = _misread_label(text)
        return [misread] if misread else found
    found.sort(key=lambda h: (h[0], -h[1], h[3]))   # ties: the stronger tag, on every port
    out = []
    end = 0
    for hit in found:
        # a keyword in parentheses or after "incl" qualifies the label before it: "TOTAL (incl.
        # VAT)", "TOTAL INCL GST@6%"
        if hit[0] >= end and text.count("(", 0, hit[0]) <= text.count(")", 0, hit[0]) \
                and not (out and _qualified(text[out[-1][1]:hit[0]])):
            out.append(hit)
            end = hit[1]
    return out


# Counts read from a column of their own without a caption are below this.
_QTY_MAX = 1000
# The longest line that is the end of a word cut at the line's end, not a line of its own.
_WORD_END = 2


def _no_cents(amounts):
    """True if no amount string has cents other than zero ("9500", "8500.00")."""
    for a in amounts:
        num = decimal(a)
        if num[2] % 10 ** num[3]:
            return False
    return True


def _lead_count(name):
    """(count, rest) of a name that opens with a count of 1-3 digits and a space ("2 SAM DA
    SOO") or an "x" and a space ("2x GyrosFolie"), else None."""
    if not name:
        return None
    found = _opening_count(name, True) or _opening_count(name, False)
    return (found[0][2], name[found[1]:].strip()) if found else None


# Payment words that are also nouns of item names ("COKLAT BAR", "SAFETY PIN"): among the items
# they label a line only as its first word ("Bar 20,00", "PIN 12,50").
ITEM_NOUNS = ("bar", "pin")


def _item_noun(text, hit):
    """True if a keyword hit is one of ITEM_NOUNS after other words: part of an item's name."""
    return hit[2] == "payment" and text[hit[0]:hit[1]] in ITEM_NOUNS and \
        has_word(text[:hit[0]])


# Labels also read with one letter misread, lost or added ("Tota", "TOTAI", "Subtoal"), when
# they begin a line that has no other label: OCR'd or hand-transcribed receipts. The tag is the
# weakest, so a label read right elsewhere wins.
MISREAD = (("total", "total", "2"), ("subtotal", "subtotal", ""))


def _misread_label(text):
    k = 0
    while k < len(text) and not _is_letter(text[k]):
        if _is_digit(text[k]) or _is_cjk(text[k]):
            return None
        k += 1
    e = k
    while e < len(text) and _is_letter(text[e]):
        e += 1
    for word, field, tag in MISREAD:
        if _one_edit(text[k:e], word):
            return (k, e, field, tag)
    return None


def _one_edit(got, want):
    """True if got is want with exactly one letter changed, dropped or added."""
    n, m = len(got), len(want)
    if n == m:
        return sum(1 for i in range(n) if got[i] != want[i]) == 1
    if n == m - 1:
        got, want = want, got
    elif n != m + 1:
        return False
    for i in range(len(want) + 1):
        if got[:i] + got[i + 1:] == want:
            return True
    return False


# Fields whose multi-word labels are also looked for with the spaces lost ("GRANDTOTAL",
# "AmountDue", "ChangeDue"): transcribed or OCR'd receipts. Built on first use, about 40 strings.
GLUED_FIELDS = ("total", "subtotal", "change", "count", "net", "payment", "tendered", "rounding")
_glued = []


def _glued_labels():
    if not _glued:
        for field, tag, words in LABELS:
            if field in GLUED_FIELDS:
                for word in words:
                    if " " in word:
                        _glued.append((field, tag, word.replace(" ", "")))
    return _glued


def _find_label(text, word, field, tag, found):
    k = text.find(word)
    while k >= 0:
        e = k + len(word)
        if _whole_word(text, k, word):
            found.append((k, e, field, tag))
        elif field == "total":
            if word == "total":
                glued = _glued_total(text, k, e) or _glued_before_total(text, k, e)
            else:   # "TopaySGD"
                glued = _glued_total(text, k, e) == "1" and tag
            if glued:
                while e < len(text) and _is_letter(text[e]):
                    e += 1   # the label ends after the glued word
                found.append((k, e, field, glued))
        elif not (k and _is_letter(text[k - 1])):
            j = e
            while j < len(text) and _is_letter(text[j]):
                j += 1
            if currency(text[e:j]) is not None:
                found.append((k, j, field, tag))   # "CHANGERM", "ROUNDINGRM": a code glued on
        k = text.find(word, k + 1)


def _glued_total(text, k, e):
    """Tag of "total" glued to the word after it (transcripts with spaces lost): "1" before a
    currency ('TOTALEURO', 'TotalAED') or "incl" ('TOTALINCL.GST'), "2" (weakest) before
    another word ('TOTALFUEL'); None for a word that makes it another label ('TotalTaxes',
    'TotalQty', 'TOTALINCLUDES6%GST') or when "total" ends a word ('SUBTOTAL')."""
    if k and _is_letter(text[k - 1]):
        return None
    j = e
    while j < len(text) and _is_letter(text[j]):
        j += 1
    rest = text[e:j]
    if currency(rest) is not None or rest in ("euro", "eeuro", "e", "inc", "incl", "inclusive",
                                              "including"):
        return "1"   # 'TOTALINCL.GST@6%': what "TOTAL INCL GST" is spaced
    if rest.startswith("includ"):
        return None  # 'TOTALINCLUDES6%GST  0.74': the tax the total includes
    for word in NOT_TOTAL:
        if rest.startswith(word):
            return None
    return "2"


def _glued_before_total(text, k, e):
    """'TAKEOUTTotal', 'Eat-InTotal': a word glued before "total" (weakest tag "2"), except
    "subtotal" and its kin and "included in total" ('GST@6%INCLUDEDINTOTAL')."""
    if not k or not _is_letter(text[k - 1]) or (e < len(text) and _is_letter(text[e])):
        return None
    if text[:k].endswith("sub") or text[:k].endswith("sous") or text[:k].endswith("sub-"):
        return None
    if text.find("includ", 0, k) >= 0:
        return None   # 'GST@6%INCLUDEDINTOTAL': the tax "included in total"
    return "2"


# Words that, glued after "total", make it no total: "TotalTaxes", "TotalNo.Items".
NOT_TOTAL = ("tax", "qty", "quant", "item", "no", "disc", "sav", "excl", "net", "vat", "gst",
             "point", "pts", "paid", "tend", "tip", "count", "weight", "unit", "pcs", "art",
             "vol", "piece", "before", "refund", "deposit", "credit", "cash", "change")


# Words after a total label that say what the amount includes: not labels of their own.
QUALIFIERS = ("incl", "inclusive", "including", "includes", "inc", "of", "with", "w/")


def _qualified(between):
    words = between.replace(".", " ").split()
    return bool(words) and words[-1] in QUALIFIERS


def _only_currency_words(text):
    """True if text (a folded piece of a line) has no words but currency codes.

    Words in parentheses are allowed: "Subtotal (3 items) 12.00"; so is a sign that only
    counts glued to the amount after the text ("Total: R288.40").
    """
    depth = 0
    word = ""
    for c in text + "\0":
        if _is_letter(c) or _is_cjk(c):
            word += c
            continue
        if word and not depth and currency(word) is None and word not in QUALIFIERS \
                and word not in FILLERS and currency(word + c) is None \
                and not (c == "\0" and word in GLUED_SIGNS):
            return False
        word = ""
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(depth - 1, 0)
    return True


def labelled_values(text, nums, hits, decimals):
    """Money labels of a line with their amounts: [(hit, number)].

    A label's amount is the last money number between it and the next label.
    """
    out = []
    for h in range(len(hits)):
        _start, end, field, _tag = hits[h]
        if field not in MONEY:
            continue
        stop = hits[h + 1][0] if h + 1 < len(hits) else len(text)
        best = None
        for num in nums:
            if end <= num[0] and num[1] <= stop and is_money(num, decimals):
                best = num
        if best is None and field == "total" and hits[h][3] != "2" and decimals:
            best = _uneven_total(text, nums, end, stop)
        if best is None:
            continue
        hit = hits[h]
        if field in STRICT and not _only_currency_words(text[end:best[0]]):
            if field != "total" or not _one_more_word(text[end:best[0]]):
                continue
            hit = (hit[0], hit[1], field, "2")   # "Total Charges 9.50": a weak total
        if field in PAID and _percent_between(nums, end, best[0]):
            continue   # "P.Resto 10%  6.091": a rate makes it a tax, not money handed over
        if field == "total" and text.find("excl", end, best[0]) >= 0:
            continue   # "TOTAL (EXCLUDING GST)": the net amount
        out.append((hit, best))
    return out


def _one_more_word(between):
    """One word between a total label and its amount that does not make it another figure
    ("Total Price", "Totale complessivo"; not "Total Savings", "Total Weight")."""
    word = between.replace(":", " ").replace(".", " ").strip()
    count = word.split()
    if len(count) == 2 and count[0].isdigit() and (count[1].startswith("item")
                                                  or count[1].startswith("art")):
        return True   # "TOTAL 2 ITEMS 9.50"
    if len(word) < 2:
        return False
    for c in word:
        if not _is_letter(c):
            return False
    for prefix in NOT_TOTAL:
        if word.startswith(prefix):
            return False
    return True


def _bare(rest):
    """True if the rest of a line after a label holds no number and no word but currency
    codes: "TOTAL:", "TOTAL (RM)"; its amount is elsewhere."""
    for c in rest:
        if _is_digit(c):
            return False
    return _only_currency_words(rest)


def _percent_between(nums, start, stop):
    for num in nums:
        if start <= num[0] and num[1] <= stop and num[4] & PERCENT:
            return True
    return False


def _uneven_total(text, nums, end, stop):
    """A total printed without cents or with one decimal on a receipt that prints cents
    ("GrandTotal: 1108", "GrandTotal 356.0"): the number ending the label's part of the line.
    Whole numbers below 10 are item counts ("TOTAL 3")."""
    num = nums[-1] if nums else None
    if num is None or num[0] < end or num[1] > stop or num[4] or num[3] > 1 \
            or (num[3] == 0 and num[2] < 10) or not _only_currency_words(text[num[1]:stop]):
        return None
    return num


def is_money(num, decimals):
    """An amount: two decimals (or a whole number on receipts that print no decimals)."""
    if num[4]:
        return False
    return num[3] == 2 or (not decimals and num[3] == 0)


def token_after(line, text, start, stop, require_digits=1):
    """The identifier after a label: "Receipt No: 4821-03-1" -> "4821-03-1" (None if none).

    Skips ':', '#', '.', '°' and words like "No"/"Nr"; the token ends at a space or CJK
    character and must hold at least require_digits digits and no decimal amount.
    """
    i = start
    while i < stop:
        c = text[i]
        if c in " :#.°º-=":
            i += 1
            continue
        matched = False
        for w in NUMBER_WORDS:
            e = i + len(w)
            if text.startswith(w, i) and (e >= stop or not _is_letter(text[e])):
                i = e
                matched = True
                break
        if not matched:
            break
    j = i
    while j < stop and text[j] != " " and not _is_cjk(text[j]) and text[j] not in ",;()":
        j += 1
    while j > i and text[j - 1] in ".:-":
        j -= 1
    digits = 0
    for c in text[i:j]:
        if _is_digit(c):
            digits += 1
    if digits < require_digits:
        return None
    return line[i:j]


def currency(word):
    """ISO code for a folded currency symbol or code, None if it is none."""
    for sym, code in CURRENCIES:
        if word == sym:
            return code
    return None


def find_currency(text, nums, next_to_number):
    """Currency named in a folded line; with next_to_number only a symbol beside an amount."""
    for sym, code in CURRENCIES:
        k = text.find(sym)
        while k >= 0:
            e = k + len(sym)
            if _whole_word(text, k, sym):
                if not next_to_number:
                    return code
                for num in nums:
                    if num[0] - 2 <= e <= num[0] or num[1] <= k <= num[1] + 1:
                        return code
            k = text.find(sym, k + 1)
    return None


# ---- dates ------------------------------------------------------------------------------------


def _digit_runs(text):
    runs = []
    n = len(text)
    i = 0
    while i < n:
        if _is_digit(text[i]):
            j = i
            while j < n and _is_digit(text[j]):
                j += 1
            runs.append((i, j, int(text[i:j])))
            i = j
        else:
            i += 1
    return runs


def find_date(text, month_first):
    """(year, month, day, end) of the first date in a folded line, or None.

    Y-M-D, D.M.Y, D/M/Y (M/D/Y when month_first, or when the day cannot be a month),
    2026年1月24日, "27 Oct 2023", "6th of April 2015", "April 6, 2015".
    """
    runs = _digit_runs(text)
    for k in range(len(runs) - 2):
        a, b, c = runs[k], runs[k + 1], runs[k + 2]
        s1 = text[a[1]:b[0]]
        s2 = text[b[1]:c[0]]
        la, lc = a[1] - a[0], c[1] - c[0]
        if s1 in ("-", "/", ".") and s2 in ("-", "/", ".") and (s1 == s2 or lc == 4):
            if la == 4 and c[1] - c[0] <= 2:
                y, m, d = a[2], b[2], c[2]
            elif la <= 2 and b[1] - b[0] <= 2 and lc in (2, 4):
                y = c[2] + 2000 if lc == 2 else c[2]
                if a[2] > 12 or (b[2] <= 12 and not (month_first and s1 == "/")):
                    d, m = a[2], b[2]
                else:
                    m, d = a[2], b[2]
            else:
                continue
        elif s1 == "年" and s2 == "月" and la == 4:
            y, m, d = a[2], b[2], c[2]
        else:
            continue
        if _in_code(text, a[0], c[1]):
            continue   # part of a longer code: "1-01-1-01-001303"
        if 1 <= m <= 12 and 1 <= d <= 31 and 1990 <= y <= 2099:
            return y, m, d, c[1]
    if not runs:
        return None
    return _find_month_word_date(text) or _find_named_date(text, runs) or _compact_date(runs)


def _month_at(text, k):
    """(month, end) of a month name starting at text[k] ("jul", "sept", "november"), or None."""
    if k and _is_letter(text[k - 1]):
        return None        # inside a word: only word starts are looked at
    e = k
    while e < len(text) and _is_letter(text[e]):
        e += 1
    if not 3 <= e - k <= 9:
        return None
    word = text[k:e]
    for prefix, m in MONTHS:
        # "mar" but not "mart": the abbreviation, a few 4-letter forms or a longer name
        if word.startswith(prefix) and (word == prefix or len(word) >= 5
                                        or word in ("sept", "june", "july", "juin")):
            return m, e
    return None


def _digits_at(text, i, step, seps):
    """A digit run next to text[i] (step 1: starting at i, -1: ending before i), skipping up
    to two separators first: (value, length, far end) or None."""
    n = len(text)
    skipped = 0
    while 0 <= i < n and text[i] in seps and skipped < 2 and step > 0:
        i += 1
        skipped += 1
    while step < 0 and 0 < i and text[i - 1] in seps and skipped < 2:
        i -= 1
        skipped += 1
    j = i
    if step > 0:
        while j < n and _is_digit(text[j]):
            j += 1
        if j == i or (j < n and _is_letter(text[j]) and j - i != 2):
            return None
        return int(text[i:j]), j - i, j
    while j > 0 and _is_digit(text[j - 1]):
        j -= 1
    if j == i or (j and _is_digit(text[j - 1])):
        return None
    return int(text[j:i]), i - j, j


def _find_month_word_date(text):
    """'28 mar 18', '24-mar-2018', '02/jan/2017', 'dec26'07', 'mar05,2017', '23nov17'.

    Only where a month abbreviation is found (str.find, no loop over every character)."""
    best = None
    for prefix, _m in MONTHS:
        k = text.find(prefix)
        while k >= 0:
            date = _month_word_date_at(text, k)
            if date is not None and (best is None or k < best[0]):
                best = (k, date)
            k = text.find(prefix, k + 1)
    return best[1] if best else None


def _month_word_date_at(text, k):
    found = _month_at(text, k)
    if found is not None:
        m, e = found
        day = _digits_at(text, k, -1, " -/.")
        if day is not None and day[1] <= 2:
            year = _digits_at(text, e, 1, " -/.'")
        else:
            day = _digits_at(text, e, 1, " -/.")
            year = _digits_at(text, day[2], 1, " ,.'-/") if day and day[1] <= 2 else None
        if year is None or year[1] not in (2, 4) or not 1 <= day[0] <= 31:
            return None
        y = year[0] + 2000 if year[1] == 2 else year[0]
        if 1990 <= y <= 2099:
            return y, m, day[0], year[2]
    return None


def _compact_date(runs):
    """'20180428' standing alone: 8 digits that read as a date of this century."""
    for start, end, value in runs:
        if end - start == 8 and 20000101 <= value <= 20391231:
            m, d = value // 100 % 100, value % 100
            if 1 <= m <= 12 and 1 <= d <= 31:
                return value // 10000, m, d, end
    return None


def _in_code(text, start, end):
    """True if digits joined by '-', '/' or '.' go on before start or after end."""
    return (start > 1 and text[start - 1] in "-/." and _is_digit(text[start - 2])) or \
        (end + 1 < len(text) and text[end] in "-/." and _is_digit(text[end + 1]))


def _find_named_date(text, runs):
    for k in range(len(runs)):
        start, end, year = runs[k]
        if end - start != 4 or not 1990 <= year <= 2099:
            continue
        words = text[runs[k - 2][1] if k > 1 else 0:start].replace(",", " ").split()
        month = 0
        for w in words:
            if len(w) <= 10 and has_word(w) and not _digit_runs(w):
                for prefix, m in MONTHS:
                    if w.startswith(prefix):
                        month = m
        if not month:
            continue
        for r in (runs[k - 1] if k else None, runs[k - 2] if k > 1 else None):
            if r and r[1] - r[0] <= 2 and 1 <= r[2] <= 31 and text[r[0]:start].count(" ") <= 4:
                return year, month, r[2], end
    return None


def find_time(text, start):
    """(hour, minute, second) of the first time at or after start: 14:05, 14:05:33, 2:05 PM,
    14h05, 下午2:05. None if there is none."""
    runs = _digit_runs(text)
    for k in range(len(runs) - 1):
        a, b = runs[k], runs[k + 1]
        if a[0] < start or a[1] - a[0] > 2 or b[1] - b[0] != 2 or b[0] != a[1] + 1:
            continue
        sep = text[a[1]]
        if sep not in ":h":
            continue
        h, mi, s = a[2], b[2], 0
        end = b[1]
        if sep == ":" and k + 2 < len(runs):
            c = runs[k + 2]
            if c[0] == b[1] + 1 and text[b[1]] == ":" and c[1] - c[0] == 2:
                s, end = c[2], c[1]
        rest = text[end:end + 6].lstrip()
        pm = (rest.startswith("pm") or rest.startswith("p.m")
              or "下午" in text[max(0, a[0] - 3):a[0]])
        am = (rest.startswith("am") or rest.startswith("a.m")
              or "上午" in text[max(0, a[0] - 3):a[0]])
        if pm and h < 12:
            h += 12
        elif am and h == 12:
            h = 0
        if h <= 23 and mi <= 59 and s <= 59:
            return h, mi, s
    return None


# ---- the extractor ----------------------------------------------------------------------------


def _clock_suffix(low):
    """A 12-hour time: "8:45 pm", "10:59am"."""
    for mark in ("am", "pm", "a.m", "p.m"):
        k = low.find(mark)
        while k >= 0:
            before = low[:k].rstrip()
            if before and _is_digit(before[-1]) and ":" in before[-6:]:
                return True
            k = low.find(mark, k + 1)
    return False


def receipt_style(lines):
    """(decimal comma?, prints decimals?, month before day?) from the whole receipt.

    Decimal comma is None on receipts whose amounts have no cents but group thousands
    ("48.000", "580,965"): more such groups than two-decimal amounts.
    """
    comma = dot = grouped = 0
    us = False
    for line in lines:
        if not line:
            continue
        n = len(line)
        for k in range(1, n - 2):
            c = line[k]
            if (c == "," or c == ".") and _is_digit(line[k - 1]) and _is_digit(line[k + 1]) \
                    and _is_digit(line[k + 2]):
                end = k + 3 >= n or not _is_digit(line[k + 3])
                if end and c == ",":
                    comma += 1
                elif end:
                    dot += 1
                elif k + 4 >= n or not _is_digit(line[k + 4]):
                    grouped += 1
        if not us:
            us = "$" in line or _clock_suffix(line.lower())
    is_comma = comma > dot
    if grouped > comma + dot:   # "48.000", "580,965": amounts without cents (rupiah)
        return None, False, us
    return is_comma, comma + dot > 0, us and not is_comma


class Extractor:
    """Reads a receipt line by line; result() gives the fields. server/extract.py extends it.

    Subclasses get every decoded line through on_line() with its scan (folded text, numbers,
    labels, labelled amounts), so nothing is scanned twice.
    """

    def __init__(self, lines):
        self.comma, self.decimals, self.month_first = receipt_style(lines)
        self.values = {}          # field -> [(tag, amount string, line index)]
        self.payments = []
        self.receipt_no = None
        self.member_id = None
        self.date = None
        self.time = None
        self.currency = None
        self.items = []           # [name, qty, unit_price, amount, first line, last line]
        self._currency_rank = 9   # 0: on the total line, 1: on another amount line, 2: anywhere
        self._bare_dollar = False  # the currency read is a "$" alone
        self._country_named = False  # the country is told by words of COUNTRY_NAMES
        self._time_next = False   # date without time: the time may be on the next line
        self._in_items = True     # until the first subtotal, total, tax or payment
        self._name_col = None     # column of the last item's name when on its amount's line
        self._joined = None       # (item, its name, its last line) before a line joined it
        self._counted = False     # _count_column ran
        self._pending = None      # (name, first and last line index): text lines waiting for
        #                           their numbers
        self._columns = None      # "qp" or "pq" from a column header
        self._qty_column = False
        self._label_above = None  # money label ending the previous line, amount on this one
        self._paid_at = None      # index of the first payment, tendered or change line
        self._country = None      # currency of the store's country (COUNTRY_SIGNALS)
        self._day_first = None    # day-first reading of a date read month-first
        self._amounts = []        # (mantissa, scale) ending each line after the items
        self._subtotal_at = None  # index in _amounts of the first subtotal's amount
        self._signed_max = None   # (mantissa, scale): the largest amount printed with a currency
        self._lone_amounts = []   # (line index, scan) of amounts alone on a line before the
        #                           payment
        self._amount_above_label = None  # that scan when it is the line above _label_above's
        self._named_below = False  # an item was named by the line under its amount
        self._previous = None     # index of the line fed last

    def run(self, lines):
        for index in range(len(lines)):
            line = lines[index]
            if line:
                self.feed(index, line)
        return self

    def feed(self, index, line):
        """Scan one decoded line and take what it holds."""
        text = fold(line)
        nums = numbers(text, self.comma)
        hits = labels(text)
        if self._in_items and hits:
            hits = [h for h in hits if not _item_noun(text, h)]
        found = labelled_values(text, nums, hits, self.decimals)
        if self._label_above is not None:
            above = self._label_above
            alone = not hits and len(nums) == 1 and is_money(nums[0], self.decimals)
            if alone and _only_currency_words(text[:nums[0][0]] + text[nums[0][1]:]):
                found = [(above, nums[0])]
            elif above[2] == "total" and self._amount_above_label is not None and not (
                    nums and is_money(nums[-1], self.decimals)
                    and self._priced_item(self._lone_amounts[-1][0])):
                # not "Tea" / "3.00" / "TOTAL" / "Visa 7.50": an item's price under its name
                found = [self._amount_above(above)] + found
            elif alone:
                found = [(above, nums[0])]
            elif above[2] == "total" and nums and is_money(nums[-1], self.decimals) \
                    and not [h for h in hits if h[2] in ("total", "subtotal", "tax")]:
                # "GRAND TOTAL" / "~ BCA DEBIT [51,000]   51,000": the total, paid by card
                found = [(above, nums[-1])] + found
            self._label_above = None
        elif hits and not found and hits[-1][2] in MONEY and _bare(text[hits[-1][1]:]) \
                and (len(hits) == 1 or not text[hits[-1][1]:].strip()):
            # "TOTAL:" / "$9.50", not a caption row ending "GST(RM)  TOTAL(RM)"
            last = hits[-1]
            if len(hits) == 1 and last[2] == "total" and len(nums) == 1 \
                    and is_money(nums[0], self.decimals) and nums[0][1] <= last[0] \
                    and (nums[0][3] or nums[0][2] >= 10) \
                    and _only_currency_words(text[:nums[0][0]] + text[nums[0][1]:last[0]]):
                found = [(last, nums[0])]   # "9.50  TOTAL": the amount printed first, not
                #                             a count of items ("9  Total")
            elif find_word(text, QTY_WORDS) < 0 and find_word(text, PRICE_WORDS) < 0:
                self._label_above = last   # not a caption ("Qty  Price  Total")
                lone = self._lone_amounts[-1] if self._lone_amounts else None
                self._amount_above_label = lone[1] if lone and lone[0] == self._previous else None
        if not found and not hits and len(nums) == 1 and self._paid_at is None \
                and is_money(nums[0], self.decimals) \
                and _only_currency_words(text[:nums[0][0]] + text[nums[0][1]:]):
            self._lone_amounts.append((index, nums[0]))
            if not has_word(text) and (self.values.get("subtotal") or self.values.get("tax")):
                # an amount alone under the subtotal and tax lines: the total, its label left out
                found = [((0, 0, "total", "2"), nums[0])]
        for hit, num in found:
            self._money(hit, num, index)
        self._find_currency(text, nums, found)
        if not self._country_named:   # a named country may follow a street word ("jalan")
            for word, code in COUNTRY_SIGNALS:
                if find_word(text, (word,)) >= 0:
                    if self._country is None:
                        self._country = code
                    self._country_named = word in COUNTRY_NAMES and code == self._country
                    break
        named = self._identifiers(line, text, hits)
        dated = self._datetime(text)
        self._item_line(index, line, text, nums, hits, found, named or dated)
        if not self._in_items and nums and is_money(nums[-1], self.decimals):
            if self._subtotal_at is None and [h for h, _n in found if h[2] == "subtotal"]:
                self._subtotal_at = len(self._amounts)
            self._amounts.append((nums[-1][2], nums[-1][3]))
        if nums and nums[-1][2] > 0 and nums[-1][3] == (2 if self.decimals else 0) \
                and is_money(nums[-1], self.decimals) and find_currency(text, nums[-1:], True):
            mant, scale = nums[-1][2], nums[-1][3]
            top = self._signed_max
            if top is None or mant * 10 ** top[1] > top[0] * 10 ** scale:
                self._signed_max = (mant, scale)
        self._previous = index
        self.on_line(index, line, text, nums, hits, found)

    def _amount_above(self, label):
        """(label, amount) for a bare total label under an amount alone on its line ("$85.00" /
        "Total": a row split in two), the amount no longer an item named by the label."""
        if self.items and self.items[-1][5] == self._lone_amounts[-1][0]:
            self.items.pop()
        self._label_above = None
        return (label, self._amount_above_label)

    def on_line(self, index, line, text, nums, hits, found):
        """Hook for subclasses: one decoded line and its scan."""

    def _money(self, hit, num, index):
        field, tag = hit[2], hit[3]
        amount = fmt(num[2], num[3])
        if field in ("payment", "tendered", "change") and self._paid_at is None:
            self._paid_at = index
        if field == "payment":
            self.payments.append({"type": tag, "amount": amount})
        else:
            self.values.setdefault(field, []).append((tag, amount, index))

    def _find_currency(self, text, nums, found):
        rank = 2
        for hit, num in found:
            rank = min(rank, 0 if hit[2] == "total" else 1)
        if rank < self._currency_rank:
            code = find_currency(text, nums, rank == 2)
            if code:
                self.currency = code
                self._currency_rank = rank
                # "$" alone, not "USD" or "US$": a sign POS software prints for any currency
                self._bare_dollar = code == "USD" and find_word(text, ("usd",)) < 0 \
                    and text.find("us$") < 0

    def _identifiers(self, line, text, hits):
        """Receipt and member number; True if this line gave one."""
        named = False
        for h in range(len(hits)):
            _start, end, field, _tag = hits[h]
            stop = hits[h + 1][0] if h + 1 < len(hits) else len(text)
            if field == "receipt_no" and self.receipt_no is None:
                self.receipt_no = token_after(line, text, end, stop)
                named = named or self.receipt_no is not None
            elif field == "member" and self.member_id is None:
                token = token_after(line, text, end, stop, 4)
                if token and "." not in token and "," not in token:
                    self.member_id = token
                    named = True
        return named

    def _datetime(self, text):
        """First date of the receipt and the time on its line (or the next); True if dated."""
        date = find_date(text, self.month_first)
        if self._time_next:
            self._time_next = False
            if date is None:
                self.time = find_time(text, 0)
        if date is not None and self.date is None:
            self.date = date[:3]
            if self.month_first:   # the day-first reading, for receipts not in dollars
                other = find_date(text, False)
                if other is not None and other[:3] != self.date:
                    self._day_first = other[:3]
            self.time = find_time(text, date[3])
            self._time_next = self.time is None
        return date is not None

    # ---- items

    def _item_line(self, index, line, text, nums, hits, found, skip):
        if not self._in_items:
            return
        for hit, num in found:
            if hit[2] in SUMMARY and hit[3] != "2":
                self._in_items = False
                return
        if skip or self._column_header(text):
            self._pending = None
            return
        for hit in hits:
            if hit[2] == "count":   # "Total Item: 2"
                return
        if not nums and self.items and self.items[-1][0] is None and has_word(text):
            self.items[-1][0] = _strip_box(line)   # the name under its price line
            self._named_below = True
            return
        if _is_code_line(text, nums):
            return  # an item's SKU line between its name and its numbers
        group, xs = _trailing_numbers(text, nums)
        if len(group) >= 2 and self.decimals and group[-1][3] == 0 and group[-1][2] < 10 \
                and group[-2][3] == 2 and not xs[-1]:
            group, xs = group[:-1], xs[:-1]   # a tax code digit after the amount: "2.50   9"
        if group and len(group) >= 2 and xs[-1] and not group[-1][4] & PERCENT:
            self._qty_line(group[-2], group[-1], text)
            return
        if not group or not self._amount_ok(group[-1], group, hits, text):
            # a text line ("CALCETINES PACK 3"): the name of numbers that may follow
            pending = self._pending
            if not has_word(text) or [h for h in hits if h[2] in SUMMARY]:
                self._pending = None   # no name: a total's label waiting for its amount
            elif not nums and not hits and self._name_col is not None \
                    and self.items[-1][5] == index - 1 \
                    and len(text) - len(text.lstrip(" ")) == self._name_col:
                # the item's name goes on under it, from the same column ("HAEMUL DENJANG  1
                # 85,000" / "JJIGAE"); a modifier is indented or marked ("  LESS ICE", "+Hot").
                # Kept as a name waiting for numbers too: if the next amount line takes it
                # ("MILK 2%  3.49" / "BREAD" / "2 @ 1.50  3.00"), the join is undone.
                item = self.items[-1]
                self._joined = (item, item[0], item[5])
                item[0] += " " + _strip_box(line)
                item[5] = index
                self._name_col = None
                self._pending = (_strip_box(line), index, index)
            elif pending is not None and pending[1] == pending[2] == index - 1 and (
                    self.items or len(text.strip()) <= _WORD_END):
                # a name wrapped onto a second line above its amount ("BUDS CALMING TUMMY
                # RUB CREAM" / "30ML(TOILETRIES)" / "200,000"), two lines at most; not the
                # header's lines before the first item, unless the second is the end of a word
                # cut ("Sudirma" / "n")
                self._pending = (pending[0] + " " + _strip_box(line), pending[1], index)
            else:
                self._pending = (_strip_box(line), index, index)
            return
        amount = group[-1]
        qty = price = None
        used = 1
        if len(group) >= 3 and xs[-2]:
            if _times_matches(group[-3], group[-2], amount):
                qty, price, used = group[-3], group[-2], 3
        elif len(group) >= 3 and _times_matches(group[-3], group[-2], amount):
            qty, price = self._qty_and_price(group[-3], group[-2])
            used = 3
        elif len(group) >= 2 and self._qty_column and group[-2][3] != 2 and group[-2][2] > 0:
            qty, used = group[-2], 2
        elif len(group) == 2 and not self.decimals and group[-2][3] == 0 \
                and 0 < group[-2][2] < _QTY_MAX \
                and text[group[-2][0] - 2:group[-2][0]] == "  " and has_word(text[:group[-2][0]]):
            # a count in a column of its own, no caption above ("BO SSAM     1     320,000"); a
            # number one space after the name is the name's ("Band-Aids Assorted 40  3.99")
            qty, used = group[-2], 2
        lead = nums[0]
        if qty is None and len(group) >= 2 and lead[1] < group[-2][0] and lead[3] == 0 \
                and 0 < lead[2] < _QTY_MAX and not text[:lead[0]].strip() \
                and text[group[-2][0] - 1] == " " and _times_matches(lead, group[-2], amount) \
                and has_word(text[lead[1]:group[-2][0]]):
            # the count before the name, the unit price and the amount after it ("8   NASI
            # PUTIH   10,000   80,000"): the count is what multiplies out
            qty, price, used = lead, group[-2], 2
            begin = lead[1]
            rest = text[begin:price[0]].split()
            if rest and rest[0] in TIMES:   # "2 x VITAMIN A  5.00  10.00"
                begin = text.find(rest[0], begin) + len(rest[0])
            name = _trim(_strip_box(line[begin:_before_mark(text, price[0])]), _NAME_TRIM)
            if not has_word(name):
                name = None   # "2 x à 5.00  10.00"
            prefix_qty = None
        else:
            name, prefix_qty = _item_name(line, text, nums, group[-used])
        if qty is None:
            qty = prefix_qty
        first = index
        if name is None and self._pending is None and len(nums) == 1 and len(self.items) >= 2 \
                and not has_word(text) and not self._named_below and self._sum_of_items(amount) \
                and None not in [i[0] for i in self.items]:
            # the named items' sum alone on a line: their total, its label lost
            self._in_items = False
            return
        if name is None and self._pending is not None:
            name, first, _last = self._pending
            joined = self._joined
            if joined is not None and joined[0][5] == first:
                joined[0][0], joined[0][5] = joined[1], joined[2]   # the next item's name
        self._pending = None
        self._joined = None
        amount_s = fmt(amount[2], amount[3])
        if price is not None:
            price_s = fmt(price[2], price[3])
        elif qty is None or qty[2] == 10 ** qty[3]:
            price_s = amount_s
        else:
            price_s = unit_price(amount, qty)
        self.items.append([name, fmt(qty[2], qty[3]) if qty else "1", price_s, amount_s,
                           first, index])
        self._name_col = line.find(name) if name and first == index else None

    def _amount_ok(self, amount, group, hits, text):
        if amount[4] or (amount[2] < 0 and (hits or not self.items
                                            or not has_word(text[:group[0][0]]))):
            return False   # a labelled negative ("Discount -1.00"), a nameless one, or one
            #                before any item
        if amount[3] == 2 or (not self.decimals and amount[3] == 0):
            return True   # cents, or a receipt without cents ("43.636" rupiah)
        # whole-number amounts only in quantity/price/amount columns that multiply out
        return (not self.decimals and len(group) >= 3
                and _times_matches(group[-3], group[-2], amount))

    def _qty_and_price(self, a, b):
        """Which of two column numbers is the quantity."""
        if self._columns:
            return (a, b) if self._columns == "qp" else (b, a)
        if a[3] != 2 and b[3] == 2:
            return a, b
        if b[3] != 2 and a[3] == 2:
            return b, a
        return (a, b) if a[2] * 10 ** b[3] <= b[2] * 10 ** a[3] else (b, a)

    def _qty_line(self, qty, price, text):
        """'  3 x 1.50' under an item: its quantity and unit price."""
        self._pending = None
        if not self.items or has_word(text[:qty[0]]):
            return
        item = self.items[-1]
        if item[1] == "1" and _times_matches(qty, price, decimal(item[3])):
            item[1] = fmt(qty[2], qty[3])
            item[2] = fmt(price[2], price[3])

    def _column_header(self, text):
        """A caption line "Name Qty Price Amount": remember the column order."""
        q = find_word(text, QTY_WORDS)
        if q < 0 or numbers(text, self.comma):
            return False
        p = find_word(text, PRICE_WORDS)
        self._qty_column = True
        if p >= 0:
            self._columns = "qp" if q < p else "pq"
        return True

    # ---- result

    def result(self):
        """The fields (see the module docstring)."""
        self._count_column()
        above = self._label_above
        if above is not None and above[2] == "total" and self._amount_above_label is not None:
            hit, num = self._amount_above(above)   # the label is the last line
            self._money(hit, num, self._lone_amounts[-1][0])
        total = self._best_total()
        subtotal = self._first("subtotal")
        payments = self.payments
        change = self._first("change")
        if total is None:
            total = self._charges_sum_printed()
        if total is None:
            total = self._untaxed_subtotal()
        due = self._paid_net(payments, change)
        if total is None:
            total = due
        if total is None:
            total = self._item_sum_printed()
        if total is None and self._signed_max is not None:
            # no label, payment or sum says it ("TOLLPAID: $5.00", "FUELSALE $16.24"): the
            # amount due is the largest printed with the currency
            total = fmt(*self._signed_max)
        if due is not None and due != total and due.strip("0.") and due in self._lone_totals():
            total = due   # the total's label left out (unreadable): what was paid says it
        if total is not None and change is not None:
            payments = _net_of_change(payments, total, change)
        return {
            "total": total,
            "subtotal": subtotal,
            "currency": self._currency(),
            "receipt_no": self.receipt_no,
            "datetime": self._iso_datetime(),
            "member_id": self.member_id,
            "payments": payments,
            "items": [{"name": i[0], "qty": i[1], "unit_price": i[2], "amount": i[3]}
                      for i in self.items],
        }

    def _paid_net(self, payments, change):
        """What was paid less the change given: the payments (printed negative too, cash handed
        over), else the amount tendered when the change is printed; None without them or below
        zero."""
        if payments:
            paid = add_amounts(p["amount"] for p in payments).lstrip("-")
        else:
            paid = self._first("tendered")
            if paid is None or change is None:
                return None
        if change is not None and not change.startswith("-"):   # cash handed over
            paid = add_amounts((paid, "-" + change))
        return None if paid.startswith("-") else paid

    def _priced_item(self, index):
        """True if the line at index is the price of an item named on a line above it ("Tea" /
        "3.00"): an amount alone that is no total."""
        for item in self.items:
            if item[5] == index != item[4]:
                return True
        return False

    def _lone_totals(self):
        """The amounts alone on their line before the payment that may be the total: where a
        total label prints one, not an item's price under its name ("Cake" / "3.00" paid in
        part by a gift card)."""
        labelled = self._total_labelled()
        return [fmt(num[2], num[3]) for index, num in self._lone_amounts
                if not (labelled and self._priced_item(index))]

    def _total_labelled(self):
        """True if a total label, not a weak one, prints an amount before the first payment."""
        paid = self._paid_at
        for tag, _amount, index in self.values.get("total", ()):
            if tag != "2" and (paid is None or index <= paid):
                return True
        return False

    def _currency(self):
        """Printed sign or code (a "$" alone: the store's country's currency when words tell
        the country), else the store's country, else rupiah for amounts without cents in the
        thousands; None if nothing tells."""
        if self._bare_dollar and self._country_named:
            return self._country   # "$8.20" at a "SDN BHD": ringgit
        if self.currency or self._country:
            return self.currency or self._country
        totals = [a for _tag, a, _at in self.values.get("total", ())]
        big = [len(a.lstrip("-").split(".")[0]) for a in totals]
        if self.comma is None or ((max(big, default=0) > 4 or (self.comma and 4 in big))
                                  and _no_cents(totals + [i[3] for i in self.items])):
            # thousands grouped, or never a cent but zero and a total of five digits or four
            # printed with a decimal comma ("8.500,00"); "SOFA 1200.00" stays unknown
            return NO_CENTS_CURRENCY
        return None

    def _first(self, field):
        got = self.values.get(field)
        return got[0][1] if got else None

    def _count_column(self):
        """Items whose names open with a count ("2 SAM DA SOO MINERAL WATER  32,000") on a
        receipt where at least half the item names whose count was not read otherwise do: the
        count is the quantity, not part of the name. Once: result() may be asked twice."""
        if self._counted:
            return
        self._counted = True
        unread = [item for item in self.items if item[1] == "1"]   # no other count read
        counted = [item for item in unread if _lead_count(item[0])]
        if not counted or len(counted) + len(self.items) - len(unread) < 2 \
                or 2 * len(counted) < len(unread):
            return
        for item in counted:
            count, name = _lead_count(item[0])
            item[0], item[1] = name, str(count)
            if count > 1:
                item[2] = unit_price(decimal(item[3]), (0, 0, count, 0))

    def _sum_of_items(self, num):
        """True if the number (a scan's tuple) is the sum of the items read so far."""
        want = decimal(add_amounts(i[3] for i in self.items))
        return num[2] * 10 ** want[3] == want[2] * 10 ** num[3]

    def _item_sum_printed(self):
        """No total label found: the items' sum when a line after them prints it."""
        if not self.items:
            return None
        for mant, scale in self._amounts:
            if mant > 0 and self._sum_of_items((0, 0, mant, scale, 0)):
                return fmt(mant, scale)
        return None

    def _charges_sum_printed(self):
        """No total label found: the amount after the subtotal that is the sum of the subtotal
        and the charges printed between them ("SUBTOTAL 937,000", "SERVICE 56,220",
        "Tax 10% 99,322", "DU 1,092,542")."""
        if self._subtotal_at is None:
            return None
        run = self._amounts[self._subtotal_at:]
        total = "0"
        for k in range(len(run)):
            mant, scale = run[k]
            want = decimal(total)
            if k >= 2 and mant > 0 and mant * 10 ** want[3] == want[2] * 10 ** scale:
                return fmt(mant, scale)
            total = add_amounts((total, fmt(mant, scale)))
        return None

    def _untaxed_subtotal(self):
        """No total printed: the last subtotal before the payment, unless tax is added after
        it ("SUBTOTAL 11.20", "TAX 0.73", no total line)."""
        paid = self._paid_at
        last = None
        for _tag, amount, index in self.values.get("subtotal", ()):
            if paid is None or index <= paid:
                last = (amount, index)
        if last is None:
            return None
        for _tag, _amount, index in self.values.get("tax", ()):
            if index > last[1] and (paid is None or index < paid):
                return None
        return last[0]

    def _rounded(self, total, index):
        """A total printed before a rounding line ("TOTAL 45.34", "ROUNDING 0.01", no rounded
        total printed): the amount due is the total rounded to the currency's cash step."""
        rounding = self.values.get("rounding")
        paid = self._paid_at
        if not rounding or self._currency() not in ROUNDED_CURRENCIES:
            return total
        at = rounding[-1][2]
        if at <= index or (paid is not None and at > paid):
            return total   # rounded after the total was printed, or only the change
        num = decimal(total)
        if num[3] != 2:
            return total
        mant = num[2]
        return fmt((mant + 2) // 5 * 5 if mant >= 0 else mant, 2)

    def _best_total(self):
        """The amount due: of the total lines before the first payment (a tax summary's
        "TOTAL" row and "BALANCE DUE 0.00" come after it), the last of the strongest label
        ("TOTAL 33.92", "ROUNDING -0.02", "TOTAL ROUNDED 33.90"); zero or negative amounts
        only when there is nothing else."""
        found = self.values.get("total", ())
        paid = self._paid_at
        before = [t for t in found if paid is None or t[2] <= paid]
        best = None
        for tag, amount, index in before or found:
            if tag == "2" and amount.startswith("-"):
                continue   # a weak label's negative amount ("AMOUNT -2,300") is a discount
            # an amount without cents on a receipt with cents only when no label of the same
            # strength has one with cents
            uneven = self.decimals and decimal(amount)[3] != 2
            rank = (amount.startswith("-") or not amount.strip("0.-"), tag, uneven)
            if best is None or rank <= best[0]:
                best = (rank, amount, index)
        return self._rounded(best[1], best[2]) if best else None

    def _iso_datetime(self):
        if self.date is None:
            return None
        y, m, d = self.date
        if self._day_first and self._currency() not in (None, "USD"):
            # month-first was guessed from "$" or a 12-hour clock ("8:13 PM"), which
            # day-first countries print too: their currency decides
            y, m, d = self._day_first
        if self.time is None:
            return "%04d-%02d-%02d" % (y, m, d)
        return "%04d-%02d-%02dT%02d:%02d:%02d" % ((y, m, d) + tuple(self.time))


def _item_name(line, text, nums, first):
    """(name, quantity) from the text before an item's numbers; name None if it has none.

    "3 x Latte" gives quantity 3; a leading code of 5+ digits (a SKU) is not part of the name.
    """
    start = 0
    qty = None
    lead = [n for n in nums if n[1] <= first[0]]
    if lead and not text[:lead[0][0]].strip():
        num = lead[0]
        rest = text[num[1]:first[0]].split()
        if rest and rest[0] in TIMES and num[3] != 2 and num[2] > 0:
            qty = num
            start = text.find(rest[0], num[1]) + len(rest[0])
        elif rest and rest[0] in UNITS and num[2] > 0:   # "2.699 kg @ 1,79 €/kg  4,83 €"
            qty = num
            start = num[1]
        elif num[3] == 0 and num[1] - num[0] >= 5:
            start = num[1]
    end = first[0]
    price = [n for n in nums if n[1] <= end and not text[n[1]:end].strip()]
    price = price[-1] if price else None   # the number just before the amount
    glued = _opening_count(text, True) if qty is None and price is not None else None
    if glued is not None and _times_matches(glued[0], price, first):
        qty, start = glued   # "3x Hefe-Weissbier  à 3,30  9,90"; not "3X LARGE SHIRT  19.99"
    if qty is not None and price is not None and start < price[0] \
            and _times_matches(qty, price, first):
        end = _before_mark(text, price[0])   # the unit price after the name
    word_end = end
    while word_end > start and text[word_end - 1] == " ":
        word_end -= 1
    sign = word_end
    while sign > start and _is_letter(text[sign - 1]):
        sign -= 1
    code = text[sign:word_end]
    if code and (currency(code) is not None or (word_end == end and code in GLUED_SIGNS)):
        end = sign   # the amount's currency is not the name's ("BACON   RM 4.90", "EXHAM R14.00")
    name = _trim(_strip_box(line[start:end]), _NAME_TRIM)
    if not has_word(name) or _only_times(fold(name)):
        return None, qty
    return name, qty


def _before_mark(text, end):
    """Where a name ends that the unit price at end follows: before the mark between them
    ("Hefe à 3,30", "Latte @ 3.50"), if there is one."""
    k = end
    while k > 0 and text[k - 1] == " ":
        k -= 1
    if k and text[k - 1] in PRICE_MARKS and (k < 2 or text[k - 2] == " "):
        return k - 1
    return end


def _opening_count(text, glued):
    """(count as a scan, where the name starts) for a text opening with a count of 1-3 digits
    and a space ("2 SAM DA SOO") or, glued, its "x" and a space ("3x Hefe-Weissbier", "2X
    COPERTO"), before words; else None."""
    k = len(text) - len(text.lstrip(" "))
    i = k
    while k < len(text) and _is_digit(text[k]):
        k += 1
    if glued:
        if text[k:k + 1] not in ("x", "X", "×"):
            return None
        k += 1
    if not 0 < k - i - glued <= 3 or text[k:k + 1] != " " or not has_word(text[k + 1:]):
        return None
    count = int(text[i:k - glued])
    return ((i, k - glued, count, 0, 0), k + 1) if 0 < count < _QTY_MAX else None


def _only_times(text):
    """'1x', 'x1', '2 x', 'kg @ 1,79 €/kg': a quantity or weight mark, not a name."""
    for word in text.split():
        # no str.strip() with "×": MicroPython strips bytes, cutting UTF-8 characters
        kept = "".join(c for c in word if c not in "x×*@0123456789.,")
        for part in kept.split("/"):
            if part and part not in UNITS and currency(part) is None:
                return False
    return True


# Trimmed from both ends of an item name: column bars and currency signs before the amount.
_NAME_TRIM = " \t|" + "".join(sym for sym, code in CURRENCIES if not has_word(sym))


def _trim(text, chars):
    """text.strip(chars) by characters: MicroPython's strip() works on bytes, so a non-ASCII
    sign among chars (€, ¥) would cut a UTF-8 character in two (UnicodeError)."""
    i, j = 0, len(text)
    while i < j and text[i] in chars:
        i += 1
    while j > i and text[j - 1] in chars:
        j -= 1
    return text[i:j]


def _strip_box(name):
    """Box-drawing characters (table frames) as spaces, ends stripped."""
    return "".join(" " if 0x2500 <= ord(c) <= 0x257F else c for c in name).strip()


def _trailing_numbers(text, nums):
    """The numbers that end a folded line, with only spaces, currency, 'x' or units between.

    Returns (numbers, xs): xs[k] is True when a multiplication sign stands before numbers[k].
    A tax code (1-3 letters) or currency after the last number is allowed ("10,47 B", "7,60
    €", "5.20 SR"), a one-letter code glued to cents even if it is a unit's ("83.94G").
    """
    if not nums:
        return (), ()
    last = nums[-1]
    for word in text[last[1]:].split():
        if not (word.startswith("/") or currency(word) or word in "*|" or
                (len(word) <= 3 and _is_letter(word[0]) and word != "x"
                 and (word not in UNITS or (len(word) == 1 and last[3] == 2
                                            and text.startswith(word, last[1]))))):
            return (), ()   # a tax code column is allowed: "10,47 B", "5.20 SR", "3.55 ZRL"
    group = [last]
    xs = [False]
    for k in range(len(nums) - 2, -1, -1):
        gap = text[nums[k][1]:group[0][0]].split()
        times = False
        ok = True
        for word in gap:
            if word in TIMES:
                times = True
            elif not (word in UNITS or currency(word) or word == "|" or word.startswith("/")):
                ok = False
                break
        if not ok:
            break
        xs[0] = times
        group.insert(0, nums[k])
        xs.insert(0, False)
    # xs[k] refers to the sign between group[k - 1] and group[k]
    return group, xs


def _is_code_line(text, nums):
    """'Ref. 8412179068644': a short label and a long number, no amount (an item's SKU line)."""
    for num in nums:
        if num[3] == 2:
            return False
    letters = 0
    for c in text:
        if _is_letter(c) or _is_cjk(c):
            letters += 1
    if letters > 4:
        return False
    for c in range(len(text) - 5):
        if text[c:c + 6].isdigit():
            return True
    return False


def decimal(s):
    """'-10.47' (an amount string from fmt) -> number tuple as numbers() gives it."""
    neg = s.startswith("-")
    head, _, frac = s.lstrip("-").partition(".")
    mant = int(head + frac)
    return (0, 0, -mant if neg else mant, len(frac), 0)


def add_amounts(amounts):
    """Sum of amount strings, kept exact: ('10.95', '-1.05') -> '9.90'."""
    total = 0
    scale = 0
    for a in amounts:
        num = decimal(a)
        if num[3] > scale:
            total *= 10 ** (num[3] - scale)
            scale = num[3]
        total += num[2] * 10 ** (scale - num[3])
    return fmt(total, scale)


def _net_of_change(payments, total, change):
    """Cash handed over printed as the cash payment: take the change off it if that makes the
    payments add up to the total."""
    paid = add_amounts([p["amount"] for p in payments]) if payments else None
    if paid is None or paid == total:
        return payments
    if add_amounts((paid, "-" + change)) != total:
        return payments
    out = []
    done = False
    for p in payments:
        if p["type"] == "cash" and not done:
            p = {"type": "cash", "amount": add_amounts((p["amount"], "-" + change))}
            done = True
        out.append(p)
    return out if done else payments


def extract(lines):
    """The fields of one receipt from its text lines (None entries are skipped)."""
    return Extractor(lines).run(lines).result()
