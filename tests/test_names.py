"""One name per thing, checked over gateway/, connectors/ and plugins/: a conversation, a workspace, a channel or an
agent is `<thing>: <Type>` when it is the object and `<thing>_id: str` when it is its id (a channel's id is its
configured name: `channel_name`), never an abbreviation (rq's `job: Job` / `job_id: str`).

Checked: every parameter (functions, methods, lambdas), every annotated field of a class, and every name bound
anywhere (variables, attributes, functions). JSON keys and stored fields are wire formats and keep their names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(path for folder in ("gateway", "connectors", "plugins") for path in (ROOT / folder).rglob("*.py"))

#: The name of each thing's id.
ID_NAMES = {"conversation": "conversation_id", "workspace": "workspace_id", "agent": "agent_id",
            "channel": "channel_name"}
#: Names that say the same thing another way.
ABBREVIATIONS = {"cid", "conv", "convo", "conv_id", "ws", "ws_id", "wid", "aid", "chan", "channel_id"}
#: Classes whose fields are a wire format or stored data, named as the JSON they mirror, or the connector contract
#: a plugin constructs by keyword (renamed only with the plugin API's versioning, issue 20).
WIRE_CLASSES = {
    "CustomerMessage",  # the state script's `inbound` arguments
    "Recorded",  # the state script's `inbound` answer
    "Inbound", "DeliveryStatus", "Outbound",  # the connector contract (gateway.connector)
}


def annotation(node: ast.arg | ast.AnnAssign) -> str:
    return ast.unparse(node.annotation) if node.annotation is not None else ""


def is_id_type(text: str) -> bool:
    return text in ("str", "str | None")


def misnamed(name: str, kind: str) -> str | None:
    """Why a parameter or field of this name and annotation breaks the rule, or None."""
    if name in ABBREVIATIONS:
        return f"{name!r} is an abbreviation"
    if name in ID_NAMES and (not kind or is_id_type(kind)):
        return f"{name!r} holds an id: name it {ID_NAMES[name]!r}"
    if name in ID_NAMES.values() and kind and not is_id_type(kind):
        return f"{name!r} holds a {kind}: name it {name.removesuffix('_id').removesuffix('_name')!r}"
    return None


def is_hook(node: ast.AST) -> bool:
    """Hook specs and implementations: pluggy passes their arguments by name, so those names are the plugin API's."""
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("baton_")


def is_typed_dict(node: ast.ClassDef) -> bool:
    return any(ast.unparse(base) == "TypedDict" for base in node.bases)


def violations(source: str) -> list[str]:
    """Every place in this source that names a thing against the rule, as 'line: why'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and not is_hook(node):
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                if why := misnamed(arg.arg, annotation(arg)):
                    found.append(f"{arg.lineno}: parameter {why}")
        if isinstance(node, ast.ClassDef) and node.name not in WIRE_CLASSES and not is_typed_dict(node):
            for field in (f for f in node.body if isinstance(f, ast.AnnAssign)):
                if isinstance(field.target, ast.Name) and (why := misnamed(field.target.id, annotation(field))):
                    found.append(f"{field.lineno}: field {why}")
        bound = None
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound = node.id
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            bound = node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            bound = node.name
        if bound in ABBREVIATIONS:
            found.append(f"{getattr(node, 'lineno', 0)}: {bound!r} is an abbreviation")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_one_name_per_thing(path: Path) -> None:
    assert violations(path.read_text()) == []


def test_the_check_finds_each_kind_of_misnaming() -> None:
    source = '''
def take(conversation: str, workspace_id: WorkspaceConfig, channel: str | None = None) -> None:
    cid = conversation
    f = lambda ws, agent: None

class Turn:
    agent: str
    conversation: Conversation

    @property
    def cid(self) -> str: ...

def fine(conversation: Conversation, workspace_id: str, channel_name: str, agent: Agent) -> None:
    conversation_id = conversation["id"]

def baton_notify(workspace: str, notification: dict) -> None: ...
'''
    found = violations(source)
    assert [line.split(":")[0] for line in found] == ["2", "2", "2", "3", "4", "4", "7", "11"], found
    assert "'ws' is an abbreviation" in found[4] and "'agent' holds an id" in found[5], found
    assert "name it 'conversation_id'" in found[0] and "name it 'workspace'" in found[1], found
    assert "name it 'channel_name'" in found[2], found
