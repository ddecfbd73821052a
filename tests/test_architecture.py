"""The shape of the code, checked: no import cycle, no function-level import but the command line's (which keeps
`baton --help` fast), two sides that never import each other over a core that imports neither, each behaviour of
the product in the module the handover's map names, and no channel type named outside its connector."""

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
EXTENSIONS = {module_name(path): path for folder in ("connectors", "plugins") for path in (ROOT / folder).rglob("*.py")}
#: gateway.jobs is the work side's, kept at its old path for the RQ jobs queued under its names (see its docstring).
MOVED = {"gateway.jobs": "gateway.work"}
SIDES = ("gateway.web", "gateway.work", "gateway.cli")


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


def side(module: str) -> str:
    """The side a gateway module is on (gateway.web, gateway.work, gateway.cli), or "core"."""
    module = MOVED.get(module, module)
    return next((name for name in SIDES if module == name or module.startswith(f"{name}.")), "core")


def sides_imported(path: Path) -> set[str]:
    return {side(target) for target, _ in imports(path)} - {"core"}


def test_every_side_has_its_modules() -> None:
    found = {side(name) for name in MODULES}
    assert found == {"core", *SIDES}, found


@pytest.mark.parametrize("name", sorted(name for name in MODULES if side(name) == "core"))
def test_the_core_imports_neither_side_nor_the_command_line(name: str) -> None:
    assert not sides_imported(MODULES[name]), name


@pytest.mark.parametrize("name", sorted(name for name in MODULES if side(name) in ("gateway.web", "gateway.work")))
def test_the_request_side_and_the_work_side_never_import_each_other(name: str) -> None:
    assert sides_imported(MODULES[name]) <= {side(name)}, name


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_connectors_and_plugins_import_neither_side_nor_the_command_line(name: str) -> None:
    assert not sides_imported(EXTENSIONS[name]), name


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
