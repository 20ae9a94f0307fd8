"""The house has one-way stairs: each room imports only the rooms below it, and no module imports in a cycle.

config → etl, geo → analysis → maps → flows → etc2calm (CLI). Every import statement counts,
also those inside functions: a local import may delay a heavy dependency, never hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Rooms and their floor: a room may import rooms on lower floors only (etl and geo share a floor
# and do not import each other).
FLOORS = {"data": 0, "config": 0, "etl": 1, "geo": 1, "analysis": 2, "maps": 3, "flows": 4, "etc2calm": 5}


def _imports(path: Path) -> list[str]:
    """Absolute module names imported anywhere in a file (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]  # `from pkg import module`
    return out


def _modules() -> dict[str, Path]:
    mods = {}
    for room in FLOORS:
        for f in (ROOT / room).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_go_down(module):
    room = module.split(".")[0]
    for name in _imports(MODULES[module]):
        target = name.split(".")[0]
        if target in FLOORS and target != room:
            assert FLOORS[target] < FLOORS[room], f"{module} imports {name}: {target} is not below {room}"


def test_no_import_cycles_between_modules():
    graph = {m: {n for n in _imports(p) if n in MODULES and n != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " → ".join(stack[stack.index(n) :] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_every_room_is_a_package_with_a_docstring():
    for room in FLOORS:
        init = ROOT / room / "__init__.py"
        assert init.exists(), room
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{room}/__init__.py has no docstring"


def _room_modules(room: str) -> list[str]:
    return sorted(f.stem for f in (ROOT / room).glob("*.py") if f.stem != "__init__")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.rsplit(".", 1)[-1].startswith("_") and "." in m))
def test_underscore_modules_serve_their_own_room_only(module):
    """A module with a leading underscore is not API: no other room imports it (tests may)."""
    room = module.split(".")[0]
    users = [m for m, path in MODULES.items() if m.split(".")[0] != room and module in _imports(path)]
    assert not users, f"{module} is imported from outside {room}: {users}"


@pytest.mark.parametrize("room", [r for r in FLOORS if r != "data"])
def test_each_room_names_its_public_modules_and_only_those(room):
    """The package docstring is the room's map: it names every module without an underscore as
    `room.module`, and never an underscore module that way (those serve the room only)."""
    doc = ast.get_docstring(ast.parse((ROOT / room / "__init__.py").read_text(encoding="utf-8")))
    modules = [m for m in _room_modules(room) if not m.startswith("__")]
    unnamed = [m for m in modules if not m.startswith("_") and f"{room}.{m}" not in doc]
    assert not unnamed, f"{room}/__init__.py does not name its public modules {unnamed}"
    private = [m for m in modules if m.startswith("_") and f"{room}.{m}" in doc]
    assert not private, f"{room}/__init__.py names underscore modules as public: {private}"
