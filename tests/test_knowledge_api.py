"""Managing the knowledge base through the agent API, and "Try the AI" (issue 23)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.deployment import Deployment
from gateway.web.app import create_app
from tests.conftest import Visitor, agent_token, chat_channel, run_jobs

pytestmark = pytest.mark.redis

RETURNS_MD = """# Returns policy
You can return any lamp within 30 days.

## Refunds
Refunds arrive within 5 business days after we receive the lamp.

# Gift cards
Digital gift cards from 25 to 500 EUR, valid three years.
"""

FAQ_HTML = """<html><head><title>Gift wrapping</title><script>alert(1)</script></head>
<body><nav>Home | Shop</nav><h1>Gift wrapping</h1><p>We wrap any order in recycled paper for 3 EUR.</p>
<ul><li>Choose it at checkout.</li><li>Add a card with your message.</li></ul><footer>© Lumen</footer></body></html>"""


@pytest.fixture
def api(deployment: Deployment) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    with TestClient(create_app(deployment)) as client:
        admin = agent_token(deployment, "ada", admin=True)
        agent = agent_token(deployment, "bo")
        yield client, admin, agent


def test_importing_markdown_makes_one_article_per_heading_and_the_ai_answers_from_it(
        deployment: Deployment, api: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, admin, _ = api
    answer = client.post("/api/knowledge/import", headers=admin, json={"name": "returns.md", "content": RETURNS_MD})
    assert answer.status_code == 201, answer.text
    assert [a["title"] for a in answer.json()["articles"]] == ["Returns policy", "Gift cards"]
    returns = answer.json()["articles"][0]
    detail = client.get(f"/api/knowledge/{returns['id']}", headers=admin).json()["article"]
    assert [p["title"] for p in detail["passages"]] == ["Returns policy", "Returns policy — Refunds"]
    assert detail["source"] == "file returns.md"

    visitor = Visitor(client, chat_channel(deployment))
    visitor.say("Do you sell gift cards?")
    run_jobs(deployment)
    assert visitor.texts("ai")[-1] == "Digital gift cards from 25 to 500 EUR, valid three years."

    again = client.post("/api/knowledge/import", headers=admin,
                        json={"name": "returns.md", "content": "# Returns policy\nWithin 60 days now."})
    assert again.status_code == 201
    titles = [a["title"] for a in client.get("/api/knowledge", headers=admin).json()["articles"]]
    assert titles.count("Returns policy") == 1 and "Gift cards" not in titles  # the file's articles replaced


def test_importing_html_keeps_the_text_and_drops_scripts_and_navigation(
        api: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, admin, _ = api
    answer = client.post("/api/knowledge/import", headers=admin,
                         json={"name": "wrapping.html", "content": FAQ_HTML, "url": "https://lumen.example/wrap"})
    assert answer.status_code == 201, answer.text
    [article] = answer.json()["articles"]
    detail = client.get(f"/api/knowledge/{article['id']}", headers=admin).json()["article"]
    assert detail["title"] == "Gift wrapping" and detail["url"] == "https://lumen.example/wrap"
    assert "recycled paper for 3 EUR" in detail["body"] and "- Choose it at checkout." in detail["body"]
    assert "alert" not in detail["body"] and "Home | Shop" not in detail["body"] and "©" not in detail["body"]


@pytest.mark.parametrize(("body", "reason"), [
    ({"name": "a.pdf", "content": "%PDF-1.7"}, "PDF is not supported"),
    ({"name": "a.md", "content": ""}, "'content'"),
    ({"name": "a.md", "content": "# Title only\n"}, "holds no article"),
    ({"name": "a.md", "content": "# T\nx", "format": "docx"}, "'format'"),
    ({"name": "a.md", "content": "# T\nx", "url": "javascript:alert(1)"}, "'url'"),
    ({"content": "# T\nx"}, "'name'"),
])
def test_a_bad_import_is_a_400_saying_why(api: tuple[TestClient, dict[str, str], dict[str, str]],
                                          body: dict[str, str], reason: str) -> None:
    client, admin, _ = api
    answer = client.post("/api/knowledge/import", headers=admin, json=body)
    assert answer.status_code == 400 and reason in answer.text, answer.text


def test_an_admin_adds_edits_and_deletes_an_article_and_an_agent_may_only_read(
        api: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, admin, agent = api
    assert client.post("/api/knowledge", headers=agent, json={"title": "T", "body": "B"}).status_code == 403
    created = client.post("/api/knowledge", headers=admin, json={"title": "Loyalty points", "body": "1 point a EUR."})
    assert created.status_code == 201
    article_id = created.json()["article"]["id"]
    assert client.get(f"/api/knowledge/{article_id}", headers=agent).status_code == 200
    edited = client.put(f"/api/knowledge/{article_id}", headers=admin, json={"body": "2 points a EUR."})
    assert edited.json()["article"]["passages"][0]["text"] == "2 points a EUR."
    assert client.put(f"/api/knowledge/{article_id}", headers=admin, json={}).status_code == 400
    assert client.put(f"/api/knowledge/{article_id}", headers=admin, json={"title": ""}).status_code == 400
    assert client.delete(f"/api/knowledge/{article_id}", headers=agent).status_code == 403
    assert client.delete(f"/api/knowledge/{article_id}", headers=admin).json() == {"deleted": article_id}
    assert client.get(f"/api/knowledge/{article_id}", headers=admin).status_code == 404
    assert client.delete(f"/api/knowledge/{article_id}", headers=admin).status_code == 404


def test_try_the_ai_gives_the_answer_and_its_sources_without_a_conversation(
        deployment: Deployment, api: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, admin, agent = api
    assert client.post("/api/knowledge/try", headers=agent, json={"question": "x"}).status_code == 403
    tried = client.post("/api/knowledge/try", headers=admin, json={"question": "how long does delivery take?"})
    assert tried.status_code == 200, tried.text
    body = tried.json()
    assert body["answer"] == "Delivery takes 2-4 business days." and not body["unknown"]
    assert [s["title"] for s in body["sources"]] == ["How long does shipping take?"]
    unknown = client.post("/api/knowledge/try", headers=admin, json={"question": "Do you sell sofas?"}).json()
    assert unknown["unknown"] and unknown["sources"] == [] and unknown["passages"] == []
    assert client.post("/api/knowledge/try", headers=admin, json={"question": ""}).status_code == 400
    assert client.get("/api/conversations", headers=admin).json()["conversations"] == []  # nothing stored
