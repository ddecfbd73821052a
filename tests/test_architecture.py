"""The shape of the code, checked: no import cycle, no function-level import but the command line's (which keeps
`baton --help` fast), two sides that never import each other over a core that imports neither, each behaviour of
the product in the module the handover's map names, no channel type named outside its connector, no provider's
format or vocabulary in gateway/ (connectors own it), one door for customer messages into the store, and bundled
connectors and plugins that import Baton only through its public API, gateway.plugin."""

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
#: gateway.testing, the connector conformance suite, runs a gateway and a worker in one test process: like the
#: command line, it may import both sides.
SIDES = ("gateway.web", "gateway.work", "gateway.cli", "gateway.testing")


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


# --- provider knowledge only in connectors; one door in ------------------------------------------------------------

#: Providers' addresses, hosts and parameters no core module may spell (a docstring may name a provider as an
#: example); each bundled connector's own field and header names come from its declared schema.
PROVIDERS = re.compile(r"(?i)whatsapp:|api\.twilio\.com|graph\.facebook\.com|api\.telegram\.org|"
                       r"hub\.(mode|challenge|verify_token)|x-telegram-|x-hub-signature|i-twilio-")


def strings(path: Path) -> list[str]:
    """Every string constant of a module, docstrings included (comments are not code)."""
    return [node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def provider_vocabulary() -> set[str]:
    """The field names, header names and security schemes the bundled connectors declare for their webhooks: names
    that are not plain words (MessageSid, X-Twilio-Signature…), which only a connector has reason to spell."""
    from gateway.plugin_host import connector_types

    words: set[str] = set()
    for connector in connector_types().values():
        declared = getattr(connector, "webhook_schema", None)
        if declared is None:
            continue
        words |= {declared.security_scheme, declared.security.get("name", "")}
        words |= {name for name in field_names(declared.request) if re.search(r"[a-z][A-Z]|\d|_", name)}
    return words - {""}


def field_names(node: object) -> set[str]:
    if isinstance(node, dict):
        names = set(node.get("properties", {})) if isinstance(node.get("properties"), dict) else set()
        return names.union(*(field_names(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(field_names(value) for value in node))
    return set()


CORE_CODE = sorted(name for name in MODULES if not name.startswith("gateway.detection"))


def test_the_bundled_connectors_declare_a_vocabulary() -> None:
    assert {"MessageSid", "MessageStatus", "X-Twilio-Signature", "twilioSignature"} <= provider_vocabulary()


@pytest.mark.parametrize("name", CORE_CODE)
def test_gateway_holds_no_providers_format_nor_schema(name: str) -> None:
    vocabulary = provider_vocabulary()
    for text in strings(MODULES[name]):
        assert not PROVIDERS.search(text), f"{name}: {text[:80]!r}"
        spelled = {word for word in vocabulary if word.lower() in text.lower()}
        assert not spelled, f"{name} spells {spelled} of a connector's webhook: {text[:80]!r}"


def store_calls(path: Path, method: str) -> list[int]:
    """Lines where a store's `method` is called: `<…>store.<method>(…)` (store, astore, deployment.store…)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method:
            receiver = node.func.value
            name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
            if name.lower().endswith("store"):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("name", sorted(set(MODULES) | set(EXTENSIONS)))
def test_every_customer_message_enters_the_store_through_one_door(name: str) -> None:
    """gateway.web.pipeline.record is the only caller of the store's `inbound`, so every channel's messages are
    normalised, routed and recorded alike."""
    path = MODULES.get(name) or EXTENSIONS[name]
    door = name == "gateway.web.pipeline"
    assert door or not store_calls(path, "inbound"), f"{name} records customer messages itself"
    assert door or name == "gateway.handover.store" or "CustomerMessage(" not in path.read_text(), name


def test_the_door_is_where_this_test_looks() -> None:
    assert store_calls(MODULES["gateway.web.pipeline"], "inbound"), "gateway.web.pipeline.record no longer records"
    assert store_calls(ROOT / "tests" / "store_kit.py", "inbound"), "the test does not see a store's inbound call"


#: The keys that hold conversations, their histories and deliveries, and how customers find them: the state the
#: state script keeps consistent. Only the store's modules name them.
STATE_KEYS = ("CONVERSATION", "MESSAGES", "DELIVERY", "OUTBOX", "AWAITING_HUMAN", "ACTIVE", "LATEST", "VIEW",
              "CONTACT", "CONTACT_CONVERSATIONS", "CONTACTS", "CONTACT_BY_IDENTITY")
STORE_MODULES = ("gateway.handover.store", "gateway.handover.search", "gateway.keys")


def state_key_uses(path: Path) -> list[str]:
    return [f"keys.{node.attr} (line {node.lineno})" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "keys"
            and node.attr in STATE_KEYS]


@pytest.mark.parametrize("name", sorted(set(MODULES) | set(EXTENSIONS)))
def test_every_read_of_the_conversations_state_goes_through_the_store(name: str) -> None:
    """The event streams, deliveries, retention and metrics read conversations, histories, outboxes and views with
    the store's readers (Store, AsyncStore), so a change of how they are stored is made in one place."""
    path = MODULES.get(name) or EXTENSIONS[name]
    if name in STORE_MODULES:
        return
    assert not state_key_uses(path), f"{name} reads the state itself: {', '.join(state_key_uses(path))}"


def test_the_state_key_rule_sees_the_store() -> None:
    assert state_key_uses(MODULES["gateway.handover.store"]), "the rule no longer sees keys.CONVERSATION uses"


def baton_imports(path: Path) -> set[str]:
    """Every module of Baton's own packages a file imports (gateway…, connectors…, plugins…)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name for name in names if name.split(".")[0] in ("gateway", "connectors", "plugins")}
    return found


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_bundled_connectors_and_plugins_import_only_the_public_api(name: str) -> None:
    assert baton_imports(EXTENSIONS[name]) <= {"gateway.plugin"}, name


@pytest.mark.parametrize("name", sorted(n for n in EXTENSIONS if not n.endswith("__init__") and "." in n))
def test_bundled_connectors_and_plugins_declare_the_api_version_they_need(name: str) -> None:
    module = importlib.import_module(name)
    if hasattr(module, "register_connectors") or hasattr(module, "register_notifiers") or \
            hasattr(module, "register_llm_providers"):
        from gateway.plugin import API_VERSION

        assert module.BATON_API_VERSION == API_VERSION, name


EXAMPLES = {str(path.relative_to(ROOT)): path for path in (ROOT / "examples").rglob("*.py")}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_plugins_import_only_the_public_api_and_the_conformance_suite(name: str) -> None:
    allowed = {"gateway.plugin", "gateway.testing"} if "/tests/" in name else {"gateway.plugin"}
    assert baton_imports(EXAMPLES[name]) <= allowed, name
