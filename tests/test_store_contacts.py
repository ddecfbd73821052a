"""The state script's contact_update: an agent's edit of a contact, with what search finds their conversations by
replaced in the same step, refused when the contact changed since it was read."""

from __future__ import annotations

import pytest

from gateway.handover import contacts, search
from gateway.handover.search import Filters
from gateway.handover.store import Refused
from tests.store_kit import Kit


def found(kit: Kit, query: str) -> list[str]:
    hits, _ = search.search(kit.redis, kit.ws, query, Filters())
    return [hit.conversation["id"] for hit in hits]


def test_contact_update_changes_the_details_and_what_search_finds(kit: Kit) -> None:
    first = kit.customer("hello", sender="+34612345678", customer="Jo").conversation
    kit.store.close(kit.ws, first, "agent:alex", force=True)
    second = kit.customer("again", sender="+34612345678", customer="Jo").conversation
    contact_id = kit.conversation(first)["contact"]
    edited = contacts.edit(kit.store, kit.ws, contact_id, {"name": "Joanna Prieto", "email": "JP@Example.org"},
                           "agent:alex")
    assert edited["name"] == "Joanna Prieto" and edited["email"] == "JP@example.org" and "terms" not in edited
    assert found(kit, "prieto") == [second, first] and found(kit, "jp@example.org") == [second, first]
    assert found(kit, "612345678") == [second, first]  # their number stays theirs
    assert found(kit, "jo") == [second, first]  # "Joanna" begins so
    contacts.edit(kit.store, kit.ws, contact_id, {"name": "Ana", "email": ""}, "agent:alex")
    assert found(kit, "prieto") == [] and found(kit, "jp@example.org") == [] and found(kit, "ana") == [second, first]
    assert "email" not in kit.store.contact(kit.ws, contact_id)


def test_contact_update_keeps_message_words_that_were_also_the_old_name(kit: Kit) -> None:
    cid = kit.customer("I ordered the rosa lamp", sender="+1555000111", customer="Rosa").conversation
    contacts.edit(kit.store, kit.ws, kit.conversation(cid)["contact"], {"name": "Maria"}, "agent:alex")
    assert found(kit, "rosa") == [cid]  # still in a message


def test_contact_update_is_refused_when_the_contact_changed_since_it_was_read(kit: Kit) -> None:
    cid = kit.customer("hi", sender="+1555000222").conversation
    contact_id = kit.conversation(cid)["contact"]
    with pytest.raises(Refused) as refused:
        kit.store.run("contact_update", kit.ws, contact=contact_id, fields={"name": "X"}, terms=[], actor="agent:a",
                      expect=1)
    assert refused.value.code == "contact_changed" and refused.value.status == 409
    with pytest.raises(Refused) as refused:
        kit.store.run("contact_update", kit.ws, contact="999", fields={}, terms=[], actor="agent:a")
    assert refused.value.code == "no_contact" and refused.value.status == 404
