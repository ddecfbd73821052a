"""The knowledge base on the agent API: articles (import, list, read with their passages, add, edit, delete) and
"Try the AI" (admins)."""

from __future__ import annotations

import functools
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import ai, retrieval
from gateway.config import AIAgentConfig
from gateway.deployment import Deployment
from gateway.errors import BadRequest, ModelFailed, NotFound
from gateway.llm import install_provider
from gateway.plugin_host import llm_providers
from gateway.retrieval.base import MAX_BODY, MAX_TITLE, Article, new_id
from gateway.retrieval.importing import detect_format, split_file
from gateway.web.api import current_agent, deployment_of
from gateway.web.auth import require_admin
from gateway.web.http import json_body

MAX_IMPORT = 2 * 1024 * 1024  # bytes of JSON: a file of up to about 2 MB
MAX_URL = 2000
MAX_QUESTION = 1000


def _article_view(article: Article, passages: list[retrieval.Passage] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"id": article.id, "title": article.title, "source": article.source, "url": article.url,
                            "origin": article.origin, "updated_at": article.updated_at,
                            "passages": len(article.passages)}
    if passages is not None:
        view["body"] = article.body
        view["passages"] = [{"id": p.id, "title": p.title, "text": p.text} for p in passages]
    return view


def _text(body: dict[str, Any], name: str, limit: int, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"'{name}' must be a non-empty string")
    if len(value) > limit:
        raise BadRequest(f"'{name}' is longer than {limit:,} characters")
    return value.strip()


def _url(body: dict[str, Any]) -> str:
    url = _text(body, "url", MAX_URL, required=False)
    if url and not url.startswith(("https://", "http://")):
        raise BadRequest("'url' must be an http(s) address")
    return url


async def list_articles(request: Request) -> Response:
    """
    summary: The knowledge base's articles
    security: [{agentToken: []}]
    responses:
      200:
        description: Every article, by title (its passages counted)
        content:
          application/json:
            schema: {type: object, required: [articles], properties: {articles: {type: array, items: {type: object}}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    base = deployment_of(request).kb(agent.workspace_id)
    articles = await run_in_threadpool(base.articles)
    return JSONResponse({"articles": [_article_view(a) for a in articles]})


async def get_article(request: Request) -> Response:
    """
    summary: One article with its body and its passages, as retrieval gives them to the model
    security: [{agentToken: []}]
    parameters: [{name: id, in: path, required: true, schema: {type: string, maxLength: 100}}]
    responses:
      200:
        description: The article
        content:
          application/json:
            schema: {type: object, required: [article], properties: {article: {type: object}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      404: {description: No such article, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    base = deployment_of(request).kb(agent.workspace_id)

    def read() -> dict[str, Any]:
        article = base.article(request.path_params["id"])
        return _article_view(article, base.passages(article))

    return JSONResponse({"article": await run_in_threadpool(read)})


async def create_article(request: Request) -> Response:
    """
    summary: Add an article (admins); every gateway and worker answers from it at their next turn
    security: [{agentToken: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [title, body]
            properties:
              title: {type: string, maxLength: 300}
              body: {type: string, maxLength: 200000, description: Markdown}
              url: {type: string, maxLength: 2000, description: a page the widget may link the customer to}
    responses:
      201:
        description: The article and its passages
        content:
          application/json:
            schema: {type: object, required: [article], properties: {article: {type: object}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    body = await json_body(request, MAX_IMPORT)
    title, text, url = _text(body, "title", MAX_TITLE), _text(body, "body", MAX_BODY), _url(body)
    base = deployment_of(request).kb(agent.workspace_id)

    def write() -> dict[str, Any]:
        article = base.put(Article(new_id(title), title, text, source=f"added by {agent.id}", url=url))
        return _article_view(article, base.passages(article))

    return JSONResponse({"article": await run_in_threadpool(write)}, status_code=201)


async def update_article(request: Request) -> Response:
    """
    summary: Edit an article (admins); an article from config.yaml becomes the admins' (a config change leaves it)
    security: [{agentToken: []}]
    parameters: [{name: id, in: path, required: true, schema: {type: string, maxLength: 100}}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            properties:
              title: {type: string, maxLength: 300}
              body: {type: string, maxLength: 200000}
              url: {type: string, maxLength: 2000}
    responses:
      200:
        description: The article and its passages
        content:
          application/json:
            schema: {type: object, required: [article], properties: {article: {type: object}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {description: No such article, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    body = await json_body(request, MAX_IMPORT)
    changes: dict[str, str] = {}
    if "title" in body:
        changes["title"] = _text(body, "title", MAX_TITLE)
    if "body" in body:
        changes["body"] = _text(body, "body", MAX_BODY)
    if "url" in body:
        changes["url"] = _url(body)
    if not changes:
        raise BadRequest("give at least one of 'title', 'body' or 'url'")
    base = deployment_of(request).kb(agent.workspace_id)

    def write() -> dict[str, Any]:
        article = base.article(request.path_params["id"])
        for name, value in changes.items():
            setattr(article, name, value)
        article.origin = "admin"
        base.put(article)
        return _article_view(article, base.passages(article))

    return JSONResponse({"article": await run_in_threadpool(write)})


async def delete_article(request: Request) -> Response:
    """
    summary: Delete an article (admins)
    security: [{agentToken: []}]
    parameters: [{name: id, in: path, required: true, schema: {type: string, maxLength: 100}}]
    responses:
      200:
        description: The article is deleted
        content:
          application/json:
            schema: {type: object, required: [deleted], properties: {deleted: {type: string}}}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404: {description: No such article, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    base = deployment_of(request).kb(agent.workspace_id)
    await run_in_threadpool(base.delete, request.path_params["id"])
    return JSONResponse({"deleted": request.path_params["id"]})


async def import_file(request: Request) -> Response:
    """
    summary: Import a Markdown or HTML file into the knowledge base (admins)
    description: Markdown makes one article per top-level heading (`# …`; the file's name titles a file without
      one), its `##` sub-headings its passages. HTML makes one article titled by its <title> or first <h1>; scripts,
      navigation, headers and footers are left out. Importing a file of the same name again replaces its articles.
      PDF is not supported.
    security: [{agentToken: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [name, content]
            properties:
              name: {type: string, maxLength: 300, example: returns.md}
              content: {type: string, description: the file's text (UTF-8)}
              format: {type: string, enum: [markdown, html], description: "by default, from the name's extension"}
              url: {type: string, maxLength: 2000, description: "where the page lives, for the widget's source link"}
    responses:
      201:
        description: The articles imported
        content:
          application/json:
            schema: {type: object, required: [articles], properties: {articles: {type: array, items: {type: object}}}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      413: {$ref: '#/components/responses/TooLarge'}
      429: {$ref: '#/components/responses/RateLimited'}
    """
    agent = await current_agent(request)
    require_admin(agent)
    body = await json_body(request, MAX_IMPORT)
    name = _text(body, "name", MAX_TITLE)
    content = body.get("content")
    if not isinstance(content, str) or not content.strip():
        raise BadRequest("'content' must be the file's text, not empty")
    declared = body.get("format")
    if declared is not None and not isinstance(declared, str):
        raise BadRequest("'format' must be markdown or html")
    file_format = detect_format(name, declared)
    url = _url(body)
    found = split_file(name, content, file_format)
    if not found:
        raise BadRequest(f"{name!r} holds no article: no text under its headings")
    for title, text in found:
        if len(title) > MAX_TITLE or len(text) > MAX_BODY:
            raise BadRequest(f"the article {title[:80]!r} is too long (title ≤ {MAX_TITLE}, body ≤ {MAX_BODY:,})")
    base = deployment_of(request).kb(agent.workspace_id)
    source = f"file {name}"

    def write() -> list[dict[str, Any]]:
        replaced = [a.id for a in base.articles() if a.source == source]
        articles = [Article(new_id(title), title, text, source=source, url=url) for title, text in found]
        base.put_many(articles, remove=replaced)
        return [_article_view(a) for a in articles]

    return JSONResponse({"articles": await run_in_threadpool(write)}, status_code=201)


async def try_ai(request: Request) -> Response:
    """
    summary: Try the AI (admins) — the answer the AI would give to a question now, and the passages it used
    description: Runs retrieval and the workspace's model as a turn would (a hosted model is called), whether the AI
      agent is published or not; nothing is stored and no customer sees it.
    security: [{agentToken: []}]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [question]
            properties:
              question: {type: string, maxLength: 1000, example: 'How long does shipping take?'}
              previous: {type: string, maxLength: 1000, description: "the question before, for a short follow-up"}
    responses:
      200:
        description: The answer, whether the AI said it does not know, and the passages given to the model
        content:
          application/json:
            schema:
              type: object
              required: [answer, unknown, sources, passages]
              properties:
                answer: {type: string}
                unknown: {type: boolean}
                handover: {type: string, nullable: true}
                sources: {type: array, items: {type: object}}
                passages: {type: array, items: {type: object}}
      400: {$ref: '#/components/responses/BadRequest'}
      401: {$ref: '#/components/responses/Unauthorized'}
      403: {$ref: '#/components/responses/CSRF'}
      404:
        description: The workspace has no AI agent
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
      429: {$ref: '#/components/responses/RateLimited'}
      502:
        description: The model failed
        content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
    """
    agent = await current_agent(request)
    require_admin(agent)
    body = await json_body(request)
    question = _text(body, "question", MAX_QUESTION)
    previous = _text(body, "previous", MAX_QUESTION, required=False)
    deployment = deployment_of(request)
    config = deployment.workspace(agent.workspace_id).ai_agent
    if config is None:
        raise NotFound("this workspace has no AI agent configured")
    return JSONResponse(await run_in_threadpool(_try, deployment, agent.workspace_id, config, question, previous))


@functools.cache
def _models_installed() -> bool:
    """The plugins' model providers (the offline model is one), installed in this gateway process the first time an
    admin tries the AI (workers install them at start-up)."""
    for name, handler in llm_providers().items():
        install_provider(name, handler)
    return True


def _try(deployment: Deployment, workspace_id: str, config: AIAgentConfig, question: str,
         previous: str) -> dict[str, Any]:
    _models_installed()
    index = deployment.knowledge_index(workspace_id, deployment.kb(workspace_id).version())
    hits = retrieval.retrieve(index, question, previous, config.knowledge)
    history: list[Any] = [{"id": "0-0", "author": "customer", "visibility": "public", "text": previous}] \
        if previous else []
    history.append({"id": "0-1", "author": "customer", "visibility": "public", "text": question})
    try:
        reply = ai.respond(config, retrieval.entries(hits), history, ranked=True)
    except Exception as exc:  # noqa: BLE001 - said to the admin, as the turn would hand over
        raise ModelFailed(f"the model failed: {ai.describe_failure(config, exc)}") from exc
    return {"answer": reply.text, "unknown": reply.unknown, "handover": reply.handover,
            "sources": retrieval.sources(hits, reply.unknown, ai.is_offline(config)),
            "passages": [{"id": h.passage.id, "article": h.passage.article, "title": h.passage.title,
                          "text": h.passage.text, "coverage": round(h.coverage, 3)} for h in hits]}
