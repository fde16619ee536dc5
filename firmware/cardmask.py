"""Card numbers masked before a receipt line is stored or sent (on the board and the server).

A card number is 13-19 digits, contiguous or in groups of 3-6 joined by one space or dash, that
passes the Luhn check; all its digits but the last four become '*'. Small on purpose: the board
runs it on every line before spooling, without loading the field extractor.
"""


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


def is_card_number(digits):
    """13-19 digits passing Luhn. A valid EAN-13 not starting with 4 is a barcode (13-digit
    card numbers are old Visa only, all starting with 4)."""
    n = len(digits)
    if not 13 <= n <= 19 or not _luhn(digits):
        return False
    return not (n == 13 and digits[0] != "4" and _ean13(digits))


def mask_cards(line):
    """The line with card numbers masked: all digits but the last four become '*'.

    A card number is 13-19 digits, contiguous or in groups of 3-6 joined by one space or dash
    ("4111 1111 1111 1111", "3782-822463-10005"), that passes Luhn. None stays None.
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
        if is_card_number(digits):
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
