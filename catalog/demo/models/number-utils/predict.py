"""Number utilities: prime factorisation, descriptive statistics, GCD/LCM and unit conversion.

Pure Python standard library; no load() needed.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections import Counter
from fractions import Fraction

MAX_INTEGER = 10**30
MAX_NUMBERS = 100_000
TIMES = " \u00d7 "  # the multiplication sign, as in "2^3 × 3^2 × 5"  # noqa: RUF003
FACTORIZE_SECONDS = 20.0  # give up on numbers whose factors are all huge

USAGE = (
    'expected {"op": "factorize", "n": 360}, {"op": "stats", "numbers": [...]}, '
    '{"op": "gcd" | "lcm", "numbers": [...]} or '
    '{"op": "convert", "value": 1, "from": "km", "to": "mi"}'
)

# --- primes -------------------------------------------------------------------------------

_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def is_probable_prime(n: int) -> bool:
    """Miller-Rabin with the first 12 prime bases: deterministic for n < 3.3e24, and a
    vanishingly small error probability beyond."""
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in _SMALL_PRIMES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _pollard_rho(n: int, rng: random.Random, deadline: float) -> int:
    """A non-trivial factor of the composite n (Brent's variant)."""
    if n % 2 == 0:
        return 2
    while True:
        y, c, m = rng.randrange(1, n), rng.randrange(1, n), 128
        g, r, q = 1, 1, 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                if time.monotonic() > deadline:
                    raise ValueError(
                        f"gave up after {FACTORIZE_SECONDS:.0f} s: "
                        "the number has more than one very large prime factor"
                    )
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
        if g == n:
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if g != n:
            return g


def prime_factors(n: int) -> list[int]:
    factors = []
    for p in (2, 3, 5, 7, 11, 13):
        while n % p == 0:
            factors.append(p)
            n //= p
    rng = random.Random(n)  # deterministic per input
    deadline = time.monotonic() + FACTORIZE_SECONDS
    stack = [n] if n > 1 else []
    while stack:
        m = stack.pop()
        if is_probable_prime(m):
            factors.append(m)
            continue
        d = _pollard_rho(m, rng, deadline)
        stack.extend((d, m // d))
    return sorted(factors)


def _integer(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f'"{name}" must be an integer')
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f'"{name}" must be a whole number, got {value}')
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f'"{name}" must be an integer, got {value!r}') from None
    if value < minimum or value > MAX_INTEGER:
        raise ValueError(f'"{name}" must be between {minimum} and 10^30, got {value}')
    return value


def factorize(payload: dict) -> dict:
    n = _integer(payload.get("n"), "n")
    factors = prime_factors(n)
    counts = sorted(Counter(factors).items())
    divisors = math.prod(e + 1 for _, e in counts)
    return {
        "n": n if n < 2**53 else str(n),
        "is_prime": len(factors) == 1,
        "prime_factors": [p if p < 2**53 else str(p) for p in factors],
        "factorization": TIMES.join(f"{p}^{e}" if e > 1 else str(p) for p, e in counts) or "1",
        "divisor_count": divisors,
    }


# --- statistics ---------------------------------------------------------------------------


def _numbers(payload: dict, minimum_count: int = 1) -> list[float]:
    numbers = payload.get("numbers")
    if not isinstance(numbers, list) or len(numbers) < minimum_count:
        raise ValueError(f'"numbers" must be a list of at least {minimum_count} number(s)')
    if len(numbers) > MAX_NUMBERS:
        raise ValueError(f'"numbers" holds at most {MAX_NUMBERS} values')
    for i, x in enumerate(numbers):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise ValueError(f'"numbers"[{i}] must be a finite number, got {x!r}')
    return numbers


def _clean(x: float) -> float | int:
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2**53 else round(x, 10)


def stats(payload: dict) -> dict:
    numbers = _numbers(payload)
    ordered = sorted(numbers)
    n = len(numbers)
    counts = Counter(numbers)
    top = max(counts.values())
    result = {
        "count": n,
        "sum": _clean(math.fsum(numbers)),
        "min": _clean(ordered[0]),
        "max": _clean(ordered[-1]),
        "range": _clean(ordered[-1] - ordered[0]),
        "mean": _clean(statistics.fmean(numbers)),
        "median": _clean(statistics.median(ordered)),
        "modes": sorted(_clean(x) for x, c in counts.items() if c == top) if top > 1 else [],
    }
    if n >= 2:
        q1, q2, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        result.update(
            {
                "variance": _clean(statistics.variance(numbers)),
                "stdev": _clean(statistics.stdev(numbers)),
                "population_variance": _clean(statistics.pvariance(numbers)),
                "population_stdev": _clean(statistics.pstdev(numbers)),
                "quartiles": [_clean(q1), _clean(q2), _clean(q3)],
                "iqr": _clean(q3 - q1),
            }
        )
    if all(x > 0 for x in numbers):
        result["geometric_mean"] = _clean(statistics.geometric_mean(numbers))
        result["harmonic_mean"] = _clean(statistics.harmonic_mean(numbers))
    return result


def gcd_lcm(payload: dict, op: str) -> dict:
    raw = payload.get("numbers")
    if not isinstance(raw, list) or len(raw) < 2:
        raise ValueError('"numbers" must be a list of at least 2 integers')
    if len(raw) > 1000:
        raise ValueError('"numbers" holds at most 1000 integers for gcd/lcm')
    numbers = [_integer(x, f"numbers[{i}]") for i, x in enumerate(raw)]
    value = math.gcd(*numbers) if op == "gcd" else math.lcm(*numbers)
    return {op: value if value < 2**53 else str(value), "numbers": numbers}


# --- unit conversion ----------------------------------------------------------------------

# unit -> (dimension, factor to the SI-ish base unit); temperatures are handled separately
UNITS: dict[str, tuple[str, Fraction]] = {}


def _define(dimension: str, factors: dict[str, str | int]) -> None:
    for names, factor in factors.items():
        for name in names.split("|"):
            UNITS[name] = (dimension, Fraction(factor))


_define(
    "length",
    {
        "m|metre|meter|metres|meters": 1,
        "km|kilometre|kilometer|kilometres|kilometers": 1000,
        "cm|centimetre|centimeter|centimetres|centimeters": "1/100",
        "mm|millimetre|millimeter|millimetres|millimeters": "1/1000",
        "um|micrometre|micrometer|micron": "1/1000000",
        "in|inch|inches": "0.0254",
        "ft|foot|feet": "0.3048",
        "yd|yard|yards": "0.9144",
        "mi|mile|miles": "1609.344",
        "nmi|nautical_mile|nautical_miles": 1852,
    },
)
_define(
    "mass",
    {
        "kg|kilogram|kilograms": 1,
        "g|gram|grams": "1/1000",
        "mg|milligram|milligrams": "1/1000000",
        "t|tonne|tonnes|metric_ton": 1000,
        "lb|lbs|pound|pounds": "0.45359237",
        "oz|ounce|ounces": "0.028349523125",
        "st|stone|stones": "6.35029318",
    },
)
_define(
    "volume",
    {
        "l|L|litre|liter|litres|liters": 1,
        "ml|mL|millilitre|milliliter|millilitres|milliliters": "1/1000",
        "m3|cubic_metre|cubic_meter": 1000,
        "gal|gallon|gallons|us_gallon": "3.785411784",
        "imp_gal|imperial_gallon": "4.54609",
        "qt|quart|quarts": "0.946352946",
        "pt|pint|pints|us_pint": "0.473176473",
        "cup|cups": "0.2365882365",
        "fl_oz|fluid_ounce|fluid_ounces": "0.0295735295625",
        "tbsp|tablespoon|tablespoons": "0.01478676478125",
        "tsp|teaspoon|teaspoons": "0.00492892159375",
    },
)
_define(
    "time",
    {
        "s|sec|second|seconds": 1,
        "ms|millisecond|milliseconds": "1/1000",
        "min|minute|minutes": 60,
        "h|hr|hour|hours": 3600,
        "d|day|days": 86400,
        "wk|week|weeks": 604800,
        "yr|year|years": 31557600,  # Julian year, 365.25 days
    },
)
_define(
    "speed",
    {
        "m/s|mps": 1,
        "km/h|kph|kmh": "1000/3600",
        "mph": "0.44704",  # 1609.344 m / 3600 s
        "kn|knot|knots": "1852/3600",
        "ft/s|fps": "0.3048",
    },
)
_define(
    "area",
    {
        "m2|square_metre|square_meter": 1,
        "km2|square_kilometre|square_kilometer": 1000000,
        "cm2|square_centimetre|square_centimeter": "1/10000",
        "ha|hectare|hectares": 10000,
        "acre|acres": "4046.8564224",
        "ft2|sq_ft|square_foot|square_feet": "0.09290304",
        "mi2|sq_mi|square_mile|square_miles": "2589988.110336",
    },
)
_define(
    "data",
    {
        "B|byte|bytes": 1,
        "bit|bits": "1/8",
        "kB|KB|kilobyte|kilobytes": 1000,
        "MB|megabyte|megabytes": 10**6,
        "GB|gigabyte|gigabytes": 10**9,
        "TB|terabyte|terabytes": 10**12,
        "KiB|kibibyte|kibibytes": 2**10,
        "MiB|mebibyte|mebibytes": 2**20,
        "GiB|gibibyte|gibibytes": 2**30,
        "TiB|tebibyte|tebibytes": 2**40,
    },
)
_define(
    "energy",
    {
        "J|joule|joules": 1,
        "kJ|kilojoule|kilojoules": 1000,
        "cal|calorie|calories": "4.184",
        "kcal|kilocalorie|kilocalories|Cal": 4184,
        "Wh|watt_hour|watt_hours": 3600,
        "kWh|kilowatt_hour|kilowatt_hours": 3600000,
    },
)
TEMPERATURES = {
    "C": "C", "c": "C", "celsius": "C", "degC": "C",
    "F": "F", "f": "F", "fahrenheit": "F", "degF": "F",
    "K": "K", "k": "K", "kelvin": "K",
}  # fmt: skip


def _lookup(unit: str) -> str:
    for candidate in (unit, unit.strip(), unit.strip().lower()):
        if candidate in UNITS or candidate in TEMPERATURES:
            return candidate
    raise ValueError(
        f"unknown unit {unit!r}; known units include: {', '.join(sorted(_canonical_units()))}"
    )


def _canonical_units() -> set[str]:
    return {name for name in UNITS if len(name) <= 4} | {"C", "F", "K"}


def _to_kelvin(value: float, scale: str) -> float:
    return {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[scale]


def _from_kelvin(value: float, scale: str) -> float:
    return {"C": value - 273.15, "F": (value - 273.15) * 9 / 5 + 32, "K": value}[scale]


def convert(payload: dict) -> dict:
    value = payload.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError('"value" must be a finite number')
    source, target = payload.get("from"), payload.get("to")
    if not isinstance(source, str) or not isinstance(target, str):
        raise ValueError('"from" and "to" must be unit names, e.g. "km" and "mi"')
    source, target = _lookup(source), _lookup(target)
    if source in TEMPERATURES or target in TEMPERATURES:
        if not (source in TEMPERATURES and target in TEMPERATURES):
            raise ValueError(
                f"cannot convert between {source!r} and {target!r}: different quantities"
            )
        kelvin = _to_kelvin(float(value), TEMPERATURES[source])
        if kelvin < 0:
            raise ValueError("that temperature is below absolute zero")
        result = _from_kelvin(kelvin, TEMPERATURES[target])
        dimension = "temperature"
    else:
        (dim_a, factor_a), (dim_b, factor_b) = UNITS[source], UNITS[target]
        if dim_a != dim_b:
            raise ValueError(f"cannot convert {dim_a} ({source}) to {dim_b} ({target})")
        exact = Fraction(value) * factor_a / factor_b
        result = float(exact)
        dimension = dim_a
    return {
        "value": value,
        "from": source,
        "to": target,
        "result": float(f"{result:.12g}"),
        "dimension": dimension,
    }


OPERATIONS = {
    "factorize": factorize,
    "stats": stats,
    "gcd": lambda payload: gcd_lcm(payload, "gcd"),
    "lcm": lambda payload: gcd_lcm(payload, "lcm"),
    "convert": convert,
}


def apply(input):
    if isinstance(input, bool):
        raise ValueError(USAGE)
    if isinstance(input, int) or (isinstance(input, str) and input.strip().isdigit()):
        return factorize({"n": input})  # a bare integer (JSON or text body): factorise it
    if isinstance(input, list):  # a bare list of numbers: describe it
        return stats({"numbers": input})
    if not isinstance(input, dict) or not isinstance(input.get("op"), str):
        raise ValueError(USAGE)
    operation = OPERATIONS.get(input["op"])
    if operation is None:
        raise ValueError(f"unknown op {input['op']!r}; choose one of: {', '.join(OPERATIONS)}")
    return operation(input)
