"""Write a store the way an earlier release wrote it, and save it as a fixture for tests/test_migrations.py.

The earlier release's own state script and key templates are taken from git history (`git show
<commit>:gateway/handover/state.lua`), rendered as that release's store rendered them, and driven through the
conversations a support team has at any moment: answered by the AI, handed over with the contact form captured,
WhatsApp replies sent, delivered, unknown and still queued, an agent's reply, a conversation closed and started
again, a no-human timer still armed. Agents and visitor sessions are written as that release wrote them, and their
secrets kept in the fixture, so the test can sign in with them after upgrading.

    python -m tests.upgrade.make_store --commit 460e353 --out tests/data/upgrade/schema0-460e353.json

Commits: 460e353 is the last release whose histories were streams (schema 0); 215a616 the last one before schema
versions (lists, unversioned: schema 1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from gateway.redis_server import EmbeddedValkey
from tests.upgrade.dump import dump

WORKSPACE = "acme"
WEBCHAT = "acme-chat"
WHATSAPP = "acme-wa"
ROOT = Path(__file__).resolve().parents[2]


def git_show(commit: str, path: str) -> str:
    return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def old_script(commit: str) -> str:
    """The release's state.lua with its own key templates rendered in, as its store did."""
    namespace: dict[str, Any] = {}
    exec(compile(git_show(commit, "gateway/keys.py"), f"{commit}:gateway/keys.py", "exec"), namespace)  # noqa: S102
    templates = {name: value for name, value in namespace.items() if name.isupper() and isinstance(value, str)}
    table = ", ".join(f"{name} = {json.dumps(template)}" for name, template in templates.items())
    source = git_show(commit, "gateway/handover/state.lua")
    placeholder = "local TEMPLATES = {} -- rendered from gateway/keys.py"
    assert placeholder in source
    return source.replace(placeholder, f"local TEMPLATES = {{{table}}}")


class OldRelease:
    """The earlier release's state script on a server, called as its store called it."""

    def __init__(self, client: redis.Redis, commit: str) -> None:
        self.client = client
        self.sha = client.script_load(old_script(commit))

    def run(self, operation: str, **arguments: Any) -> dict[str, Any]:
        payload = json.dumps({k: v for k, v in arguments.items() if v is not None}, ensure_ascii=False)
        answer: dict[str, Any] = json.loads(self.client.evalsha(self.sha, 0, operation, WORKSPACE, payload))
        assert answer.pop("ok"), (operation, answer)
        time.sleep(0.003)  # distinct milliseconds between operations, as people and webhooks make them
        return answer

    def inbound(self, channel: str, sender: str, provider_id: str, text: str, **extra: Any) -> dict[str, Any]:
        whatsapp = channel == WHATSAPP
        return self.run("inbound", channel=channel, sender=sender, provider_id=provider_id, text=text,
                        customer=extra.pop("customer", sender), delivers=whatsapp, published=True,
                        timeout_ms=120_000, profile_name=extra.pop("profile_name", ""),
                        phone=sender.removeprefix("whatsapp:") if whatsapp else "", **extra)

    def turn(self, cid: str) -> dict[str, str]:
        """The stamp of an AI turn reading the conversation now."""
        cursor, last = self.client.hmget(f"baton:{WORKSPACE}:conv:{cid}", ["ai_cursor", "last_customer"])
        return {"expect": cursor or "", "upto": last or "", "lock": secrets.token_hex(8)}

    def answer(self, cid: str, text: str) -> str:
        return str(self.run("post", conversation=cid, author="ai", text=text, turn=self.turn(cid),
                            agent_name="Lumi", published=True)["message"])

    def send(self, cid: str, outcome: str, provider_id: str = "", reason: str = "") -> str:
        """Take the conversation's outbox and record what became of its next message; that message's id."""
        token = secrets.token_hex(8)
        taken = self.run("outbox_next", conversation=cid, token=token, lock_ms=120_000)
        mid = taken["message"]["id"]
        self.run("outbox_done", conversation=cid, token=token, message=mid, outcome=outcome, provider_id=provider_id,
                 status="sent" if outcome == "sent" else None, reason=reason or None, retry_ms=[1000], grace_ms=0)
        return str(mid)


def agent(client: redis.Redis, agent_id: str, name: str, admin: bool) -> str:
    """An agent and their API token, stored as the earlier releases stored them (the token's digest only)."""
    token = f"baton_{WORKSPACE}_{secrets.token_urlsafe(24)}"
    digest = hashlib.sha256(token.encode()).hexdigest()
    record = {"id": agent_id, "name": name, "admin": admin, "created_at": int(time.time()), "token": digest,
              "token_expires_at": int(time.time()) + 90 * 86400}
    client.hset(f"baton:{WORKSPACE}:agents", agent_id, json.dumps(record))
    client.set(f"baton:{WORKSPACE}:agent-token:{digest}", agent_id, ex=90 * 86400)
    return token


def visitor(client: redis.Redis) -> tuple[str, str]:
    """A webchat visitor and their session token, as the earlier releases issued them."""
    visitor_id, token = secrets.token_hex(12), f"v2.{secrets.token_urlsafe(32)}"
    digest = hashlib.sha256(token.encode()).hexdigest()
    client.set(f"baton:{WORKSPACE}:visitor:{digest}", f"{WEBCHAT}|{visitor_id}", ex=30 * 86400)
    return visitor_id, token


def write_store(client: redis.Redis, commit: str) -> dict[str, Any]:
    """The conversations; what the test needs to know about them (ids, secrets)."""
    old = OldRelease(client, commit)
    client.xgroup_create(f"baton:{WORKSPACE}:notifications", "notifiers", id="0", mkstream=True)
    token = agent(client, "alex", "Alex", admin=True)
    ana, ana_token = visitor(client)
    ben, ben_token = visitor(client)
    wa_one, wa_two, wa_three = "whatsapp:+34600000001", "whatsapp:+34600000002", "whatsapp:+34600000003"

    # Ana (webchat): two questions answered by the AI, a third still waiting for its turn.
    answered = old.inbound(WEBCHAT, ana, f"{ana}:m1", "What are your opening hours?")["conversation"]
    old.answer(answered, "We are open Monday to Friday, 9:00 to 17:00.")
    old.inbound(WEBCHAT, ana, f"{ana}:m2", "How long does shipping take?")
    old.answer(answered, "Delivery takes 2-4 business days.")
    old.inbound(WEBCHAT, ana, f"{ana}:m3", "How do I return a lamp?")

    # Ben (webchat): asks for a person; nobody comes in time; the contact form is sent and filled in.
    waiting = old.inbound(WEBCHAT, ben, f"{ben}:m1", "I want to talk to a person")["conversation"]
    old.run("hand_over", conversation=waiting, turn=old.turn(waiting), reason="The customer asked for a person",
            route="customer", summary="Ben wants a person.", notice="I'll get someone from the team for you.",
            agent_name="Lumi", timeout_ms=1)
    time.sleep(0.01)
    old.run("fire", text="Leave your details and we will get back to you.",
            form={"type": "contact_form", "fields": ["name", "phone", "email", "message"]}, limit=100)
    old.run("capture", conversation=waiting, details={"name": "Ben", "email": "ben@example.com"},
            summary="Ben left contact details: ben@example.com", confirmation="Thank you, Ben!")

    # WhatsApp +…01: a reply delivered, one whose send is unknown, an agent's reply still queued, and a long message.
    whatsapp = old.inbound(WHATSAPP, wa_one, "SM" + "1" * 32, "Hola, is my order shipped?", customer="Carmen",
                           profile_name="Carmen")["conversation"]
    old.answer(whatsapp, "Your order left the warehouse yesterday.")
    delivered = old.send(whatsapp, "sent", provider_id="SM" + "a" * 32)
    old.run("status", channel=WHATSAPP, provider_id="SM" + "a" * 32, status="delivered")
    old.inbound(WHATSAPP, wa_one, "SM" + "2" * 32, "¿Y cuándo llega? " + "é" * 150, customer="Carmen",
                profile_name="Carmen")
    old.answer(whatsapp, "It should arrive on Thursday.")
    unknown = old.send(whatsapp, "unknown", reason="no answer from Twilio")
    old.run("assign", conversation=whatsapp, target="agent:alex", actor="agent:alex", reason="taken",
            notice="Alex from the team has joined.", published=True)
    queued = str(old.run("post", conversation=whatsapp, author="agent", text="I'll check with the courier.",
                         agent="alex", agent_name="Alex")["message"])

    # WhatsApp +…02: closed by an agent with a goodbye (two messages in one millisecond), then a fresh conversation.
    closed = old.inbound(WHATSAPP, wa_two, "SM" + "3" * 32, "Thanks, that's all", customer="+34600000002")[
        "conversation"]
    old.answer(closed, "Glad I could help!")
    old.send(closed, "sent", provider_id="SM" + "b" * 32)
    old.run("assign", conversation=closed, target="agent:alex", actor="agent:alex", reason="taken", published=True)
    old.run("close", conversation=closed, actor="agent:alex", goodbye="Goodbye from Alex!")
    reopened = old.inbound(WHATSAPP, wa_two, "SM" + "4" * 32, "One more thing: do you ship to Portugal?",
                           customer="+34600000002")["conversation"]

    # WhatsApp +…03: handed over, its no-human timer still armed.
    armed = old.inbound(WHATSAPP, wa_three, "SM" + "5" * 32, "support", customer="+34600000003")["conversation"]
    old.run("hand_over", conversation=armed, turn=old.turn(armed), reason="The customer asked for a person",
            route="customer", summary="", notice="", agent_name="Lumi", timeout_ms=3_600_000)
    return {"agent_token": token, "visitors": {"ana": [ana, ana_token], "ben": [ben, ben_token]},
            "conversations": {"answered": answered, "waiting": waiting, "whatsapp": whatsapp, "closed": closed,
                              "reopened": reopened, "armed": armed},
            "messages": {"delivered": delivered, "unknown": unknown, "queued": queued}}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--commit", default="460e353", help="the earlier release (default: 460e353, schema 0)")
    options.add_argument("--out", type=Path, required=True, help="the fixture to write (JSON)")
    args = options.parse_args()
    full = subprocess.run(["git", "rev-parse", args.commit], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as directory:
        server = EmbeddedValkey(Path(directory))
        try:
            client = redis.Redis.from_url(server.start(), decode_responses=True)
            known = write_store(client, full)
            fixture = {"commit": full, "made_by": "python -m tests.upgrade.make_store --commit " + args.commit,
                       "workspace": WORKSPACE, "channels": {"webchat": WEBCHAT, "whatsapp": WHATSAPP}, **known,
                       "keys": dump(client)}
            client.close()
        finally:
            server.stop()
    args.out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(fixture['keys'])} keys written by {full[:12]}")


if __name__ == "__main__":
    main()
