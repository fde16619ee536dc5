"""Field extraction on the board (fields.py); runs under pytest and under MicroPython."""
from tilltap_fw.fields import extract, fmt, fold, is_money, labels, mask_cards, numbers

GERMAN = [
    "Bäckerei Schäfer",
    "Hauptstraße 17",
    "Beleg-Nr. 65865           19.01.2026 09:19",
    "Es bediente Sie: Sabine",
    "==========================================",
    "3 x Heiße Schokolade                 10,50",
    "Franzbrötchen                         1,90",
    "Gouda jung 400g                      10,47 B",
    "  3 x 3,49",
    "Süßkartoffeln                         3,56 B",
    "  1,020 kg x 3,49/kg",
    "==========================================",
    "Zwischensumme                        26,43",
    "enth. MwSt 7%                         1,73",
    "Summe                              26,43 €",
    "EC-Karte                             20,00",
    "Bar                                  10,00",
    "Gegeben                              10,00",
    "Rückgeld                              3,57",
    "PAYBACK-Karte: 9860960575",
    "TSE-Start: 2026-01-19T09:19:00",
]

CHINESE = [
    "华联超市",
    "单号：HL8369007128",
    "日期：2026年1月24日 07:35",
    "商品/条码               数量      单价      金额",
    "五花肉",
    "6901375095032          1.272     29.80     37.91",
    "可口可乐330ml",
    "6906035586905              2      3.00      6.00",
    "小计                                       43.91",
    "合计                                     ￥43.91",
    "微信支付                                   43.91",
    "会员号：8719422719",
]


def test_german_receipt():
    f = extract(GERMAN)
    assert f["total"] == "26.43"
    assert f["subtotal"] == "26.43"
    assert f["currency"] == "EUR"
    assert f["receipt_no"] == "65865"
    assert f["datetime"] == "2026-01-19T09:19:00"
    assert f["member_id"] == "9860960575"
    assert f["payments"] == [{"type": "card", "amount": "20.00"},
                             {"type": "cash", "amount": "6.43"}]
    assert f["items"] == [
        {"name": "Heiße Schokolade", "qty": "3", "unit_price": "3.50", "amount": "10.50"},
        {"name": "Franzbrötchen", "qty": "1", "unit_price": "1.90", "amount": "1.90"},
        {"name": "Gouda jung 400g", "qty": "3", "unit_price": "3.49", "amount": "10.47"},
        {"name": "Süßkartoffeln", "qty": "1.020", "unit_price": "3.49", "amount": "3.56"},
    ]


def test_chinese_columns_take_the_name_from_the_line_above():
    f = extract(CHINESE)
    assert f["total"] == "43.91"
    assert f["currency"] == "CNY"
    assert f["receipt_no"] == "HL8369007128"
    assert f["datetime"] == "2026-01-24T07:35:00"
    assert f["member_id"] == "8719422719"
    assert f["payments"] == [{"type": "wechat", "amount": "43.91"}]
    assert f["items"] == [
        {"name": "五花肉", "qty": "1.272", "unit_price": "29.80", "amount": "37.91"},
        {"name": "可口可乐330ml", "qty": "2", "unit_price": "3.00", "amount": "6.00"},
    ]


def test_undecodable_lines_are_skipped():
    f = extract([None, "Latte 12oz          4.75", None, "TOTAL              $4.75"])
    assert f["total"] == "4.75"
    assert f["items"] == [{"name": "Latte 12oz", "qty": "1", "unit_price": "4.75",
                           "amount": "4.75"}]


def test_nothing_found_is_none():
    f = extract(["Hello world!", "", None])
    assert f == {"total": None, "subtotal": None, "currency": None, "receipt_no": None,
                 "datetime": None, "member_id": None, "payments": [], "items": []}


def test_labels_are_leftmost_longest_whole_words():
    def fields_of(line):
        return [(h[2], h[3]) for h in labels(fold(line))]
    assert fields_of("Sous-total 7,60") == [("subtotal", "")]
    assert fields_of("Zwischensumme 7,60") == [("subtotal", "")]
    assert fields_of("Cash tendered 20.00") == [("tendered", "")]
    assert fields_of("Espèces reçues 20,00") == [("tendered", "")]
    assert fields_of("ESPÈCES 20,00") == [("payment", "cash")]  # capitals folded on the board too
    assert fields_of("Barcode scanner") == []
    assert fields_of("现金   242.00   实收：246.00") == [("payment", "cash"), ("tendered", "")]


def test_a_total_needs_its_amount_beside_it():
    assert extract(["Total savings          3.00"])["total"] is None
    assert extract(["TOTAL (incl. VAT)     12.00"])["total"] == "12.00"
    assert extract(["SUMME EUR               9,42"])["total"] == "9.42"
    # amount due beats a plain total; the amount may be on the line below a big label
    assert extract(["合计：   1      242.00", "应收：   240.00"])["total"] == "240.00"
    assert extract(["TOTAL", "     $41.49"])["total"] == "41.49"


def test_cash_handed_over_becomes_the_amount_paid():
    f = extract(["TOTAL  10.95", "CASH   20.00", "CHANGE  9.05"])
    assert f["payments"] == [{"type": "cash", "amount": "10.95"}]


def test_total_from_tendered_and_change_when_no_total_is_printed():
    f = extract(["商品名称    单价    数量    小计", "肥皂   20   4   80", "实收：80   找零：0"])
    assert f["total"] == "80"
    assert f["items"] == [{"name": "肥皂", "qty": "4", "unit_price": "20", "amount": "80"}]


def test_numbers_skip_codes_dates_and_glued_units():
    def values(line, comma=False):
        return [fmt(n[2], n[3]) for n in numbers(fold(line), comma)]
    assert values("Mineralwasser 1,5L  0,39 A", True) == ["0.39"]
    assert values("4821-03-825979  2026-05-02 17:06  12h44") == []
    assert values("Korean 5,100   1   5,100") == ["5100", "1", "5100"]
    assert values("Rabatt 10%   -1,05", True) == ["10", "-1.05"]
    assert values("1,272 kg x 2,99/kg", True) == ["1.272", "2.99"]
    assert values("1.234,50 EUR", True) == ["1234.50"]
    # a whole number with leading zeros is a number, not an amount; cents without a leading
    # zero are ("TAX  .00")
    padded = numbers(fold("收银：1001(1001) 牌号：0001"), False)
    assert [is_money(n, False) for n in padded] == [True, True, False]
    assert values("TAX   .00") == ["0.00"]
    assert _items(["01 x Latte   3.50", "TOTAL   3.50"]) == [("Latte", "1", "3.50", "3.50")]


def test_dates():
    def when(lines):
        return extract(lines)["datetime"]
    assert when(["05/21/2026 8:45 PM", "TOTAL  $4.00"]) == "2026-05-21T20:45:00"
    assert when(["02/08/2026 11:57", "TOTAL  4,00 €"]) == "2026-08-02T11:57:00"
    assert when(["10/02/2026 12h44"]) == "2026-02-10T12:44:00"
    assert when(["03/29/12  14:33:30  TR#: 011534"]) == "2012-03-29T14:33:30"
    assert when(["Monday 6th of April 2015 02:56:25 PM"]) == "2015-04-06T14:56:25"
    assert when([" 27 Oct 2023 @ 15:35:41EDT"]) == "2023-10-27T15:35:41"
    assert when(["日期：2016-03-25", "单号：1"]) == "2016-03-25"
    assert when(["Datum: 28.10.2026", "Zeit: 12:11:23"]) == "2026-10-28T12:11:23"


def test_identifiers():
    assert extract(["Ticket n° 55818"])["receipt_no"] == "55818"
    assert extract(["Order #3105"])["receipt_no"] == "3105"
    assert extract(["Factura simplificada: T001-696062"])["receipt_no"] == "T001-696062"
    assert extract(["Keep your receipt for refunds"])["receipt_no"] is None
    assert extract(["Socio nº 39662992"])["member_id"] == "39662992"
    assert extract(["Carte fidélité n° 1234567"])["member_id"] == "1234567"
    assert extract(["Loyalty reward 10%     -0.95"])["member_id"] is None


def test_mask_cards():
    assert mask_cards("VISA 4111 1111 1111 1111") == "VISA **** **** **** 1111"
    assert mask_cards("Card:4012888888881881 ok") == "Card:************1881 ok"
    assert mask_cards("AMEX 3782-822463-10005") == "AMEX ****-******-*0005"
    # not Luhn-valid, too short, or an EAN-13 barcode: unchanged
    assert mask_cards("4111 1111 1111 1112") == "4111 1111 1111 1112"
    assert mask_cards("Tel. 04 91 12 34 56") == "Tel. 04 91 12 34 56"
    assert mask_cards("6906035586905   2   3.00") == "6906035586905   2   3.00"
    assert mask_cards("单号：201510211832171490001") == "单号：201510211832171490001"
    assert mask_cards(None) is None
    assert mask_cards("") == ""


def test_mask_cards_masks_the_schemes_plausible_pans():
    """Issuer ranges and lengths of the major schemes, Luhn-valid: masked wherever printed."""
    assert mask_cards("MASTERCARD 2221000000000009") == "MASTERCARD ************0009"
    assert mask_cards("JCB 3530111333300000") == "JCB ************0000"
    assert mask_cards("UNIONPAY 6200000000000005") == "UNIONPAY ************0005"
    assert mask_cards("Discover 6011 1111 1111 1117") == "Discover **** **** **** 1117"
    assert mask_cards("DINERS 36700102000000") == "DINERS **********0000"
    assert mask_cards("4012888888881881") == "************1881"


def test_mask_cards_keeps_numbers_that_are_no_card():
    """Luhn alone is not enough: receipt numbers the receipt-gap report needs, SIRET numbers
    (Luhn-valid by design) and EAN-13 item codes survive."""
    # Luhn-valid, but no scheme starts with 2018 or has 14 digits there
    assert mask_cards("N. 20181228120030") == "N. 20181228120030"
    # in the Diners range and Luhn-valid, but labelled as SIRET / receipt / invoice number
    assert mask_cards("SIRET 36280000000030") == "SIRET 36280000000030"
    assert mask_cards("SIRET : 362 800 000 00030") == "SIRET : 362 800 000 00030"
    assert mask_cards("Receipt No: 4012888888881881") == "Receipt No: 4012888888881881"
    assert mask_cards("INVOICE 4012888888881881") == "INVOICE 4012888888881881"
    # a valid EAN-13 that is Luhn-valid and starts with 4 (a Visa prefix): a barcode
    assert mask_cards("4006381333924  Milch 3,5%   1,19") == "4006381333924  Milch 3,5%   1,19"
    assert mask_cards("EAN 4006381333924") == "EAN 4006381333924"


def _items(lines):
    return [(i["name"], i["qty"], i["unit_price"], i["amount"]) for i in extract(lines)["items"]]


def test_amounts_without_cents_and_thousands_separators():
    """Rupiah print no cents: "48.000" and "580,965" group thousands; cents and groups
    together are read by their last separator."""
    got = extract(["BASO BIHUN          1 43.636       43.636", "TOTAL        43.636",
                   "TAX 10.00 %         4.364", "GRAND TOTAL         48.000",
                   "TUNAI               50.000", "KEMBALI              2.000"])
    assert got["total"] == "48000" and got["currency"] == "IDR"
    assert _items(["Coffee   1,234.50", "TOTAL   1,234.50"]) == [("Coffee", "1", "1234.50",
                                                                 "1234.50")]
    assert extract(["SUMME      8.500,00", "BAR   10.000,00"])["total"] == "8500.00"


def test_currency_signs_and_codes_glued_to_amounts():
    assert extract(["TOTAL  RM 14.10", "CASH RM20.00"])["total"] == "14.10"
    assert extract(["Summe:     Eur154,40"])["total"] == "154.40"
    got = extract(["Total   Rp 29000.00"])
    assert (got["total"], got["currency"]) == ("29000.00", "IDR")
    assert extract(["TOTAL    AU$77.43"])["currency"] == "AUD"
    assert extract(["ROUNDING ADJUSTMENT   -RM 0.02", "TOTAL RM 5.00"])["total"] == "5.00"
    assert [n[2:4] for n in numbers(fold("Refund   -$8.94  -RM 0.02"), False)] == \
        [(-894, 2), (-2, 2)]
    assert [n[2:4] for n in numbers(fold("RM35.40 Eur154,40 CODE12 x6"), True)] == \
        [(3540, 2), (15440, 2)]


def test_total_labels_of_real_shops():
    """The amount due, not the subtotal, a payment, the change or a tax summary's TOTAL row."""
    assert extract(["TOTAL SALES (EXCLUDING GST) :  31.03", "TOTAL GST :  1.65",
                    "TOTAL SALES (INCLUSIVE OF GST) :  32.70", "CASH :  40.00",
                    "CHANGE :  7.30", "GST SUMMARY", "TOTAL :  31.03   0.00"])["total"] == "32.70"
    assert extract(["TOTAL INCL GST@6%     64.13", "CASH   100.00"])["total"] == "64.13"
    assert extract(["TOTAL  RM 33.92", "ROUNDING ADJUSTMENT  -RM 0.02",
                    "TOTAL ROUNDED  RM 33.90", "CASH  RM 50.00"])["total"] == "33.90"
    # a total printed before a rounding line: rounded to the 5-sen cash step
    assert extract(["TOTAL SALES (INCLUSIVE GST) RM  45.34", "ROUNDING RM  0.01",
                    "CREDIT RM  45.35"])["total"] == "45.35"
    for label in ("TOTAL PAYABLE", "NET TOTAL", "NETT", "AMT DUE", "BALANCE DUE", "TL",
                  "GRANDTOTAL", "AmountDue:", "TOTALEEURO"):
        assert extract(["SUBTOTAL   9.00", "%s    9.50" % label, "CASH   10.00",
                        "CHANGE   0.50"])["total"] == "9.50", label
    assert extract(["TOTAL   20.00", "VISA   -20.00"])["total"] == "20.00"
    assert extract(["VISA   -20.00"])["total"] == "20.00"   # no negative totals from payments

    # spaces lost: "TOTAL INCL" glued is the total, "INCLUDED IN TOTAL" and "TOTAL INCLUDES"
    # glued name the tax
    assert extract(["TOTALINCL.GST@6%    RM42.90", "CASH    RM50.00", "CHANGE    RM7.10",
                    "GST@6%INCLUDEDINTOTAL    RM2.43"])["total"] == "42.90"
    assert extract(["Eat-InTotal(inclTax)    11.98", "TOTALINCLUDES6%GovtTaxOF    0.68"])[
        "total"] == "11.98"
    assert extract(["DINEINTOTAL    9.50", "VISA    9.50"])["total"] == "9.50"
    # a currency code glued to a label: "CHANGE RM", "ROUNDING RM" with the space lost
    got = extract(["TOTALSALES(INCLUSIVEGST)RM    52.08", "ROUNDINGADJUSTMENTRM    .02",
                   "CASHRM    60.00", "CHANGERM    7.90"])
    assert (got["total"], got["payments"]) == ("52.10", [{"type": "cash", "amount": "52.10"}])
    for label in ("BAL DUE", "TE BETALEN", "Yhteensä", "RAZEM", "ИТОГО", "TTL", "UKUPNO",
                  "합계", "TỔNG CỘNG", "KOPĀ", "IŠ VISO", "ΣΥΝΟΛΟ"):
        assert extract(["SUBTOTAL   9.00", "%s    9.50" % label, "CASH   10.00"])["total"] \
            == "9.50", label
    # cash and change in the shop's language: the total is what was paid less the change
    for cash, change in (("GOTÓWKA", "RESZTA"), ("Käteinen", "Vaihtoraha"), ("Dinheiro", "Troco"),
                         ("現金", "お釣り"), ("TIỀN MẶT", "TIỀN THỪA"), ("HOTOVĚ", "VRÁCENO")):
        got = extract(["Kawa   4.50", "Bułka   5.00", "%s   20.00" % cash, "%s   10.50" % change])
        assert (got["total"], got["payments"]) == ("9.50", [{"type": "cash", "amount": "9.50"}]), \
            cash


def test_totals_printed_in_unusual_ways():
    """Cents without a leading zero, totals without cents, glued signs, weak labels, no label."""
    assert extract(["SUBTOTAL   .00", "TAX   .64", "TOTAL   .64", "CASH   1.00",
                    "CHANGE   .36"])["total"] == "0.64"
    # a whole or one-decimal total on a receipt with cents; the stronger label still wins
    assert extract(["Sub Total:  1450.00", "Net Total:  1450.00", "GST 5%:  72.50",
                    "Grand Total:  1523"])["total"] == "1523"
    assert extract(["Dal Makhani   1   245.0", "SubTotal   245", "Gst5%   12.25",
                    "GrandTotal   257.3"])["total"] == "257.3"
    assert extract(["TOTAL   12.00", "TOTAL   3", "CASH   20.00"])["total"] == "12.00"
    assert extract(["Total:   R145.20", "Cash   R150.00"])["total"] == "145.20"
    assert extract(["Soup   1   12.00", "GROSSAMT:   12.00"])["total"] == "12.00"
    assert extract(["GrossAmount:   80.00", "ServiceTax 15%:   12.00",
                    "NetAmount:   92.00"])["total"] == "92.00"
    # no total label: the amount that adds up the subtotal and the charges after it
    assert extract(["SUBTOTAL   250,000", "SERVICE   12,500", "Tax 10%   26,250",
                    "GT   288,750"])["total"] == "288750"
    # a rate on the line makes a word that also means "change" a tax ("Resto" is both)
    assert extract(["Net Total   20.000", "P.Resto 10%   2.000", "Total   22.000",
                    "CASH   22.000"])["total"] == "22000"
    assert extract(["Nimetus   Kogus   Hind   Summa", "Tee   1   3.00   3.00",
                    "KOKKU:   3.00"])["items"][0]["name"] == "Tee"
    # one more word after "total" or a count of items: still the total, unless the word makes
    # it another figure; the label alone with its amount on the next line, or after the amount
    for label in ("Total Charges", "Totale complessivo", "TOTAL 2 ITEMS"):
        assert extract(["Coffee   4.50", "Bagel   4.50", "%s   9.50" % label,
                        "CASH   20.00"])["total"] == "9.50", label
    assert extract(["TOTAL   9.50", "Total Savings   1.20", "CASH   20.00"])["total"] == "9.50"
    assert extract(["Coffee   4.50", "TOTAL:", "$4.50", "CASH   20.00"])["total"] == "4.50"
    assert extract(["Coffee   4.50", "4.50   TOTAL", "CASH   20.00"])["total"] == "4.50"
    assert extract(["TOTAL   4.50", "CASH   4.50", "NET(RM)  GST(RM)  TOTAL(RM)",
                    "4.25  0.25  4.50", "CLOSING BALANCE   2307"])["total"] == "4.50"
    # a label with a letter misread, when nothing else says total; a misread word no label
    assert extract(["Subtoal   8.00", "Tax   0.64", "TOTAI   8.64", "VISA   8.64"])["total"] \
        == "8.64"
    assert extract(["SUBTOTAL   8.00", "Tax   0.64", "TOTAL   8.64", "Tonal   3.00"])["total"] \
        == "8.64"
    assert labels(fold("Metal   3.00")) == []
    # nothing labels, pays or adds up the total: the largest amount printed with the currency,
    # in the receipt's own decimals; amounts without a sign are no guess
    assert extract(["PUMP# 18", "PRODUCT: UNLEADED", "GALLONS: 6.28", "FUELSALE  $16.24",
                    "REWARDS  $0.50"])["total"] == "16.24"
    assert extract(["LANE 6", "FARE ID  50000", "TOLLPAID:  $5.00"])["total"] == "5.00"
    assert extract(["PUMP# 18", "GALLONS: 6.28", "FUELSALE  16.24"])["total"] is None
    # a payment label with the spaces lost
    assert extract(["CREDITCARD   15.20"])["payments"] == [{"type": "card", "amount": "15.20"}]
    # the total's label left out (an unreadable box): the amount alone on its line is the total
    # when the payment less the change comes to it; a tax summary's "TOTAL" row after the
    # payment is not
    lost = ["SOCKS   1 X 9.50   9.50", "BELT   1 X 22.90   22.90", "PVC MAN   1 X 10.50   10.50",
            "RM 42.90", "CASH   RM 50.00", "CHANGE   RM 7.10",
            "GST SUMMARY   AMOUNT   TAX", "TOTAL   40.47   2.43"]
    assert extract(lost)["total"] == "42.90"
    assert extract(lost[:3] + ["RM 41.00"] + lost[4:])["total"] != "41.00"
    assert extract(["NASI LEMAK   2.50", "TEH TARIK   1.27", "4.00", "PAID   4.00",
                    "CHANGE   0.00", "INCLUSIVE 6% GST   0.23"])["total"] == "4.00"
    # a total's row split in two: its amount above the label (also as the last line), and a
    # count before the label is no amount ("9  Total" / "259.298")
    split = ["NASI GORENG   2   50,000", "ES TEH   1   9,000", "64,900", "TOTAL", "CASH   100,000",
             "THANK YOU"]
    assert extract(split)["total"] == "64900"
    assert [i["name"] for i in extract(split)["items"]] == ["NASI GORENG", "ES TEH"]
    assert extract(split[:4])["total"] == "64900"
    assert extract(["NASI GORENG   2   50,000", "ES TEH   1   9,000", "2  Total", "59,000",
                    "CASH   100,000"])["total"] == "59000"
    # an item's price under its name is not a total's amount, nor is a part payment that
    # equals an item's price the total when a total label prints one
    assert extract(["Latte", "4.50", "Tea", "3.00", "TOTAL", "Visa 7.50"])["total"] == "7.50"
    assert extract(["Latte", "4.50", "Cake", "3.00", "TOTAL 7.50", "GIFT CARD 3.00"])["total"] \
        == "7.50"
    # the named items' sum alone on a line is their total, not an item; a nameless amount that
    # happens to be the sum of nameless ones before it is an item
    summed = extract(["WRAP   6.95", "SALMON   6.25", "CHIPS   1.25", "                 14.45",
                      "REQUESTED BILL", "Tables: 11"])
    assert summed["total"] == "14.45"
    assert [i["name"] for i in summed["items"]] == ["WRAP", "SALMON", "CHIPS"]
    nameless = extract(["1   2.00", "1   2.50", "1   4.50", "1 FRIED RICE   11.00",
                        "SUBTOTAL   20.00", "TOTAL:   20.00"])
    assert [i["amount"] for i in nameless["items"]] == ["2.00", "2.50", "4.50", "11.00"]


def test_dates_of_real_shops():
    for line, want in (("28 MAR 18 10:02", "2018-03-28"), ("24-MAR-2018", "2018-03-24"),
                       ("02/JAN/2017", "2017-01-02"), ("Dec26'07 07:26PM", "2007-12-26"),
                       ("Mar05,2017", "2017-03-05"), ("23Nov17", "2017-11-23"),
                       ("INVOICE 20180428", "2018-04-28"), ("06/08-2013", "2013-08-06")):
        assert (extract([line])["datetime"] or "")[:10] == want, line
    # day first on a ringgit receipt, though its time has PM
    assert extract(["12/03/2018 10:15 PM", "TOTAL RM 5.00"])["datetime"] == \
        "2018-03-12T22:15:00"
    for line in ("TEL: 03-51213881", "INV 20180012", "ASIA MART 12 15"):
        assert extract([line])["datetime"] is None, line


def test_item_names_are_the_printed_names_alone():
    # a count glued to its "x", the unit price after its mark, the amount's currency: not the
    # name's
    assert _items(["3x Hefe-Weissbier   à 3,30     9,90", "1x Vegetarische Varia   8,50",
                   "Summe   18,40"]) == [("Hefe-Weissbier", "3", "3.30", "9.90"),
                                        ("Vegetarische Varia", "1", "8.50", "8.50")]
    assert _items(["2 x VITAMIN A   5.00   10.00", "3 Latte @ 3.50   10.50",
                   "TOTAL   18.50"]) == [("VITAMIN A", "2", "5.00", "10.00"),
                                        ("Latte", "3", "3.50", "10.50")]
    # a count glued to its "x" without a unit price that multiplies out: only where such counts
    # open most names ("3X LARGE SHIRT" among others is a size)
    assert _items(["2X   COPERTO   4.00", "1x ChknTeriRoll   6.50", "TOTAL   10.50"]) == [
        ("COPERTO", "2", "2.00", "4.00"), ("ChknTeriRoll", "1", "6.50", "6.50")]
    assert _items(["3X LARGE SHIRT   19.99", "SOCKS   4.00", "CAP   9.00", "TOTAL   32.99"])[0] \
        == ("3X LARGE SHIRT", "1", "19.99", "19.99")
    assert _items(["BACON          RM 4.90", "EXHAM            R14.00", "TOTAL   RM 18.90"]) \
        == [("BACON", "1", "4.90", "4.90"), ("EXHAM", "1", "14.00", "14.00")]
    # counts opening most names, where the others' counts were read otherwise (multiplied out)
    counted = _items(["1   UDG GR TLUR ASIN   165,000", "1   SAPO TH SEAFOOD   129,000",
                      "2   CHINESE TE   14,000   28,000", "8   NASI PUTIH   10,000   80,000",
                      "3   HOT TEA   12,000   36,000", "FOOD   294,000"])
    assert [i[:2] for i in counted] == [
        ("UDG GR TLUR ASIN", "1"), ("SAPO TH SEAFOOD", "1"), ("CHINESE TE", "2"),
        ("NASI PUTIH", "8"), ("HOT TEA", "3"), ("FOOD", "1")]


def test_item_layouts_of_real_shops():
    # price line before the name; quantity line under the name
    assert _items(["1x  22.000        22.000", "Ice t grentea", "TOTAL    22.000"]) == \
        [("Ice t grentea", "1", "22000", "22000")]
    assert _items(["1069- ROTI KEJU COKLAT", "   8.500,00    x1    8.500,00",
                   "Total.     8.500,00"]) == [("1069- ROTI KEJU COKLAT", "1", "8500.00",
                                               "8500.00")]
    # modifier lines, a tax-code column, weighed items on two lines
    assert _items(["ICED LATTE      5.50", "  LESS ICE", "TOTAL  5.50"]) == \
        [("ICED LATTE", "1", "5.50", "5.50")]
    assert _items(["MILO  4.50 SR", "TOTAL  4.50"]) == [("MILO", "1", "4.50", "4.50")]
    assert _items(["Naranjas", "2.699 kg @ 1,79 €/kg   4,83 €", "TOTAL  4,83 €"]) == \
        [("Naranjas", "2.699", "1.79", "4.83")]
    # a name ending in a character whose UTF-8 shares a byte with "×" (MicroPython strips bytes)
    assert _items(["Pienė    2.50"]) == [("Pienė", "1", "2.50", "2.50")]
    # ... or with a currency sign's ("ã" ends in 0xA3, as "£" does): trimmed by characters
    assert _items(["Maçã    2.50"]) == [("Maçã", "1", "2.50", "2.50")]
    # names ending in numbers are not quantities
    assert _items(["Guide Michelin 2024     24.90", "Band-Aids Assorted 40     3.99",
                   "维达抽纸 3包     12.50"]) == [
        ("Guide Michelin 2024", "1", "24.90", "24.90"),
        ("Band-Aids Assorted 40", "1", "3.99", "3.99"), ("维达抽纸 3包", "1", "12.50", "12.50")]
    # a payment word inside an item's name is part of the name ("BAR" is cash in German)
    assert _items(["COKLAT BAR   8.00", "SAFETY PIN   2.00", "SUBTOTAL   10.00"]) == [
        ("COKLAT BAR", "1", "8.00", "8.00"), ("SAFETY PIN", "1", "2.00", "2.00")]
    assert extract(["Brot   2,50", "Bar   2,50"])["payments"] == [
        {"type": "cash", "amount": "2.50"}]
    # a count in a column of its own; a name going on under its line from the same column
    # (a modifier is indented or marked)
    assert _items(["   GONG GIBAB        2      40,000", "   HAEMUL DENJANG    1      85,000",
                   "   JJIGAE", "   BO SSAM           1     320,000", "      =*MEDIUM*=",
                   "   TOTAL                    445,000"]) == [
        ("GONG GIBAB", "2", "20000", "40000"), ("HAEMUL DENJANG JJIGAE", "1", "85000", "85000"),
        ("BO SSAM", "1", "320000", "320000")]
    # a count before the name that multiplies out with the unit price; "2x" opening a line
    # is a count, "8x" after a name is the name's
    assert _items(["8   NASI PUTIH     10,000     80,000", "Es Teh Manis",
                   "2x      5.000      10.000", "Tissue 8x      3.000", "TOTAL      93.000"]) == [
        ("NASI PUTIH", "8", "10000", "80000"), ("Es Teh Manis", "2", "5000", "10000"),
        ("Tissue 8x", "1", "3000", "3000")]
    # a tax code glued after the amount, also after cents without a leading zero
    assert _items(["ZAPPS CAJUN 2Z   .99B", "CD GLORIA TREVI   83.94G", "SUBTOTAL   84.93"]) == [
        ("ZAPPS CAJUN 2Z", "1", "0.99", "0.99"), ("CD GLORIA TREVI", "1", "83.94", "83.94")]
    # a negative line among the items is one (a coupon, an offer); a labelled one is not
    assert _items(["Platter for 2   12.00", "*Tableware Offer   -0.24", "Discount   -1.00",
                   "TOTAL   10.76"]) == [("Platter for 2", "1", "12.00", "12.00"),
                                        ("*Tableware Offer", "1", "-0.24", "-0.24")]
    # counts opening most item names are quantities; one name opening with a number is a name
    assert _items(["2 SAM DA SOO WATER       32,000", "1 PAIN AU CHOCOLAT   11,000",
                   "TOTAL   43,000"]) == [("SAM DA SOO WATER", "2", "16000", "32000"),
                                         ("PAIN AU CHOCOLAT", "1", "11000", "11000")]
    assert _items(["3 Musketeers   1.50", "Mars Bar   1.20", "Snickers   1.30",
                   "TOTAL   4.00"])[0] == ("3 Musketeers", "1", "1.50", "1.50")
    # a line under an item from its name's column is not its name's end when the next amount
    # takes it, nor when it is a label; a nameless negative amount is no item
    assert _items(["SHOP", "MILK 2%   3.49", "BREAD", "  2 @ 1.50   3.00", "TOTAL 6.49"]) == [
        ("MILK 2%", "1", "3.49", "3.49"), ("BREAD", "2", "1.50", "3.00")]
    assert _items(["LATTE   4.50", "Cashier: Anna", "TOTAL   4.50"])[0][0] == "LATTE"
    # (the indent counted the same on the board and the server: U+3000 is one column)
    assert _items(["  LATTE   4.50", "\u3000\u3000\u3000LESS ICE", "TOTAL   4.50"])[0][0] == \
        "LATTE"
    assert _items(["STORE", "MILK   3.49", "   -0.50", "BREAD", "  2 @ 1.00   2.00",
                   "TOTAL   4.99"]) == [("MILK", "1", "3.49", "3.49"),
                                       ("BREAD", "2", "1.00", "2.00")]
    # on a receipt with cents a number before the amount is the name's; so is "3X" before words
    assert _items(["PEPSI  12   5.99", "3X LARGE SHIRT   19.99", "TOTAL   25.98"]) == [
        ("PEPSI  12", "1", "5.99", "5.99"), ("3X LARGE SHIRT", "1", "19.99", "19.99")]
    # the count column is read once, however often the fields are asked
    from tilltap_fw.fields import Extractor
    lines = ["STORE", "1 2 PC CHICKEN   5.00", "1 3 PC CHICKEN   7.00", "TOTAL   12.00"]
    extractor = Extractor(lines).run(lines)
    assert extractor.result()["items"] == extractor.result()["items"]
    # a name wrapped onto a second line above its amount; the header above the first item is
    # no part of its name
    assert _items(["CORNER SHOP", "Welcome", "BUDS BABY OIL", "12.00", "BUDS CALMING CREAM",
                   "30ML (TOILETRIES)", "20.00", "TOTAL   32.00"]) == [
        ("BUDS BABY OIL", "1", "12.00", "12.00"),
        ("BUDS CALMING CREAM 30ML (TOILETRIES)", "1", "20.00", "20.00")]
    # ... unless the second line is the end of a word the printer cut
    assert _items(["Chicken Mushroom Puf", "f", "2x      10.000      20.000",
                   "Total      20.000"]) == [("Chicken Mushroom Puf f", "2", "10000", "20000")]


def test_currency_from_the_store_country_when_none_is_printed():
    assert extract(["MR D.I.Y. (M) SDN BHD", "TOTAL   9.00"])["currency"] == "MYR"
    assert extract(["Nasi goreng   25,000", "Total   25,000"])["currency"] == "IDR"
    assert extract(["Coffee   3.50", "Total   3.50"])["currency"] is None
    # a "$" alone is what POS software prints for any currency: the country's words decide
    assert extract(["UNIHAKKA INTERNATIONAL SDN BHD", "TOTAL AMOUNT: $8.20"])["currency"] == \
        "MYR"
    assert extract(["CVS/pharmacy", "TOTAL   $8.20"])["currency"] == "USD"
    assert extract(["UNIHAKKA SDN BHD", "TOTAL   US$8.20"])["currency"] == "USD"
    # no cents and a total in the thousands, even printed with ",00": rupiah
    assert extract(["ROTI KEJU   8.500,00", "Total   8.500,00"])["currency"] == "IDR"
    assert extract(["KING DEAL FISH   25000", "Total   25000"])["currency"] == "IDR"
    assert extract(["Coffee   3.00", "Total   3.00"])["currency"] is None
    assert extract(["ABC SDN BHD", "NASI LEMAK   12.00",
                    "TOTAL INCLUSIVE GST:   $12.00"])["currency"] == "MYR"
    assert extract(["GST REG # 12345", "TOTAL   $2.00"])["currency"] == "USD"
    assert extract(["NO 5, JALAN TUN RAZAK", "50400 KUALA LUMPUR", "DISC $.20   -1.00",
                    "TOTAL   12.00"])["currency"] == "MYR"
    assert extract(["SOFA   1200.00", "TOTAL   1200.00"])["currency"] is None
