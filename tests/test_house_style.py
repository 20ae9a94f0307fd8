"""House style a formatter cannot check: no function a newcomer must scroll.

No function or method of the product is longer than MAX_LINES lines (from its `def` to its last
line), outside bench/, data/ and tests/; compiled numba kernels are excepted (their loops are the
hot path, written flat on purpose). KNOWN_LONG lists the functions still over the limit, each with
its length at the time: the list may only shrink.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 80
ROOMS = ("config", "etl", "geo", "analysis", "maps", "flows", "etc2calm")

# (module path, function name) still over MAX_LINES: none left; a function that grows past it is split.
KNOWN_LONG: set[tuple[str, str]] = set()


def _is_numba_kernel(fn: ast.FunctionDef) -> bool:
    """Decorated with numba's njit / jit (as `njit`, `numba.njit`, `njit(...)`, …)."""
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in ("njit", "jit", "vectorize", "guvectorize"):
            return True
    return False


def long_functions(max_lines: int = MAX_LINES) -> list[tuple[str, str, int]]:
    """(module path, function name, lines) of every non-kernel function of the product over `max_lines`."""
    out = []
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_numba_kernel(node):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > max_lines:
                        out.append((path.relative_to(ROOT).as_posix(), node.name, lines))
    return out


def test_no_function_over_80_lines_outside_the_known_exceptions():
    found = long_functions()
    new = [f"{m}:{name} ({n} lines)" for m, name, n in found if (m, name) not in KNOWN_LONG]
    assert not new, f"functions over {MAX_LINES} lines: " + ", ".join(new)


def test_known_exceptions_are_still_long():
    """A function split since is removed from KNOWN_LONG, so the list only shrinks."""
    still = {(m, name) for m, name, _ in long_functions()}
    gone = sorted(KNOWN_LONG - still)
    assert not gone, f"no longer over {MAX_LINES} lines, remove from KNOWN_LONG: {gone}"


def test_the_lister_finds_a_long_function_and_skips_kernels(tmp_path):
    """The check itself: a plain 81-line function counts, the same under @njit does not."""
    body = "\n".join(f"    x{i} = {i}" for i in range(80))
    plain = ast.parse(f"def f():\n{body}\n").body[0]
    kernel = ast.parse(f"@njit(cache=True)\ndef g():\n{body}\n").body[0]
    assert plain.end_lineno - plain.lineno + 1 == 81 and not _is_numba_kernel(plain)
    assert _is_numba_kernel(kernel)
