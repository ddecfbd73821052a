"""The state script's note and reopen operations, as the store runs them (the API's view is tests/test_notes.py)."""

from __future__ import annotations

import pytest

from gateway import keys
from gateway.handover.store import Refused
from tests.store_kit import Kit


def test_note_is_kept_private_and_changes_nothing_the_customer_or_the_lists_see(kit: Kit) -> None:
    cid = kit.customer("What are your opening hours?", delivers=True).conversation  # a channel that sends
    before = kit.raw(cid)
    message_id = kit.store.note(kit.ws, cid, "VIP, be nice", "alex", "Alex", mentions=["sam"])
    note = kit.last(cid)
    assert (note["id"], note["author"], note["text"], note["visibility"]) == (message_id, "agent", "VIP, be nice",
                                                                             "internal")
    after = kit.raw(cid)
    assert (after["last_text"], after["owner"], after["status"]) == (before["last_text"], before["owner"],
                                                                     before["status"])
    assert kit.redis.llen(kit.key(keys.OUTBOX, conversation_id=cid)) == 0  # never queued for sending


def test_reopen_opens_a_closed_conversation_as_the_agents_and_refuses_an_open_one(kit: Kit) -> None:
    cid = kit.customer("Hello").conversation
    with pytest.raises(Refused) as refused:
        kit.store.reopen(kit.ws, cid, "agent:alex")
    assert refused.value.code == "not_closed"
    kit.store.close(kit.ws, cid, "agent:alex")
    kit.store.reopen(kit.ws, cid, "agent:alex")
    conversation = kit.conversation(cid)
    assert (conversation["status"], conversation["owner"]) == ("open", "agent:alex")
    assert kit.customer("One more thing").conversation == cid  # the customer's next message comes here
