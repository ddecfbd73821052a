"""The state script's label operations: a label put on a conversation or taken off (with the label's view, LABELED,
in the same step), refused when the workspace has no such label or the conversation holds ten, and a label deleted
off every conversation a batch at a time."""

from __future__ import annotations

import pytest

from gateway import keys
from gateway.handover import labels
from gateway.handover.store import Refused
from tests.store_kit import Kit


def define(kit: Kit, *names: str) -> None:
    for name in names:
        labels.define_label(kit.store, kit.ws, name, "blue", "admin")


def test_label_puts_and_takes_a_label_and_keeps_its_view(kit: Kit) -> None:
    define(kit, "vip", "refund")
    cid = kit.customer("hello").conversation
    assert labels.put_label(kit.store, kit.ws, cid, "vip", True, "agent:alex") == ["vip"]
    assert labels.put_label(kit.store, kit.ws, cid, "refund", True, "agent:alex") == ["vip", "refund"]
    assert labels.put_label(kit.store, kit.ws, cid, "vip", True, "agent:alex") == ["vip", "refund"]  # once
    assert kit.redis.zrange(kit.key(keys.LABELED, label="vip"), 0, -1) == [cid]
    [event] = [e for e in kit.stream(keys.EVENTS, "conversation.labeled") if e["label"] == "refund"]
    assert event["labels"] == ["vip", "refund"] and event["actor"] == "agent:alex"
    assert labels.put_label(kit.store, kit.ws, cid, "vip", False, "agent:alex") == ["refund"]
    assert kit.redis.zcard(kit.key(keys.LABELED, label="vip")) == 0
    assert labels.put_label(kit.store, kit.ws, cid, "refund", False, "agent:alex") == []
    assert "labels" not in kit.raw(cid)


def test_label_refuses_a_label_not_defined_and_an_eleventh(kit: Kit) -> None:
    cid = kit.customer("hello").conversation
    with pytest.raises(Refused) as refused:
        labels.put_label(kit.store, kit.ws, cid, "ghost", True, "agent:alex")
    assert refused.value.code == "no_label"
    define(kit, *(f"l{n}" for n in range(11)))
    for n in range(10):
        labels.put_label(kit.store, kit.ws, cid, f"l{n}", True, "agent:alex")
    with pytest.raises(Refused) as refused:
        labels.put_label(kit.store, kit.ws, cid, "l10", True, "agent:alex")
    assert refused.value.code == "too_many_labels"
    with pytest.raises(Refused) as refused:
        labels.put_label(kit.store, kit.ws, "999", "l1", True, "agent:alex")
    assert refused.value.code == "not_found"


def test_label_keeps_the_view_by_activity_and_forget_empties_it(kit: Kit) -> None:
    define(kit, "vip")
    first = kit.customer("a", sender="+1").conversation
    second = kit.customer("b", sender="+2").conversation
    for cid in (first, second):
        labels.put_label(kit.store, kit.ws, cid, "vip", True, "agent:alex")
    kit.customer("first writes again", sender="+1")
    found, _, counts = kit.store.view_page(kit.ws, "all", "alex", label="vip")
    assert [c["id"] for c in found] == [first, second] and counts["label"] == 2
    kit.store.close(kit.ws, second, "agent:alex", force=True)
    assert kit.store.forget(kit.ws, second)
    assert kit.redis.zrange(kit.key(keys.LABELED, label="vip"), 0, -1) == [first]


def test_label_delete_takes_it_off_every_conversation_a_batch_at_a_time(kit: Kit) -> None:
    define(kit, "vip", "keep")
    ids = [kit.customer("x", sender=f"+{n}").conversation for n in range(5)]
    for cid in ids:
        labels.put_label(kit.store, kit.ws, cid, "vip", True, "agent:alex")
    labels.put_label(kit.store, kit.ws, ids[0], "keep", True, "agent:alex")
    assert kit.store.run("label_delete", kit.ws, label="vip", actor="alex", limit=2)["remaining"] == 3
    labels.delete_label(kit.store, kit.ws, "vip", "alex")
    assert [label["name"] for label in labels.labels(kit.store, kit.ws)] == ["keep"]
    assert all("labels" not in kit.raw(cid) for cid in ids[1:]) and kit.conversation(ids[0])["labels"] == '["keep"]'
    assert not kit.redis.exists(kit.key(keys.LABELED, label="vip"))
