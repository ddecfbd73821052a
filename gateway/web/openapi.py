"""The OpenAPI document at /openapi.json: Starlette's generator reads each route's docstring (YAML, after an optional
`---`), and the shapes the routes share are the components here, which the docstrings `$ref`. Providers' webhooks are
documented per configured channel, from what each channel's connector declares (its `webhook_schema`)."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.schemas import SchemaGenerator

from gateway import __version__
from gateway.connector import WebhookConnector, WebhookSchema
from gateway.deployment import Deployment

COMPONENTS: dict[str, Any] = yaml.safe_load("""
securitySchemes:
  agentToken:
    type: http
    scheme: bearer
    description: An agent's API token (`baton agent create`). The inbox page sends its session cookie instead, with
      X-CSRF-Token on calls that change something.
  visitorToken:
    type: http
    scheme: bearer
    description: A webchat visitor's session token (POST /webchat/{channel}/sessions); it reaches only that visitor's
      conversations on that channel.
  inboxSession:
    type: apiKey
    in: cookie
    name: baton_session
    description: The team inbox's HttpOnly session cookie (POST /inbox/session sets it).

parameters:
  Channel:
    {name: channel, in: path, required: true, schema: {type: string}, example: webchat,
     description: A webchat channel's name in the config}
  ConversationId: {name: id, in: path, required: true, schema: {type: string}, example: '1'}
  ContactId: {name: id, in: path, required: true, schema: {type: string}, example: '1'}
  LabelName:
    {name: name, in: path, required: true, schema: {type: string, pattern: '^[a-z0-9][a-z0-9_-]{0,29}$'},
     example: vip}
  Shortcut:
    {name: shortcut, in: path, required: true, schema: {type: string, pattern: '^[a-z0-9][a-z0-9_-]{0,29}$'},
     example: thanks}
  Before:
    {name: before, in: query, schema: {type: string, pattern: '^([0-9]{1,19}-[0-9]{1,19})?$'},
     example: '1717171717171-42',
     description: Page back from this message (not included); the previous page's next_before (empty - the newest page)}
  Cursor:
    {name: cursor, in: query, schema: {type: string, pattern: '^([0-9]{1,16}:[0-9]{1,20})?$'},
     example: '1717171717171:42',
     description: Continue after the page that answered this next_cursor (empty or absent - the first page)}

responses:
  BadRequest:
    description: The request is malformed; "error" says how
    content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  Unauthorized:
    description: Missing, unknown, expired or revoked credentials
    content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  CSRF:
    description: A cookie-authenticated call that changes something without the session's X-CSRF-Token, or an
      action for admins only
    content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  UnknownChannel:
    description: No webchat channel of that name
    content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  UnknownAgent:
    description: No agent of that id in the workspace
    content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  UnknownConversation:
    description: No conversation of that id in the agent's workspace
    content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  TooLarge:
    description: The body is larger than the route accepts
    content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
  RateLimited:
    description: Too many requests; Retry-After says when to try again
    headers: {Retry-After: {schema: {type: string, pattern: '^[0-9]+$'}, description: seconds}}
    content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}

schemas:
  Error:
    type: object
    required: [error]
    properties:
      error: {type: string, description: 'What is wrong, for a person to read'}
      owner: {type: string, description: Who holds the conversation (on a 409 conflict)}
      conversation: {type: string, description: The customer's open conversation (on a 409 to a reopen)}
      status: {type: string, description: The conversation's or message's state (on a 409)}
      retry_after: {type: integer, description: Seconds to wait (on a 429)}
      fields:
        type: object
        additionalProperties: {type: string}
        description: The problem with each invalid field (contact form)

  Label:
    type: object
    required: [name, color]
    properties:
      name: {type: string}
      color: {type: string}
      updated_at: {type: integer, description: ms}
      by: {type: string, description: the admin who defined it}
      conversations: {type: integer, description: how many conversations carry it}
  LabelsAnswer:
    type: object
    required: [labels]
    properties: {labels: {type: array, items: {type: string}}}
  CannedReply:
    type: object
    required: [shortcut, text]
    properties:
      shortcut: {type: string}
      text: {type: string}
      updated_at: {type: integer, description: ms}
      by: {type: string}
  NextCursor:
    type: string
    nullable: true
    description: The `cursor` of the next page; null on the last one
  Agent:
    type: object
    required: [id, name, admin]
    properties:
      id: {type: string}
      name: {type: string}
      admin: {type: boolean}
      teams: {type: array, items: {type: string}, description: the teams the agent belongs to}
  AgentRecord:
    allOf:
      - $ref: '#/components/schemas/Agent'
      - properties:
          created_at: {type: integer, description: unix seconds}
          token_expires_at: {type: integer, description: unix seconds; 0 for a token that never expires}
          presence: {type: string, enum: [online, away, offline]}
          presence_since: {type: integer, description: ms; 0 when never set}
          open: {type: integer, description: open chats the agent holds}
  ReportFigures:
    type: object
    required: [conversations, shares, counts, channels, ai_resolution_rate, durable_resolution_rate, durable,
      handover_rate, handover_reasons, times, csat, forms]
    properties:
      conversations: {type: integer, description: conversations started}
      shares:
        type: object
        description: each outcome's share of `conversations`; they add up to 1
        required: [ai_resolved, handed_over, abandoned, open]
        properties:
          ai_resolved: {type: number}
          handed_over: {type: number}
          abandoned: {type: number}
          open: {type: number}
      counts:
        type: object
        description: conversations, the four outcomes, auto_resolved, returned, forms_sent, forms_captured
        additionalProperties: {type: integer}
      channels: {type: object, description: conversations started by channel, additionalProperties: {type: integer}}
      ai_resolution_rate: {type: number}
      durable_resolution_rate: {type: number, description: 'AI resolved and the customer not back within
          reports.durable_days, of conversations'}
      durable: {type: integer}
      handover_rate: {type: number}
      handover_reasons: {type: object, description: handovers by route, additionalProperties: {type: integer}}
      times:
        type: object
        description: first_response, to_assignment, to_human_reply, resolution
        additionalProperties:
          type: object
          required: [p50, p90, count, buckets]
          properties:
            p50: {type: number, nullable: true, description: seconds}
            p90: {type: number, nullable: true, description: seconds}
            count: {type: integer}
            buckets: {type: array, items: {type: integer}}
      csat:
        type: object
        description: the ratings of conversations the AI resolved (ai) and the people resolved (human)
        additionalProperties:
          type: object
          required: [responses, average, satisfied, ratings]
          properties:
            responses: {type: integer}
            average: {type: number, nullable: true}
            satisfied: {type: number, description: share of 4 and 5}
            ratings: {type: array, items: {type: integer}, description: 'how many 1, 2, 3, 4 and 5'}
      forms:
        type: object
        required: [sent, captured]
        properties:
          sent: {type: integer}
          captured: {type: integer}
  Report:
    allOf:
      - {$ref: '#/components/schemas/ReportFigures'}
      - type: object
        required: [from, to, channel, channels_seen, buckets, series]
        properties:
          channels_seen: {type: array, items: {type: string}, description: the configured channels and those in
              the range's figures}
          from: {type: string, format: date}
          to: {type: string, format: date}
          channel: {type: string, nullable: true}
          buckets: {type: array, items: {type: integer}, description: upper bounds (seconds) of the time buckets}
          series:
            type: array
            description: each day's counts, shares and rates (the times, CSAT and handovers are the range's above)
            items:
              type: object
              required: [day, conversations, shares, counts, ai_resolution_rate, durable_resolution_rate,
                handover_rate]
              properties:
                day: {type: string, format: date}
                conversations: {type: integer}
                shares: {type: object, additionalProperties: {type: number}}
                counts: {type: object, additionalProperties: {type: integer}}
                ai_resolution_rate: {type: number}
                durable_resolution_rate: {type: number}
                handover_rate: {type: number}
  AssignmentAnswer:
    type: object
    required: [assignment]
    properties:
      assignment:
        type: object
        required: [mode, capacity, source, file, queued]
        properties:
          mode: {type: string, enum: [manual, round_robin, balanced]}
          capacity: {type: integer, description: the most open chats an agent holds before being skipped}
          source: {type: string, enum: [settings, config.yaml], description: which one is in force}
          file:
            type: object
            description: config.yaml's value (Settings' wins until this changes)
            properties: {mode: {type: string}, capacity: {type: integer}}
          queued: {type: integer, description: chats waiting for a free agent}
  AIAgentAnswer:
    type: object
    required: [ai_agent]
    properties:
      ai_agent:
        type: object
        required: [name, model, published, model_status]
        properties:
          name: {type: string}
          model: {type: string}
          published: {type: boolean}
          model_status:
            description: The model's circuit breaker. open, while its failures stop the AI asking it (each
              conversation goes to a human at once); probing, once the cool-down passed (the next turn tries it);
              closed, otherwise.
            type: object
            required: [state, model, failures, last_error, opened_at, until]
            properties:
              state: {type: string, enum: [closed, open, probing]}
              model: {type: string}
              failures: {type: integer, description: Failed answers in a row}
              last_error: {type: string}
              opened_at: {type: integer, nullable: true, description: 'ms since the epoch'}
              until: {type: integer, nullable: true, description: 'ms since the epoch: no call before this'}
  InboxSession:
    type: object
    required: [agent, workspace, workspace_name, csrf]
    properties:
      agent: {$ref: '#/components/schemas/Agent'}
      workspace: {type: string}
      workspace_name: {type: string}
      csrf: {type: string, description: Send it back as X-CSRF-Token on calls that change something}

  Identity:
    type: object
    required: [channel, channel_type, address]
    properties:
      channel: {type: string}
      channel_type: {type: string, description: The connector's type; empty for a channel no longer configured}
      address: {type: string, description: 'The customer on that channel as a person reads it ("+34612…")'}
  ConversationFields:
    type: object
    required: [id, customer, status, owner, created_at]
    properties:
      id: {type: string}
      customer: {type: string, description: 'Their profile name, else their address'}
      sender: {type: string}
      status: {type: string, enum: [open, closed]}
      owner: {type: string, description: '"ai", "none" (waiting for a human) or "agent:<id>"'}
      team: {type: string, description: The team its handovers go to (its channel's or the workspace's)}
      profile_name: {type: string}
      labels: {type: array, items: {type: string}, description: Its labels (left out when none)}
      snoozed_until:
        type: string
        description: 'While snoozed: when it wakes (unix ms), or "next" (the customer''s next message)'
      created_at: {type: integer, description: unix ms}
      updated_at: {type: integer}
      last_text: {type: string}
      last_author: {type: string}
      last_message_at: {type: integer}
      waiting_since: {type: integer}
      handover_reason: {type: string}
      handover_summary: {type: string}
      handover_at: {type: integer}
      closed_at: {type: integer}
      previous: {type: string, description: The customer's conversation before this one}
      form_state: {type: string, enum: [sent, done], description: The no-human contact form's state}
      after_hours: {type: integer, description: 'Started waiting for a human outside business hours (unix ms), and
          nobody has taken it since: the inbox lists it first'}
      sla_kind: {type: string, enum: [first, next], description: 'The response target that runs (sla:): the first
          human reply after a handover, or the next one after the customer wrote'}
      sla_due: {type: integer, description: 'When that target is due, unix ms (counting business hours only)'}
      sla_breached: {type: integer, description: 'When it was missed, unix ms (then the chat is in the overdue view)'}
      outcome: {type: string, enum: [open, ai_resolved, handed_over, abandoned], description: 'for the reports
          (see GET /api/reports)'}
      csat: {type: integer, minimum: 1, maximum: 5, description: the customer's rating after the close}
      csat_by: {type: string, enum: [ai, human], description: who the rating is attributed to}
      csat_comment: {type: string}
      window_closes_at:
        type: integer
        description: 'Channels with a reply window (24 hours after the customer''s last message on WhatsApp, as the
          provider stamped it): when it closes, unix ms. After it, only a template reaches the customer.'
      delivery_reports:
        type: boolean
        description: 'false where the channel cannot report what became of a reply (Twilio with public_url unset: no
          status callbacks); absent otherwise'
  Conversation:
    description: A conversation as the inbox lists it; empty fields are left out
    allOf:
      - $ref: '#/components/schemas/Identity'
      - $ref: '#/components/schemas/ConversationFields'
      - type: object
        required: [contact]
        properties: {contact: {type: string, description: The contact's id}}
  ConversationDetail:
    description: A conversation with its newest messages (page back for older ones) and its contact
    allOf:
      - $ref: '#/components/schemas/Identity'
      - $ref: '#/components/schemas/ConversationFields'
      - type: object
        required: [messages, has_more, next_before, contact]
        properties:
          messages:
            type: array
            items: {$ref: '#/components/schemas/Message'}
            description: The newest 100 messages, oldest first
          has_more: {type: boolean, description: Older messages exist}
          next_before:
            type: string
            nullable: true
            description: The `before` that pages back (GET /api/conversations/{id}/messages?before=…)
          contact: {$ref: '#/components/schemas/Contact'}
          templates:
            type: array
            description: The templates the conversation's channel may send (outside its reply window too)
            items: {$ref: '#/components/schemas/Template'}
          limits:
            type: object
            required: [text, channel]
            description: What a reply may be
            properties:
              text: {type: integer, description: 'Characters of one reply or note (POST …/messages and …/notes)'}
              channel:
                type: integer
                description: 'Characters of one message on the channel: a longer reply goes out as several'
  Template:
    type: object
    required: [key, name, language, body, params]
    properties:
      key: {type: string, description: What POST …/messages names it by}
      name: {type: string, description: The provider's name (Meta) or content SID (Twilio)}
      language: {type: string}
      body: {type: string, description: 'Its text, with {{1}}-style placeholders'}
      params: {type: array, items: {type: string}, description: 'What each placeholder stands for, in order'}
  MessagePage:
    type: object
    required: [messages, has_more, next_before]
    properties:
      messages: {type: array, items: {$ref: '#/components/schemas/Message'}, description: Oldest first}
      has_more: {type: boolean, description: Older messages exist}
      next_before: {type: string, nullable: true, description: The `before` of the page before this one}
  ConversationAnswer:
    type: object
    required: [conversation]
    properties: {conversation: {$ref: '#/components/schemas/ConversationDetail'}}
  Message:
    description: One entry of a conversation's history, oldest first
    type: object
    required: [id, author, text, created_at, kind, visibility]
    properties:
      id: {type: string, pattern: '^[0-9]+-[0-9]+$'}
      author: {type: string, enum: [customer, ai, agent, system]}
      text: {type: string}
      created_at: {type: integer, description: unix ms}
      kind:
        type: string
        description: 'message, notice, handover, assignment, contact_form, contact_captured, closed…'
      visibility: {type: string, enum: [public, internal], description: internal notes are for agents only}
      agent: {type: string}
      agent_name: {type: string}
      data:
        type: object
        description: >-
          Extra facts about the message; on an AI answer, `sources`: the knowledge passages it used
          ({article, passage, title, url})
      media: {type: array, items: {type: object}}
      rich: {type: object}
      delivery: {type: string, description: 'Channels that send: pending, sending, sent, delivered, failed, unknown…'}
      delivery_error: {type: string, description: 'Why a delivery failed or is unknown, in words'}
      delivery_final: {type: boolean, description: 'The delivery failed for good (not on WhatsApp, blocked, the window
          closed): sending it again cannot help, and POST …/resend answers 409'}
  Templates:
    type: object
    required: [channel, templates]
    properties:
      channel: {type: string}
      templates:
        type: array
        items:
          type: object
          properties:
            key: {type: string, description: What POST …/messages takes as "template"}
            name: {type: string, description: 'The provider''s name (Meta) or content SID (Twilio)'}
            language: {type: string}
            body: {type: string, description: 'Its text, with {{1}}-style placeholders'}
            params: {type: array, items: {type: string}, description: What each placeholder stands for}
      error: {type: string, description: Why the provider could not be asked (config.yaml's templates are listed)}
  MessageId:
    type: object
    required: [id]
    properties: {id: {type: string, pattern: '^[0-9]+-[0-9]+$'}}
  Contact:
    type: object
    required: [id, identities, conversations]
    properties:
      id: {type: string}
      name: {type: string}
      phone: {type: string}
      email: {type: string}
      message: {type: string}
      created_at: {type: string, pattern: '^[0-9]+$', description: unix ms}
      updated_at: {type: string, pattern: '^[0-9]+$'}
      captured_at: {type: string, pattern: '^[0-9]+$'}
      captured_in: {type: string, description: The conversation whose contact form they filled in}
      identities: {type: array, items: {$ref: '#/components/schemas/Identity'}}
      conversations: {type: array, items: {type: string}}

  WidgetConfig:
    type: object
    required: [channel, title, greeting, ai_name, replies, limits, contact_form]
    properties:
      channel: {type: string}
      title: {type: string}
      greeting: {type: string}
      ai_name: {type: string}
      replies:
        type: string
        enum: [ai, team]
        description: Who answers a new conversation now, the AI at once or a person (the AI is unpublished, or its
          model is failing)
      team_back:
        type: string
        description: Outside business hours only, when the team is back, as the customer reads it ("tomorrow at
          09:00"), in the workspace's language
      team_back_in:
        type: object
        additionalProperties: {type: string}
        description: 'Outside business hours only, team_back in each of the six languages (es: "mañana a las 09:00")'
      language:
        type: string
        enum: [en, es, fr, de, pt, it]
        description: The workspace's language, which the widget speaks until the conversation's is known
      limits:
        type: object
        required: [text]
        properties: {text: {type: integer, description: The longest message a visitor may send}}
      csat: {type: boolean, description: the widget asks for a rating (1-5) when a conversation closes}
      contact_form:
        type: object
        required: [fields]
        properties:
          fields:
            type: array
            items:
              type: object
              required: [name, label, type, required, max_length]
              properties:
                name: {type: string}
                label: {type: string}
                type: {type: string}
                required: {type: boolean}
                max_length: {type: integer}
  VisitorEventId:
    type: string
    pattern: '^([0-9]+(/([0-9]{1,19}(-[0-9]{1,19})?)?)?)?$'
    description: '"<conversation>/<message id>" of the last event received'
  StreamId:
    type: string
    pattern: '^([0-9]{1,19}(-[0-9]{1,19})?)?$'
    description: The id of the last event received
  AgentEvent:
    type: object
    required: [id, event, data]
    properties:
      id: {$ref: '#/components/schemas/StreamId'}
      event:
        type: string
        enum: [conversation.created, message.created, conversation.handover, conversation.assigned,
               conversation.closed, contact.form_sent, contact.captured, message.status, ai_agent.updated,
               ai_agent.model, agent.presence, agent.created, assignment.updated, conversation.reopened,
               note.mention, session.ended, stream.reset]
      data: {type: string, description: 'A JSON object: the event, with its "type"'}
  VisitorEvent:
    type: object
    required: [id, event, data]
    properties:
      id: {$ref: '#/components/schemas/VisitorEventId'}
      event: {type: string, enum: [message]}
      data: {type: string, description: 'A JSON object: the conversation id and a visitor message'}
  Recorded:
    type: object
    required: [id, conversation, duplicate]
    properties:
      id: {type: string, pattern: '^[0-9]+-[0-9]+$'}
      conversation: {type: string}
      duplicate: {type: boolean, description: The same client_id was recorded before}
  Party:
    type: string
    enum: [ai, waiting, agent, closed]
    description: Who the visitor is talking to, the AI, nobody yet (waiting for a person) or a person; or closed
  VisitorMessage:
    type: object
    required: [id, author, created_at, kind]
    properties:
      with: {$ref: '#/components/schemas/Party'}
      id: {type: string, pattern: '^[0-9]+-[0-9]+$'}
      author: {type: string, enum: [customer, ai, agent, system]}
      text: {type: string}
      created_at: {type: integer}
      kind: {type: string}
      agent_name: {type: string}
      rich: {type: object}
      media: {type: array, items: {type: object}}
""")

schemas = SchemaGenerator({"openapi": "3.0.3", "info": {"title": "Baton", "version": __version__},
                           "components": COMPONENTS})


#: A connector that declares no webhook_schema: its requests are documented as opaque.
UNDECLARED = WebhookSchema(summary="A provider's webhook", request={"application/octet-stream": {"schema": {}}},
                           security_scheme="", security={})
WEBHOOK_ERRORS = yaml.safe_load("""
400:
  description: A malformed body, with the reason
  content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
403:
  description: Signature missing or invalid
  content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
413: {$ref: '#/components/responses/TooLarge'}
503:
  description: The channel is disabled (missing credentials), or storage is unavailable (the provider retries)
  content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
""")


def document_of(deployment: Deployment, routes: list[Any]) -> dict[str, Any]:
    """The routes' document, with each configured webhook channel's operations as its connector declares them."""
    document: dict[str, Any] = schemas.get_schema(routes=routes)
    document["components"] = copy.deepcopy(document["components"])  # the generator shares COMPONENTS
    schemes = document["components"]["securitySchemes"]
    for channel in deployment.channels.values():
        connector = channel.connector
        if not isinstance(connector, WebhookConnector):
            continue
        declared = connector.webhook_schema or UNDECLARED
        if declared.security_scheme:
            schemes.setdefault(declared.security_scheme, declared.security)
        document["paths"][f"/webhooks/{channel.name}"] = webhook_operations(channel.name, declared,
                                                                           "handshake" in connector.capabilities())
    return document


def webhook_operations(name: str, declared: WebhookSchema, handshake: bool) -> dict[str, Any]:
    security: list[dict[str, list[str]]] = [{declared.security_scheme: []}] if declared.security_scheme else []
    operations: dict[str, Any] = {"post": {
        "summary": f"{declared.summary} (channel {name})",
        "description": "A retried delivery (the same provider id) is recorded once.",
        **({"security": security} if security else {}),
        "requestBody": {"required": True, "content": declared.request},
        "responses": {200: {"description": "Recorded; the body is what the provider expects",
                            "content": {declared.acknowledgement: {"schema": {"type": "string"}}}},
                      **WEBHOOK_ERRORS}}}
    if handshake:
        operations["get"] = {
            "summary": f"The provider's verification of the webhook (channel {name})",
            **({"parameters": declared.handshake} if declared.handshake else {}),
            "responses": {200: {"description": "Verified; the body is what the provider expects",
                                "content": {"text/plain": {"schema": {"type": "string"}}}},
                          403: WEBHOOK_ERRORS[403], 503: WEBHOOK_ERRORS[503]}}
    return operations


async def document(request: Request) -> Response:
    """The OpenAPI document as JSON (Starlette's OpenAPIResponse answers YAML, not what a .json URL promises)."""
    return JSONResponse(document_of(request.app.state.deployment, request.app.routes))
