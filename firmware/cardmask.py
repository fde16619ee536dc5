"""Card numbers masked before a receipt line is stored or sent (on the board and the server).

A card number is 13-19 digits, contiguous or in groups of 3-6 joined by one space or dash, that
starts like a card of a major scheme and has that scheme's length (_ISSUERS), passes the Luhn
check, is no valid EAN-13 and is not labelled as another number ("SIRET", "EAN", "Receipt No",
"Invoice", tax numbers: _NOT_CARD_LABELS); all its digits but the last four become '*'. Luhn alone
is not enough: SIRET numbers are Luhn-valid by design, and 14-digit receipt numbers pass it one
time in ten. Small on purpose: the board runs it on every line before spooling, without loading
the field extractor.
"""

# "low-high:lengths" per entry: the issuer ranges of the major schemes (first digits) and their
# lengths. Visa; Mastercard (51-55, 2221-2720); Amex; Discover; UnionPay; JCB; Diners Club;
# Maestro; Mir. One string, read only when a Luhn-valid run shows up: no per-entry objects on
# the board's heap, where every line passes through mask_cards().
_ISSUERS = ("4-4:13,16,19 51-55:16 2221-2720:16 34-34:15 37-37:15 6011-6011:16,19 "
            "644-649:16,19 65-65:16,19 62-62:16,17,18,19 3528-3589:16,17,18,19 36-36:14,15,16 "
            "300-305:14,16 38-39:14,16 50-50:16,17,18,19 56-58:16,17,18,19 67-67:16,17,18,19 "
            "2200-2204:16")
# Lower-case words that, just before a digit run, say it is no card number (one string, as
# above).
_NOT_CARD_LABELS = ("siret siren ean gtin upc barcode receipt rcpt invoice inv bill order "
                    "ticket beleg bon rechnung facture factura doc ref trans txn tva vat gst "
                    "tax nif cif uid abn tin steuer st.-nr ust-id plu sku art imei serial s/n "
                    "单号 流水号 税号")


_DIGITS = "0123456789"
_DIGIT_BYTES = tuple(d.encode() for d in _DIGITS)


def _digit_count(line):
    """Digits in a str or bytes line, counted in C."""
    n = 0
    for d in (_DIGITS if isinstance(line, str) else _DIGIT_BYTES):
        n += line.count(d)
    return n


def _is_digit(c):
    return "0" <= c <= "9"


def _luhn(digits):
    total = 0
    odd = False
    for k in range(len(digits) - 1, -1, -1):
        d = ord(digits[k]) - 48
        if odd:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        odd = not odd
    return total % 10 == 0


def _ean13(digits):
    total = 0
    for k in range(12):
        total += (ord(digits[k]) - 48) * (3 if k % 2 else 1)
    return (10 - total % 10) % 10 == ord(digits[12]) - 48


def _issued(digits):
    """True if the digits start like a card of a major scheme and have its length."""
    n = str(len(digits))
    for entry in _ISSUERS.split():
        span, lengths = entry.split(":")
        if n in lengths.split(","):
            low, high = span.split("-")
            if int(low) <= int(digits[:len(low)]) <= int(high):
                return True
    return False


def is_card_number(digits):
    """A plausible card number: a scheme's issuer range and length (ISSUERS), Luhn-valid, and
    no valid EAN-13 (13-digit cards are old Visa only; EAN-13 codes fill item lines)."""
    n = len(digits)
    if not 13 <= n <= 19 or not _issued(digits) or not _luhn(digits):
        return False
    return not (n == 13 and _ean13(digits))


def _labelled_other(line, start):
    """True if the words just before line[start] name another kind of number ("SIRET :",
    "EAN", "Receipt No."), so a Luhn-valid run there is no card."""
    before = line[max(0, start - 24):start].lower()
    words = before.replace(":", " ").replace("#", " ").replace(".", " ").split()
    for word in words[-3:]:
        for label in _NOT_CARD_LABELS.split():
            if word.startswith(label) and (len(word) <= len(label) + 2 or not label.isalpha()):
                return True
    return False


def mask_cards(line):
    """The line with card numbers masked: all digits but the last four become '*'.

    A card number is 13-19 digits, contiguous or in groups of 3-6 joined by one space or dash
    ("4111 1111 1111 1111", "3782-822463-10005"), plausible as a PAN (is_card_number) and not
    labelled as another number. None stays None.
    """
    if not line or _digit_count(line) < 13:
        return line               # most lines: counted in C, no per-character Python
    n = len(line)
    out = None
    i = 0
    while i < n:
        if not _is_digit(line[i]):
            i += 1
            continue
        groups = []
        j = i
        while True:
            k = j
            while k < n and _is_digit(line[k]):
                k += 1
            groups.append((j, k))
            if k + 1 < n and line[k] in " -" and _is_digit(line[k + 1]):
                j = k + 1
            else:
                break
        if len(groups) > 1:
            for g in groups:
                if not 3 <= g[1] - g[0] <= 6:
                    groups = groups[:1]  # not card-like groups: judge each run on its own
                    break
        digits = "".join(line[a:b] for a, b in groups)
        if is_card_number(digits) and not _labelled_other(line, i):
            if out is None:
                out = list(line)
            keep = len(digits) - 4
            for a, b in groups:
                for p in range(a, b):
                    if keep > 0:
                        out[p] = "*"
                        keep -= 1
        i = groups[-1][1]
    return "".join(out) if out else line


def mask_bytes(data):
    """mask_cards() for an undecoded line's bytes (CJK on the board): digits are ASCII in every
    supported encoding. The same object when nothing was masked."""
    if _digit_count(data) < 13:
        return data               # most lines: counted in C, nothing allocated
    text = "".join(chr(b) for b in data)
    masked = mask_cards(text)
    return data if masked is text else bytes(ord(c) for c in masked)


def mask_receipt(receipt):
    """Masks card numbers in a receipt.Receipt's lines, undecoded lines and codes, in place.

    Returns True when one was found: then the receipt's raw ESC/POS bytes must not leave the
    board either.
    """
    found = False
    lines = receipt.lines
    for i in range(len(lines)):
        if lines[i]:
            masked = mask_cards(lines[i])
            if masked is not lines[i]:
                lines[i] = masked
                found = True
    for i, spans in receipt.raw_lines.items():
        masked = tuple((enc, intl, mask_bytes(data)) for enc, intl, data in spans)
        if any(m[2] is not s[2] for m, s in zip(masked, spans)):
            receipt.raw_lines[i] = masked
            found = True
    return mask_codes(receipt) or found


def mask_codes(receipt):
    """Masks card numbers in a receipt's barcodes and 2D codes, in place; True if one was
    found."""
    found = False
    for codes in (receipt.barcodes, receipt.codes2d):
        for i in range(len(codes)):
            masked = mask_cards(codes[i][1])
            if masked is not codes[i][1]:
                codes[i] = (codes[i][0], masked)
                found = True
    return found
