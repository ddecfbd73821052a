"""Retrieval: passages, the shared knowledge base in Redis, and what a turn gives the model (issue 23)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis
from starlette.testclient import TestClient

from gateway import ai, keys
from gateway.config import KnowledgeConfig
from gateway.deployment import Deployment
from gateway.knowledge import KnowledgeEntry, parse_knowledge
from gateway.retrieval import Article, Index, KnowledgeBase, rank_knowledge, retrieve, split_article
from gateway.retrieval.index import approximate_tokens
from gateway.retrieval.text import terms
from gateway.web.app import create_app
from tests.conftest import Visitor, chat_channel, run_jobs, workspace_of

pytestmark = pytest.mark.redis

LAMPS = [
    ("How do I return a lamp?", "You can return any lamp within 30 days of delivery. Refunds arrive within 5 days."),
    ("What bulbs do the lamps use?", "All our lamps take standard E27 LED bulbs, up to 12 W."),
    ("How do I track my order?", "You receive a tracking link by email as soon as your order ships."),
    ("How long does shipping take?", "Orders ship within 1 business day; delivery takes 2-4 business days."),
    ("How much does shipping cost?", "Shipping is free for orders over 50 EUR, otherwise 4.90 EUR."),
]


def index_of(articles: list[tuple[str, str]]) -> Index:
    return Index([p for n, (title, body) in enumerate(articles) for p in split_article(f"a{n}", title, body)])


def best(index: Index, question: str, previous: str = "") -> str | None:
    hits = retrieve(index, question, previous)
    return hits[0].passage.title if hits else None


@pytest.mark.parametrize(("question", "expected"), [
    ("Which light bulb fits your lamps?", "What bulbs do the lamps use?"),  # the paraphrases
    ("how can I follow my parcel", "How do I track my order?"),
    ("How long does shipping take?", "How long does shipping take?"),  # not the bulb entry for "ship"
    ("Combien coûte la livraison ?", "How much does shipping cost?"),
    ("Wie lange dauert der Versand?", "How long does shipping take?"),
    ("¿Puedo devolver una lámpara?", "How do I return a lamp?"),
    ("Posso restituire una lampada?", "How do I return a lamp?"),
    ("Quanto custa o envio?", "How much does shipping cost?"),
    ("What is the capital of France?", None),
    ("Do you sell gift cards?", None),
])
def test_the_passage_that_answers_or_none(question: str, expected: str | None) -> None:
    assert best(index_of(LAMPS), question) == expected


def test_a_short_follow_up_is_read_with_the_question_before_it() -> None:
    index = index_of([("What are your opening hours?", "Monday to Friday, 9 to 17."),
                      ("Are you open on weekends?", "Saturdays 10 to 14.")])
    assert best(index, "and on saturday?", "When are you open?") == "Are you open on weekends?"


def test_an_article_is_split_at_its_headings_and_long_paragraphs_each_passage_keeping_the_title() -> None:
    body = "Intro line.\n\n## Europe\nTwo days.\n\n## Elsewhere\n" + "\n\n".join(
        " ".join(["word"] * 50) for _ in range(4))
    passages = split_article("ship", "Shipping", body)
    assert [p.title for p in passages] == ["Shipping", "Shipping — Europe", "Shipping — Elsewhere",
                                           "Shipping — Elsewhere"]
    assert [p.id for p in passages] == ["ship#0", "ship#1", "ship#2", "ship#3"]
    assert all(len(p.text.split()) <= 120 for p in passages)
    assert "=ship" in passages[1].terms  # "Shipping", from the title, in every passage


def test_stemming_and_the_lexicon_meet_across_languages_but_function_words_do_not_count() -> None:
    assert terms("livraison") == terms("Versand") == terms("deliveries") == ["=ship"]
    assert terms("the of la der que il") == []
    assert terms("Lampen") == terms("lamps") == terms("lampes")


def test_the_knowledge_given_to_the_model_keeps_within_the_token_budget_whatever_the_size() -> None:
    articles = [(f"Lamp model {n} specifications", f"The model {n} lamp is {n} cm tall. " * 20) for n in range(400)]
    index = index_of(articles)
    settings = KnowledgeConfig(prompt_tokens=300, max_passages=4, min_coverage=0.3)
    hits = retrieve(index, "How tall is the lamp model 17?", settings=settings)
    assert hits and hits[0].passage.title == "Lamp model 17 specifications"
    assert sum(approximate_tokens(h.passage.title) + approximate_tokens(h.passage.text) for h in hits) <= 300


def test_rank_knowledge_answers_a_whole_knowledge_block_the_same_way() -> None:
    entries = [KnowledgeEntry(title, body) for title, body in LAMPS]
    assert rank_knowledge(entries, "what does delivery cost me?")[0].question == "How much does shipping cost?"
    assert rank_knowledge(entries, "Do you sell gift cards?") == []


# --- the shared base in Redis ----------------------------------------------------------------------------------


def test_the_config_knowledge_is_written_once_and_again_only_when_it_changes(deployment: Deployment) -> None:
    base = deployment.kb(workspace_of(deployment))
    entries = deployment.knowledge(workspace_of(deployment))
    assert base.sync_config(entries)
    version = base.version()
    assert not base.sync_config(entries) and base.version() == version
    assert [a.title for a in base.articles()] == sorted((e.question for e in entries), key=str.casefold)
    assert base.sync_config([*entries, KnowledgeEntry("Do you sell gift cards?", "Yes, from 25 EUR.")])
    assert base.version() != version
    assert len(base.articles()) == len(entries) + 1


def test_an_admin_article_survives_a_config_change_and_deleting_removes_its_passages(deployment: Deployment) -> None:
    base = deployment.kb(workspace_of(deployment))
    base.sync_config(deployment.knowledge(workspace_of(deployment)))
    article = base.put(Article("gift", "Do you sell gift cards?", "Yes, from 25 to 500 EUR.\n\n## Validity\n3 years."))
    assert [p.title for p in base.passages(article)] == ["Do you sell gift cards?",
                                                        "Do you sell gift cards? — Validity"]
    base.sync_config([KnowledgeEntry("Only this?", "Yes.")])
    assert {a.title for a in base.articles()} == {"Only this?", "Do you sell gift cards?"}
    base.delete("gift")
    assert [a.title for a in base.articles()] == ["Only this?"]
    assert all(not p.startswith("gift#") for p in deployment.redis.hkeys(base.passages_key))


def test_a_change_reaches_another_process_at_its_next_turn_without_a_restart(
        make_deployment: Callable[..., Deployment]) -> None:
    first = make_deployment()
    workspace = workspace_of(first)
    # a second process of the same deployment: its own Deployment, its own in-memory index
    second = Deployment.build(first.config, first.redis_url)
    try:
        with TestClient(create_app(second)) as client:
            visitor = Visitor(client, chat_channel(second))
            visitor.say("Do you sell gift cards?")
            run_jobs(second)
            assert "don't know" in visitor.texts("ai")[-1]
            first.kb(workspace).put(Article("gift", "Do you sell gift cards?", "Yes: from 25 to 500 EUR."))
            visitor.say("Do you sell gift cards?")
            run_jobs(second)
            assert visitor.texts("ai")[-1].startswith("Yes: from 25 to 500 EUR.")  # (asked twice: and the offer)
    finally:
        second.close()


@contextmanager
def round_trips() -> Iterator[list[str]]:
    """Every request sent to Redis (a pipeline is one)."""
    sent: list[str] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: redis.connection.AbstractConnection, command: object, check_health: bool = True) -> None:
        sent.append(repr(command)[:80])
        original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def test_a_turn_keeps_to_four_redis_round_trips_with_retrieval(deployment: Deployment) -> None:
    from gateway.work.turn import take_turn

    workspace = workspace_of(deployment)
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("How long does shipping take?")["conversation"]
        take_turn(deployment, workspace, cid)  # the first turn of the process loads the index
        visitor.say("And how do I return a lamp?")
        with round_trips() as sent:
            take_turn(deployment, workspace, cid)
        assert visitor.texts("ai")[-1] == "Start a return from the order page within 30 days."
    assert len(sent) <= 4, sent


def test_the_prompt_holds_only_the_passages_that_answer(make_deployment: Callable[..., Deployment]) -> None:
    many = [{"q": f"Lamp model {n}: specifications", "a": f"The model {n} is {n} cm tall."} for n in range(300)]
    deployment = make_deployment(ai_agent={"knowledge": {"entries": many, "prompt_tokens": 200}})
    workspace = deployment.config.workspaces[0]
    index = deployment.knowledge_index(workspace.id, None)
    hits = retrieve(index, "How tall is the model 42?", settings=workspace.ai_agent.knowledge)  # type: ignore[union-attr]
    agent = workspace.ai_agent
    assert agent is not None
    from gateway.retrieval import entries
    prompt = ai.system_prompt(agent, entries(hits), ranked=True)
    given = parse_knowledge(prompt)
    assert given[0] == KnowledgeEntry("Lamp model 42: specifications", "The model 42 is 42 cm tall.")
    assert len(given) <= agent.knowledge.max_passages
    assert len(prompt) < 2000  # not the 300 entries


def test_the_knowledge_keys_are_the_workspaces(deployment: Deployment) -> None:
    base = KnowledgeBase(deployment.redis, "w1")
    assert base.version_key == keys.KB_VERSION % {"workspace_id": "w1"}
    assert base.version() is None


# --- the sources of an answer -----------------------------------------------------------------------------------


def test_an_ai_answer_records_the_passage_it_came_from_and_the_api_returns_it(deployment: Deployment) -> None:
    from tests.conftest import agent_token

    workspace = workspace_of(deployment)
    with TestClient(create_app(deployment)) as client:
        visitor = Visitor(client, chat_channel(deployment))
        cid = visitor.say("How long does shipping take?")["conversation"]
        run_jobs(deployment)
        visitor.say("Do you sell gift cards?")
        run_jobs(deployment)
        headers = agent_token(deployment)
        body = client.get(f"/api/conversations/{cid}", headers=headers).json()["conversation"]
    answers = [m for m in body["messages"] if m["author"] == "ai"]
    assert answers[0]["text"] == "Delivery takes 2-4 business days."
    [source] = answers[0]["data"]["sources"]
    article = deployment.kb(workspace).article(source["article"])
    assert (source["title"], article.title) == ("How long does shipping take?", "How long does shipping take?")
    assert source["passage"] == f"{article.id}#0"
    assert "sources" not in (answers[1].get("data") or {})  # "I don't know" used nothing
