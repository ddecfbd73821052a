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


# --- the script's header is its contract ---------------------------------------------------------------------------

HEADER = SOURCE[:SOURCE.index("local TEMPLATES")]
LISTED = dict(re.findall(r"^--   (\w+)\(([^)]*)\)", HEADER, flags=re.MULTILINE))


def refusal_codes() -> set[str]:
    """Every code the script can refuse with: fail('code'), and fail(condition and 'code' or 'other')."""
    return {code for expression in re.findall(r"\bfail\(([^{)]*?)(?:,|\))", SOURCE)
            for code in re.findall(r"'(\w+)'", expression)}


def test_the_header_lists_every_operation_with_its_arguments() -> None:
    assert set(OPERATIONS) == set(LISTED), set(OPERATIONS) ^ set(LISTED)
    for operation in OPERATIONS:
        body = SOURCE[SOURCE.index(f"function ops.{operation}()"):]
        body = body[:re.search(r"^end$", body, flags=re.MULTILINE).end()]  # type: ignore[union-attr]
        used = set(re.findall(r"\bargs\.(\w+)", body))
        listed = set(re.findall(r"\w+", LISTED[operation]))
        assert used <= listed, f"{operation} reads {used - listed}, not in the header's {operation}(…)"


def test_the_header_names_every_refusal_code_and_the_store_types_them() -> None:
    from typing import get_args

    from gateway.handover.store import RefusalCode

    codes = refusal_codes()
    assert {"not_found", "stale_turn", "not_settable", "schema_mismatch", "unknown_operation"} <= codes
    missing = {code for code in codes if not re.search(rf"\b{code}\b", HEADER)}
    assert not missing, f"refusal codes the header of state.lua does not name: {missing}"
    assert codes <= set(get_args(RefusalCode)), codes - set(get_args(RefusalCode))


def test_helpers_take_what_they_need_as_parameters() -> None:
    """Only an operation (`function ops.x`) reads the global `args`; the helpers it calls are given what they use."""
    readers = []
    helper = ""
    for line in SOURCE.splitlines():
        if line.startswith(("local function ", "function ops.", "end")):
            helper = line.split()[2].split("(")[0] if line.startswith("local function ") else ""
        if helper and re.search(r"\bargs\.", line):
            readers.append(f"{helper}: {line.strip()}")
    assert not readers, readers


@pytest.mark.parametrize("field", ["owner", "status", "epoch", "waiting_since", "form_state", "ai_cursor"])
def test_post_and_finish_set_only_the_fields_they_own(kit: Kit, field: str) -> None:
    cid = kit.customer("Hello").conversation
    before = kit.raw(cid)
    with pytest.raises(Refused) as posted:
        kit.store.post(kit.ws, cid, "ai", "An answer", turn=kit.turn(cid), **{field: "agent:mallory"})
    assert posted.value.code == "not_settable" and posted.value.status == 409
    with pytest.raises(Refused) as finished:
        kit.store.finish(kit.ws, cid, kit.turn(cid), **{field: 1})
    assert finished.value.code == "not_settable"
    assert kit.raw(cid) == before and [m["text"] for m in kit.history(cid)] == ["Hello"]


def test_finish_sets_the_fields_a_turn_keeps(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    kit.store.finish(kit.ws, cid, kit.turn(cid), offer=1, unknown_streak=2)
    assert kit.raw(cid)["offer"] == "1" and kit.raw(cid)["unknown_streak"] == "2"
