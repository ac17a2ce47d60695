"""Roman numerals <-> integers, as an Algorithmia ADK algorithm.

load() builds both lookup tables once (all 3999 canonical numerals); apply() converts in either
direction, one value or a list.
"""

import re

from Algorithmia import ADK

MAX_VALUE = 3999
SYMBOLS = [
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
    (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
]  # fmt: skip
LETTER_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
# the Unicode "Number Forms" block: U+2160..U+216F (capitals) and U+2170..U+217F (small)
NUMBER_FORMS = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "L", "C", "D", "M")  # fmt: skip  # noqa: E501
UNICODE_NUMERALS = {
    **{chr(0x2160 + i): numeral for i, numeral in enumerate(NUMBER_FORMS)},
    **{chr(0x2170 + i): numeral for i, numeral in enumerate(NUMBER_FORMS)},
}
MAX_ITEMS = 10000


def to_roman(number):
    parts = []
    for value, symbol in SYMBOLS:
        count, number = divmod(number, value)
        parts.append(symbol * count)
    return "".join(parts)


def load():
    """Build the tables: number -> numeral and numeral -> number for 1..3999."""
    to_numeral = [""] + [to_roman(n) for n in range(1, MAX_VALUE + 1)]
    to_number = {numeral: n for n, numeral in enumerate(to_numeral) if n}
    return {"to_numeral": to_numeral, "to_number": to_number}


def additive_value(numeral):
    """Value of a non-canonical numeral by the usual rule (a smaller letter before a larger one
    is subtracted), e.g. IIII = 4, IC = 99, used to suggest the canonical spelling."""
    total = 0
    values = [LETTER_VALUES[letter] for letter in numeral]
    for i, value in enumerate(values):
        total += -value if i + 1 < len(values) and value < values[i + 1] else value
    return total


def from_numeral(text, tables):
    cleaned = "".join(UNICODE_NUMERALS.get(ch, ch) for ch in text.strip()).upper()
    if not cleaned:
        raise ValueError("empty numeral")
    if not re.fullmatch(r"[IVXLCDM]+", cleaned):
        raise ValueError(f"{text!r} is not a Roman numeral (letters I, V, X, L, C, D, M only)")
    number = tables["to_number"].get(cleaned)
    if number is not None:
        return {"roman": cleaned, "number": number}
    value = additive_value(cleaned)
    if 1 <= value <= MAX_VALUE:
        canonical = tables["to_numeral"][value]
        return {
            "roman": cleaned,
            "number": value,
            "canonical": canonical,
            "warning": f"{cleaned} is not standard notation; {value} is written {canonical}",
        }
    raise ValueError(f"{text!r} is not a valid Roman numeral")


def from_number(number, tables):
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError(f"{number} is not a whole number")
        number = int(number)
    if not 1 <= number <= MAX_VALUE:
        raise ValueError(
            f"{number} is out of range: standard Roman numerals go from 1 to {MAX_VALUE}"
        )
    return {"number": number, "roman": tables["to_numeral"][number]}


def convert(value, tables):
    if isinstance(value, bool):
        raise ValueError("expected a number or a Roman numeral, not a boolean")
    if isinstance(value, (int, float)):
        return from_number(value, tables)
    if isinstance(value, str):
        stripped = value.strip()
        if re.fullmatch(r"[+-]?\d+", stripped):
            return from_number(int(stripped), tables)
        return from_numeral(stripped, tables)
    if isinstance(value, dict):
        if "number" in value:
            return convert(value["number"], tables)
        if "roman" in value:
            if not isinstance(value["roman"], str):
                raise ValueError('"roman" must be a string')
            return from_numeral(value["roman"], tables)
    raise ValueError(
        'expected a number (1994), a numeral ("MCMXCIV"), {"number": ...}, {"roman": ...} '
        "or a list of these"
    )


def apply(input, globals):
    if isinstance(input, (bytes, bytearray)):
        raise ValueError("binary input is not supported: send JSON or text")
    if isinstance(input, list):
        if len(input) > MAX_ITEMS:
            raise ValueError(f"at most {MAX_ITEMS} values per call")
        return [convert(value, globals) for value in input]
    return convert(input, globals)


algorithm = ADK(apply, load)
algorithm.init("MCMXCIV")
