"""The state script as a whole: every operation has tests of its own (named `test_<operation>_…` in the
tests/test_store_*.py files), its key names are exactly gateway/keys.py's, and an unknown operation is refused."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from importlib import resources
from pathlib import Path

import pytest

from gateway import keys
from gateway.handover.store import SCRIPT, Refused
from tests.store_kit import Kit

SOURCE = resources.files("gateway.handover").joinpath("state.lua").read_text(encoding="utf-8")
OPERATIONS = sorted(re.findall(r"^function ops\.(\w+)\(\)", SOURCE, flags=re.MULTILINE))
TESTS = sorted(
    name
    for path in Path(__file__).parent.glob("test_store_*.py")
    for name, _ in inspect.getmembers(importlib.import_module(f"tests.{path.stem}"), inspect.isfunction)
    if name.startswith("test_")
)


def test_the_script_has_the_operations_the_store_calls() -> None:
    assert len(OPERATIONS) >= 14
    assert {"inbound", "hand_over", "assign", "post", "finish", "close", "fire", "capture", "publish",
            "outbox_next", "outbox_done", "resend", "status", "forget"} <= set(OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_has_a_test(operation: str) -> None:
    assert any(name.startswith(f"test_{operation}_") for name in TESTS), f"no test_{operation}_… in test_store_*.py"


def test_the_rendered_key_templates_are_exactly_gateway_keys(kit: Kit) -> None:
    [table] = re.findall(r"^local TEMPLATES = .*$", SCRIPT, flags=re.MULTILINE)
    rendered = kit.redis.eval(f"{table}\nreturn cjson.encode(TEMPLATES)", 0)
    assert json.loads(str(rendered)) == keys.templates()


def test_every_key_the_script_names_is_a_template() -> None:
    named = set(re.findall(r"(?:key|conv_part)\('([A-Z_]+)'", SOURCE))
    [deleted] = re.findall(r"for _, name in ipairs\(\{([^}]*)\}\) do\s+redis.call\('DEL', conv_part", SOURCE)
    named |= set(re.findall(r"'([A-Z_]+)'", deleted))  # forget's list of the conversation's keys
    assert named, "the script names no keys?"
    assert named <= set(keys.templates()), named - set(keys.templates())


def test_the_script_renders_keys_as_python_does(kit: Kit) -> None:
    recorded = kit.customer("Hello", channel="web", sender="+1 555/0100")
    assert kit.redis.get(kit.key(keys.ACTIVE, channel="web", sender="+1 555/0100")) == recorded.conversation
    assert kit.exists(keys.CONVERSATION, conversation_id=recorded.conversation)
    assert kit.exists(keys.MESSAGES, conversation_id=recorded.conversation)


def test_an_unknown_operation_is_refused(kit: Kit) -> None:
    with pytest.raises(Refused) as refused:
        kit.store.run("teleport", kit.ws)
    assert refused.value.code == "unknown_operation"
