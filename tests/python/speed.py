"""Times tls.get/set/id against what they replace, in one process.

  bazel run -c opt //tests/python:speed

Prints ns per call (best of several repeats) and the ratio tls / reference;
a ratio <= 1.0 meets the target. The machine is noisy: compare ratios.
"""

import threading
import timeit

import tls
from tls import get, id, set  # noqa: A004 - the API's own names

local = threading.local()
local.x = 1
local.d = {"k": 1}
get_ident = threading.get_ident
set("k", 1)

# (what, tls statement, reference statement)
CASES = [
    ("get", "get('k')", "local.d['k']"),
    ("get (tls.get)", "tls.get('k')", "local.d['k']"),
    ("get missing", "get('missing')", "local.d.get('missing')"),
    ("set", "set('k', 1)", "local.x = 1"),
    ("set (tls.set)", "tls.set('k', 1)", "local.x = 1"),
    ("id", "id()", "get_ident()"),
    ("id (tls.id)", "tls.id()", "get_ident()"),
]


def best_ns(stmt, number=200_000, repeat=7):
    times = timeit.repeat(stmt, globals=globals(), number=number, repeat=repeat)
    return min(times) / number * 1e9


def main():
    print(f"{'call':16} {'tls ns':>8} {'reference':24} {'ref ns':>8} {'ratio':>6}")
    for name, ours, reference in CASES:
        a, b = best_ns(ours), best_ns(reference)
        print(f"{name:16} {a:8.1f} {reference:24} {b:8.1f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
