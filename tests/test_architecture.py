"""The shape of the code, checked: no import cycle, no function-level import but the command line's (which keeps
`baton --help` fast), each behaviour of the product in the module the handover's map names, and no channel type
named outside its connector."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, at module level?) for each import of a gateway module in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:  # `from gateway.x import y` imports gateway.x.y when y is a module
                target = f"{node.module}.{alias.name}"
                found.append((target if target in MODULES else node.module, node.col_offset == 0))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.col_offset == 0) for alias in node.names]
    return [(target, top) for target, top in found if target in MODULES]


def test_no_import_cycle() -> None:
    graph = {name: {t for t, top in imports(path) if top and t != name} for name, path in MODULES.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in visiting:
            raise AssertionError(f"import cycle: {' -> '.join([*visiting[visiting.index(module):], module])}")
        if module in done:
            return
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_function_level_imports_only_in_the_command_line() -> None:
    lazy = {name for name, path in MODULES.items() if any(not top for _, top in imports(path))}
    assert lazy <= {"gateway.cli"}, lazy


def test_every_behaviour_in_the_handover_map_names_real_functions() -> None:
    from gateway import handover

    doc = handover.__doc__ or ""
    names = re.findall(r"(\w+)\.py: ([\w, ]+)", doc)
    assert len(names) >= 9  # each behaviour of the product has its line
    for module, functions in names:
        package = next(f"gateway.{side}".rstrip(".") for side in ("handover", "", "work", "web")
                       if (PACKAGE / side / f"{module}.py").exists())
        imported = importlib.import_module(f"{package}.{module}")
        for function in re.findall(r"\w+", functions):
            if function[0].islower():
                assert hasattr(imported, function), f"{package}.{module}.{function}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_channel_type_named_outside_the_connectors(name: str) -> None:
    text = MODULES[name].read_text()
    assert not re.search(r"""type\s*[!=]=\s*["'](webchat|twilio_whatsapp)["']""", text), name
