"""Money and table helpers for the demo: integer minor units in, clerk-readable text out."""
from decimal import Decimal

MINOR_DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KWD": 3}
CURRENCY_ORDER = ["USD", "EUR", "GBP", "JPY", "KWD"]


def digits(currency):
    return MINOR_DIGITS.get(currency, 2)


def wire(minor, currency):
    """The contract form: '1250.00' USD, '1250' JPY, '12.500' KWD."""
    d = digits(currency)
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    if d == 0:
        return f"{sign}{minor}"
    return f"{sign}{minor // 10 ** d}.{minor % 10 ** d:0{d}d}"


def parse(text, currency):
    """Contract decimal string to minor units (exact)."""
    return int((Decimal(text) * (10 ** digits(currency))).to_integral_exact())


def show(minor, currency, code=True):
    """'USD 1,250.00' (thousands separators, the currency's minor digits)."""
    d = digits(currency)
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    whole = f"{minor // 10 ** d:,}"
    text = whole if d == 0 else f"{whole}.{minor % 10 ** d:0{d}d}"
    return f"{currency} {sign}{text}" if code else f"{sign}{text}"


def show_text(text, currency):
    """A contract amount string shown for people."""
    return show(parse(text, currency), currency)


def currency_key(currency):
    return (CURRENCY_ORDER.index(currency) if currency in CURRENCY_ORDER else 99, currency)


def table(header, rows, right=(), indent="  "):
    """Plain aligned text table; columns named in `right` (indexes) are right-aligned."""
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells):
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        return (indent + "  ".join(out)).rstrip()

    lines = [line(header), indent + "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in rows]
    return "\n".join(lines)


def heading(title):
    return f"\n{title}\n{'=' * len(title)}"
