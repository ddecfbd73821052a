"""Search: the terms a text is indexed under, the index the state script keeps in the same step as each message or
contact detail (and takes out when a conversation is forgotten), and the query over it with its filters and cursor."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway import keys
from gateway.deployment import Deployment
from gateway.handover import search
from gateway.handover.search import Filters
from gateway.web.app import create_app
from tests.conftest import Visitor, agent_token, run_jobs
from tests.store_kit import Kit


def find(kit: Kit, query: str, cursor: str = "", limit: int = 20, **filters: str | int) -> list[str]:
    hits, _ = search.search(kit.redis, kit.ws, query, Filters(**filters), cursor, limit)  # type: ignore[arg-type]
    return [hit.conversation["id"] for hit in hits]


@pytest.mark.parametrize(("text", "expected"), [
    ("Where is my ORDER #4521?", ["where", "is", "my", "order", "4521"]),
    ("Müller café", ["muller", "cafe"]),
    ("write to anna.smith@example.com please", ["anna.smith@example.com", "write", "to", "anna", "smith",
                                                "example", "com", "please"]),
    ("call +34 612 345 678", ["34612345678", "call", "34", "612", "345", "678"]),
    ("a b", []),
])
def test_terms_are_folded_words_addresses_and_numbers(text: str, expected: list[str]) -> None:
    assert search.terms(text) == expected


def test_a_number_typed_with_spaces_is_one_query_term_and_a_customer_matches_by_its_beginning_or_end() -> None:
    assert search.query_terms("+34 612 345 678") == ["34612345678"]
    found = search.customer_terms("Anna Smith", "+34612345678")
    assert {"an", "ann", "anna", "sm", "smith", "3461", "612345678", "5678"} <= set(found)


def test_a_message_is_found_by_its_words_at_that_message(kit: Kit) -> None:
    first = kit.customer("My parcel never arrived", sender="+100").conversation
    second = kit.customer("Do you ship to Norway?", sender="+200").conversation
    answered = kit.store.post(kit.ws, second, "agent", "Yes, Norway in 3 days", agent_id="alex", agent_name="Alex")
    assert find(kit, "parcel") == [first]
    assert find(kit, "NORWAY") == [second]
    assert find(kit, "parcel norway") == []
    [hit], _ = search.search(kit.redis, kit.ws, "norway days", Filters())
    assert hit.message_id == answered


def test_the_customer_is_found_by_name_number_and_details_captured(kit: Kit) -> None:
    cid = kit.customer("hello", sender="+34612345678", customer="Jörg Weiß").conversation
    assert find(kit, "jorg") == find(kit, "jö") == find(kit, "612 345 678") == [cid]
    [hit], _ = search.search(kit.redis, kit.ws, "jorg", Filters())
    assert hit.message_id == ""  # matched by the customer, not by a message
    kit.redis.hset(kit.key(keys.CONVERSATION, conversation_id=cid), "form_state", "sent")
    kit.store.capture(kit.ws, cid, {"name": "Jörg", "email": "jw@example.org", "phone": ""}, "", "")
    assert find(kit, "jw@example.org") == [cid]
    # the customer's next conversation is found by what was captured in the first
    kit.store.close(kit.ws, cid, "agent:alex", force=True)
    later = kit.customer("again", sender="+34612345678", customer="Jörg Weiß").conversation
    assert find(kit, "jw@example.org") == [later, cid]


def test_notes_are_found_and_system_notices_are_not(kit: Kit) -> None:
    cid = kit.customer("hi").conversation
    kit.store.note(kit.ws, cid, "refund approved by finance", "alex", "Alex")
    kit.store.post(kit.ws, cid, "system", "zebra notice")
    assert find(kit, "finance") == [cid]
    assert find(kit, "zebra") == []


def test_filters_narrow_by_status_owner_channel_and_time(kit: Kit) -> None:
    web = kit.customer("invoice please", sender="+1", channel="web").conversation
    other = kit.customer("invoice again", sender="+2", channel="shop").conversation
    kit.store.post(kit.ws, other, "agent", "here", agent_id="alex", agent_name="Alex")
    assert set(find(kit, "invoice")) == {web, other}
    assert find(kit, "invoice", channel_name="shop") == [other]
    assert find(kit, "invoice", owner="agent:alex") == [other]
    assert find(kit, "invoice", owner="ai") == [web]
    kit.store.close(kit.ws, web, "agent:alex", force=True)
    assert find(kit, "invoice", status="closed") == [web]
    assert find(kit, "invoice", status="open") == [other]
    now = kit.store.now_ms()
    assert find(kit, "invoice", since=now + 1000) == []
    assert set(find(kit, "invoice", until=now + 1000)) == {web, other}
    assert find(kit, "invoice", until=now - 60_000) == []


def test_pages_follow_the_cursor_each_match_once_newest_first(kit: Kit) -> None:
    ids = [kit.customer(f"lost tracking {n}", sender=f"+{n}").conversation for n in range(25)]
    by_time = {cid: kit.redis.zscore(kit.key(keys.SEARCH, term="tracking"), cid) for cid in ids}
    newest_first = sorted(ids, key=lambda cid: (by_time[cid], cid), reverse=True)  # a millisecond's ties by id as text
    seen: list[str] = []
    cursor = ""
    while True:
        hits, cursor = search.search(kit.redis, kit.ws, "tracking", Filters(), cursor, limit=10)
        seen += [hit.conversation["id"] for hit in hits]
        if not cursor:
            break
    assert seen == newest_first
    # a match that moves to the top while paging (a new message) is not read twice on the pages still to come
    first, cursor = search.search(kit.redis, kit.ws, "tracking", Filters(), "", limit=10)
    moved = newest_first[-1]
    kit.customer("tracking again", sender=f"+{ids.index(moved)}")
    rest: list[str] = []
    while cursor:
        hits, cursor = search.search(kit.redis, kit.ws, "tracking", Filters(), cursor, limit=10)
        rest += [hit.conversation["id"] for hit in hits]
    assert rest == newest_first[10:-1]


def test_a_sparse_match_answers_a_short_page_with_a_cursor_instead_of_scanning_everything(
        kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "SCAN_BUDGET", 5)
    rare = kit.customer("common rare", sender="+1").conversation
    for n in range(12):
        kit.customer("common", sender=f"+{n + 10}")
    # "common" is the smaller zset? no: "rare" drives (one member), so it is found at once
    assert find(kit, "common rare") == [rare]
    hits, cursor = search.search(kit.redis, kit.ws, "common", Filters(status="closed"), "", 20)
    assert hits == [] and cursor  # 5 looked at, none closed: ask again
    pages = 1
    while cursor:
        hits, cursor = search.search(kit.redis, kit.ws, "common", Filters(status="closed"), cursor, 20)
        pages += 1
    assert pages == 3  # 13 candidates, 5 at a time


def test_forgetting_a_conversation_takes_it_out_of_the_index(kit: Kit) -> None:
    cid = kit.customer("unique-word xylophone", sender="+9", customer="Zed").conversation
    assert search.indexed_terms(kit.redis, kit.ws, cid)["m:xylophone"]
    kit.store.close(kit.ws, cid, "agent:alex", force=True)
    assert kit.store.forget(kit.ws, cid)
    assert find(kit, "xylophone") == [] and find(kit, "zed") == []
    assert not kit.redis.exists(kit.key(keys.SEARCH, term="xylophone"))
    assert search.indexed_terms(kit.redis, kit.ws, cid) == {}


def test_a_query_with_no_term_finds_nothing_and_a_bad_cursor_is_not_one() -> None:
    assert search.query_terms("?! -") == []
    assert search.parse_cursor("12:34") is None and search.parse_cursor("12:34:9") is None
    assert search.parse_cursor("12:34:1") == (12, "34", 1)


# --- GET /api/search ------------------------------------------------------------------------------------------------

def test_the_api_finds_a_conversation_at_its_message_and_pages(client: TestClient, deployment: Deployment,
                                                                visitor: Visitor) -> None:
    alex = agent_token(deployment, "alex")
    cid = visitor.say("My espresso machine leaks water")["conversation"]
    run_jobs(deployment)
    answer = client.get("/api/search", params={"q": "Espresso leaks"}, headers=alex)
    assert answer.status_code == 200, answer.text
    [result] = answer.json()["results"]
    assert result["conversation"]["id"] == cid and result["conversation"]["channel"] == visitor.channel
    assert result["message"]["text"] == "My espresso machine leaks water"
    assert result["message_id"] == result["message"]["id"] and answer.json()["next_cursor"] is None
    assert client.get("/api/search", params={"q": "espresso", "status": "closed"},
                      headers=alex).json()["results"] == []
    assert [r["conversation"]["id"] for r in client.get(
        "/api/search", params={"q": "espresso", "owner": "ai", "channel": visitor.channel},
        headers=alex).json()["results"]] == [cid]


def test_the_api_refuses_what_it_cannot_search_with_a_reason(client: TestClient, deployment: Deployment) -> None:
    alex = agent_token(deployment, "alex")
    for params, reason in [({}, "'q'"), ({"q": "  "}, "'q'"), ({"q": "?!"}, "no word"), ({"q": "x" * 201}, "longer"),
                           ({"q": "ok", "status": "gone"}, "'status'"), ({"q": "ok", "cursor": "1:2"}, "'cursor'"),
                           ({"q": "ok", "from": "yesterday"}, "'from'"), ({"q": "ok", "limit": "500"}, "'limit'")]:
        answer = client.get("/api/search", params=params, headers=alex)
        assert answer.status_code == 400 and reason in answer.json()["error"], (params, answer.text)
    assert client.get("/api/search", params={"q": "ok"}).status_code == 401


def test_a_search_sees_only_its_own_workspace(client: TestClient, deployment: Deployment, visitor: Visitor,
                                              make_deployment: Any) -> None:
    visitor.say("confidential pineapple order")
    other = make_deployment()
    with TestClient(create_app(other)) as other_client:
        answer = other_client.get("/api/search", params={"q": "pineapple"}, headers=agent_token(other, "sam"))
    assert answer.status_code == 200 and answer.json()["results"] == []
    assert len(client.get("/api/search", params={"q": "pineapple"},
                          headers=agent_token(deployment, "alex")).json()["results"]) == 1
