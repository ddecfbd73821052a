"""Upgrades: data written by an earlier release's own code (tests/upgrade/make_store.py keeps the generator of the
fixtures in tests/data/upgrade/) is refused by today's Baton until `baton migrate` brings it forward, then read,
answered and written as if today's release had written it.

Each step of gateway/migrations.py has a test here named test_migration_<version>_… (a test below checks it)."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from starlette.testclient import TestClient

from gateway import keys, migrations, schema
from gateway.config import parse_config
from gateway.deployment import Deployment
from gateway.handover.store import CustomerMessage, Store
from gateway.redis_server import EmbeddedValkey
from gateway.web.app import create_app
from tests.conftest import KNOWLEDGE, baton, run_jobs
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.test_webhooks import post_signed
from tests.upgrade.dump import dump, load

FIXTURES = Path(__file__).parent / "data" / "upgrade"
SCHEMA0 = FIXTURES / "schema0-460e353.json"  # histories as streams
SCHEMA1 = FIXTURES / "schema1-215a616.json"  # lists, before schema versions


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of its own: these tests need a store with nothing else in it (and flush it)."""
    valkey = EmbeddedValkey(tmp_path_factory.mktemp("upgrade-valkey"))
    try:
        yield valkey.start()
    finally:
        valkey.stop()


@pytest.fixture
def client(server: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(server, decode_responses=True)
    connection.flushall()
    try:
        yield connection
    finally:
        connection.close()


def fixture(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def restore(client: redis.Redis, path: Path) -> dict[str, Any]:
    data = fixture(path)
    load(client, data["keys"])
    return data


def deployment_for(url: str, data: dict[str, Any], twilio: FakeTwilio, tmp_path: Path) -> Deployment:
    tree = {"queue": f"q-{uuid.uuid4().hex[:8]}", "secret": "test-secret-0123456789", "workspaces": [{
        "id": data["workspace"],
        "channels": [{"name": data["channels"]["webchat"], "type": "webchat"},
                     {"name": data["channels"]["whatsapp"], "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID,
                      "auth_token": AUTH_TOKEN, "from": "whatsapp:+14155550199", "api_base_url": twilio.base_url}],
        "ai_agent": {"name": "Lumi", "model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}},
    }]}
    return Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=tmp_path), url)


def history(client: redis.Redis, workspace: str, cid: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in client.lrange(f"baton:{workspace}:conv:{cid}:messages", 0, -1)]


# --- refused until migrated -------------------------------------------------------------------------------------

def test_a_store_written_by_a_release_with_stream_histories_is_schema_0_and_refused(client: redis.Redis) -> None:
    restore(client, SCHEMA0)
    with pytest.raises(schema.SchemaMismatch) as refused:
        schema.ensure(client)
    assert "schema 0" in refused.value.reason and "baton migrate" in refused.value.reason
    assert schema.read(client) == schema.State(None, None)  # nothing stamped: the data is not this release's


def test_serve_worker_and_check_refuse_an_old_store_with_what_to_do(client: redis.Redis, server: str,
                                                                     tmp_path: Path) -> None:
    restore(client, SCHEMA0)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"workspaces": [{"id": "acme", "channels": [{"name": "c", "type": "webchat"}]}]}))
    started = time.monotonic()
    served = baton("serve", "--config", str(config), "--redis-url", server, "--port", "0", cwd=tmp_path)
    assert served.returncode == 2, served.stdout + served.stderr
    assert "the data in Redis is schema 0" in served.stderr and "baton migrate" in served.stderr
    assert time.monotonic() - started < 30  # refused before starting any child
    worker = baton("worker", "--config", str(config), "--redis-url", server, "--burst", cwd=tmp_path)
    assert worker.returncode == 2 and "schema 0" in worker.stderr
    checked = baton("check", "--config", str(config), "--redis-url", server, cwd=tmp_path)
    assert checked.returncode == 1
    assert "data: the data in Redis is schema 0" in checked.stdout


def test_readyz_answers_503_with_the_reason_while_the_data_is_old(client: redis.Redis, server: str,
                                                                  tmp_path: Path) -> None:
    data = restore(client, SCHEMA0)
    with FakeTwilio() as twilio:
        deployment = deployment_for(server, data, twilio, tmp_path)
        with TestClient(create_app(deployment)) as http:
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert "schema 0" in ready.json()["reason"] and "baton migrate" in ready.json()["reason"]
        deployment.close()


# --- step 1 -----------------------------------------------------------------------------------------------------

def test_migration_1_histories_become_lists_with_every_reference_renumbered(client: redis.Redis) -> None:
    data = restore(client, SCHEMA0)
    workspace, old = data["workspace"], data["keys"]
    report = migrations.migrate(client)
    assert (report.before, report.after) == (0, 1)
    [(step, counts)] = report.steps
    streams = {name: entry for name, entry in old.items() if entry["type"] == "stream" and ":conv:" in name}
    assert counts["conversations"] == len(streams) == 6
    assert counts["messages"] == sum(len(e["value"]) for e in streams.values())
    assert schema.read(client) == schema.State(1, None)
    renumbered: dict[str, str] = {}
    for name, entry in streams.items():
        cid = name.split(":")[3]
        converted = history(client, workspace, cid)
        assert len(converted) == len(entry["value"])
        for place, ((old_id, fields), new) in enumerate(zip(entry["value"], converted, strict=True)):
            assert new["id"] == f"{old_id.split('-')[0]}-{place}"
            renumbered[f"{cid}|{old_id}"] = f"{cid}|{new['id']}"
            assert new["author"] == fields["author"] and new["text"] == fields["text"]
            for field in ("kind", "visibility", "agent", "agent_name"):
                assert new.get(field) == fields.get(field)
            for field in ("data", "media", "rich"):  # JSON strings in a stream, objects in a list entry
                assert new.get(field) == (json.loads(fields[field]) if field in fields else None)
        conversation = client.hgetall(f"baton:{workspace}:conv:{cid}")
        for field in ("ai_cursor", "last_customer"):
            if field in old[f"baton:{workspace}:conv:{cid}"]["value"]:
                before = old[f"baton:{workspace}:conv:{cid}"]["value"][field]
                assert f"{cid}|{conversation[field]}" == renumbered[f"{cid}|{before}"]
        assert len(conversation["last_text"].encode()) <= 63  # the preview: 60 bytes and "…"
    # Delivery states, the outbox and every "<cid>|<mid>" reference follow their messages.
    delivery = client.hgetall(f"baton:{workspace}:conv:3:delivery")
    old_delivery = old[f"baton:{workspace}:conv:3:delivery"]["value"]
    assert delivery == {renumbered[f"3|{mid}"].split("|")[1]: state for mid, state in old_delivery.items()}
    assert client.lrange(f"baton:{workspace}:conv:3:outbox", 0, -1) == [
        renumbered[f"3|{mid}"].split("|")[1] for mid in old[f"baton:{workspace}:conv:3:outbox"]["value"]]
    references = {name: e for name, e in old.items() if ":dedupe:" in name or ":sent:" in name}
    for name, entry in references.items():
        assert client.get(name) == renumbered[entry["value"]]
        assert client.pttl(name) > 0  # the TTL kept
    moved = [e for e in references.values() if renumbered[e["value"]] != e["value"]]
    assert counts["references"] == len(moved) > 0
    assert not list(client.scan_iter("baton:migrate:*"))


def test_migration_1_interrupted_and_run_again_ends_as_a_run_in_one_go(client: redis.Redis,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    restore(client, SCHEMA0)
    migrations.migrate(client)
    in_one_go = _comparable(dump(client))
    client.flushall()
    restore(client, SCHEMA0)
    calls = []
    real = migrations._renumber_references

    def interrupted(connection: redis.Redis, names: list[str]) -> int:
        calls.append(names)
        if len(calls) == 3:
            raise ConnectionError("the machine went down")
        return real(connection, names)

    monkeypatch.setattr(migrations, "_BATCH", 2)
    monkeypatch.setattr(migrations, "_renumber_references", interrupted)
    with pytest.raises(ConnectionError):
        migrations.migrate(client)
    assert schema.read(client) == schema.State(None, 1)  # marked: every state script refuses meanwhile
    with pytest.raises(schema.SchemaMismatch, match="interrupted"):
        schema.ensure(client)
    monkeypatch.setattr(migrations, "_renumber_references", real)
    report = migrations.migrate(client)
    assert report.after == 1
    assert _comparable(dump(client)) == in_one_go


def _comparable(keys_: dict[str, Any]) -> dict[str, Any]:
    """A dump without what differs between two runs at other times (times to live, the migration's own time)."""
    keys_[keys.SCHEMA]["value"].pop("migrated_at")
    return {name: {k: v for k, v in entry.items() if k != "pttl"} for name, entry in keys_.items()}


def test_migration_1_then_todays_code_reads_answers_and_writes_the_old_conversations(
        client: redis.Redis, server: str, tmp_path: Path) -> None:
    data = restore(client, SCHEMA0)
    result = baton("migrate", "--config", str(_config(tmp_path)), "--redis-url", server, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "step 1 done: 6 conversations" in result.stdout and "the data is now schema 1" in result.stdout
    conversations, messages = data["conversations"], data["messages"]
    agent = {"Authorization": f"Bearer {data['agent_token']}"}
    with FakeTwilio() as twilio:
        deployment = deployment_for(server, data, twilio, tmp_path)
        with TestClient(create_app(deployment)) as http:
            # Every old conversation opens in the inbox (before the migration: 503 WRONGTYPE), with its history.
            for cid in conversations.values():
                detail = http.get(f"/api/conversations/{cid}", headers=agent)
                assert detail.status_code == 200, detail.text
            carmen = http.get(f"/api/conversations/{conversations['whatsapp']}", headers=agent).json()
            states = {m["id"]: m.get("delivery") for m in carmen["conversation"]["messages"]}
            delivered = _new_id(client, data, conversations["whatsapp"], messages["delivered"])
            unknown = _new_id(client, data, conversations["whatsapp"], messages["unknown"])
            assert states[delivered] == "delivered" and states[unknown] == "unknown"
            # A returning visitor's session still works and shows their history.
            ana, token = data["visitors"]["ana"]
            seen = http.get(f"/webchat/{data['channels']['webchat']}/messages",
                            headers={"Authorization": f"Bearer {token}"}).json()
            assert [m["text"] for m in seen["messages"]][:2] == ["What are your opening hours?",
                                                                 "We are open Monday to Friday, 9:00 to 17:00."]
            # Twilio retrying an old message: recorded once (the old dedupe record, renumbered).
            retry = post_signed(http, _twilio_form("SM" + "1" * 32, "Hola, is my order shipped?"),
                                url="http://testserver/webhooks/acme-wa", path="/webhooks/acme-wa")
            assert retry.status_code == 200
            # A status callback for a message the old release sent reaches that message.
            status = post_signed(http, {"MessageSid": "SM" + "a" * 32, "MessageStatus": "read",
                                        "AccountSid": ACCOUNT_SID},
                                 url="http://testserver/webhooks/acme-wa", path="/webhooks/acme-wa")
            assert status.status_code == 200
            # The returning WhatsApp customer writes again: recorded in their old conversation and answered.
            again = post_signed(http, _twilio_form("SM" + "9" * 32, "How long does shipping take?",
                                                   sender="whatsapp:+34600000002"),
                                url="http://testserver/webhooks/acme-wa", path="/webhooks/acme-wa")
            assert again.status_code == 200
            run_jobs(deployment)
            assert http.get("/readyz").json()["status"] in ("ready", "unavailable")  # the schema is no reason
            assert "schema" not in http.get("/readyz").json().get("reason", "")
        store = deployment.store
        workspace = data["workspace"]
        assert store.messages(workspace, conversations["whatsapp"])[-1]["author"] in ("agent", "system")
        assert client.hget(f"baton:{workspace}:conv:{conversations['whatsapp']}:delivery", delivered) == "read"
        # Ana's question the old release left pending is answered now; so is the reopened conversation.
        assert history(client, workspace, conversations["answered"])[-1]["text"].startswith("Start a return")
        reopened = history(client, workspace, conversations["reopened"])
        assert [m["author"] for m in reopened][-2:] == ["customer", "ai"]
        assert reopened[-1]["text"] == "Delivery takes 2-4 business days."
        # What the old release queued (the agent's reply) went out; nothing was sent twice.
        # (Only the sends: the worker also asks Twilio about the send whose outcome the old release left unknown.)
        bodies = [r.form["Body"][0] for r in twilio.requests
                  if r.method == "POST" and r.path.endswith("/Messages.json")]
        assert "I'll check with the courier." in bodies
        assert len(bodies) == len(set(bodies))
        # The agents can send the unknown one again.
        resend = TestClient(create_app(deployment))
        with resend as http:
            answer = http.post(f"/api/conversations/{conversations['whatsapp']}/messages/{unknown}/resend",
                               headers=agent)
            assert answer.status_code == 202, answer.text
        deployment.close()


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"workspaces": [{"id": "acme", "channels": [{"name": "c", "type": "webchat"}]}]}))
    return config


def _new_id(client: redis.Redis, data: dict[str, Any], cid: str, old_id: str) -> str:
    """A message's id after the migration: its place in the old stream."""
    entries = data["keys"][f"baton:{data['workspace']}:conv:{cid}:messages"]["value"]
    place = [entry_id for entry_id, _ in entries].index(old_id)
    return f"{old_id.split('-')[0]}-{place}"


def _twilio_form(sid: str, body: str, sender: str = "whatsapp:+34600000001") -> dict[str, str]:
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": sender,
            "To": "whatsapp:+14155550199", "Body": body, "NumMedia": "0"}


# --- stores of this schema, newer ones, and what `baton migrate` refuses ---------------------------------------------

def test_a_store_from_before_schema_versions_with_list_histories_is_stamped_schema_1(client: redis.Redis) -> None:
    restore(client, SCHEMA1)
    assert schema.ensure(client) == schema.State(1, None)
    assert migrations.migrate(client).steps == []


def test_an_empty_store_is_stamped_with_this_release_s_schema(client: redis.Redis) -> None:
    client.set("baton:readyz", 1)  # a probe's key is no data
    assert schema.ensure(client) == schema.State(schema.VERSION, None)


def test_a_newer_schema_is_refused_by_every_check_and_by_the_state_script(client: redis.Redis) -> None:
    client.hset(keys.SCHEMA, "version", schema.VERSION + 1)
    with pytest.raises(schema.SchemaMismatch, match="newer release"):
        schema.ensure(client)
    with pytest.raises(migrations.MigrationRefused, match="newer release"):
        migrations.migrate(client)
    store = Store(client)
    with pytest.raises(schema.SchemaMismatch) as refused:
        store.inbound("acme", CustomerMessage(channel="c", sender="v", provider_id="p1", text="hello", customer="v",
                                              delivers=False, published=True, timeout_ms=1000))
    assert refused.value.status == 503
    assert not list(client.scan_iter("baton:acme:*"))  # nothing written


def test_a_migration_under_way_stops_every_write(client: redis.Redis) -> None:
    schema.stamp(client, schema.VERSION)
    client.hset(keys.SCHEMA, "migrating", schema.VERSION)
    with pytest.raises(schema.SchemaMismatch, match="baton migrate"):
        Store(client).publish("acme", published=True, actor="agent:alex", reason="", timeout_ms=1000)


def test_migrate_refuses_while_a_worker_runs_and_says_so(client: redis.Redis) -> None:
    restore(client, SCHEMA0)
    client.zadd("baton:workers", {"vm.123.abc": int(time.time() * 1000)})  # an old release's heartbeat
    with pytest.raises(migrations.MigrationRefused, match="stop every gateway and worker"):
        migrations.migrate(client)
    assert migrations.migrate(client, dry_run=True, force=True).steps[0][0].version == 1
    assert schema.read(client) == schema.State(None, None)  # a dry run changes nothing


def test_every_migration_is_numbered_in_order_with_a_docstring_and_a_test() -> None:
    assert [m.version for m in migrations.MIGRATIONS] == list(range(1, schema.VERSION + 1))
    tests = [name for name in dir(sys.modules[__name__]) if name.startswith("test_migration_")]
    for migration in migrations.MIGRATIONS:
        assert migration.run.__doc__ and len(migration.run.__doc__.strip()) > 80, migration
        assert any(name.startswith(f"test_migration_{migration.version}_") for name in tests), migration
        assert migration.version in schema.SHAPES


def test_conversations_written_before_languages_were_stored_get_the_workspace_s_language_then_their_own(
        client: redis.Redis, server: str, tmp_path: Path) -> None:
    """The stored `language` is a new field read with a default (no migration step): a conversation of an earlier
    release has none, so the timer's contact form speaks the workspace's language; its next turn stores its own."""
    from gateway.handover import fallback
    from gateway.texts import LABELS, TEXTS
    from gateway.work.turn import take_turn

    data = restore(client, SCHEMA1)
    assert schema.ensure(client) == schema.State(1, None)
    workspace, conversations = data["workspace"], data["conversations"]
    assert not any(client.hexists(f"baton:{workspace}:conv:{cid}", "language") for cid in conversations.values())
    timers = f"baton:{workspace}:timers:no-human"
    armed = [member for member in client.zrange(timers, 0, -1) if member.startswith(f"{conversations['armed']}|")]
    assert armed, "the fixture keeps a no-human wait armed"
    client.zadd(timers, {member: 0 for member in armed})  # due now
    with FakeTwilio() as twilio:
        tree = {"queue": f"q-{uuid.uuid4().hex[:8]}", "secret": "test-secret-0123456789", "workspaces": [{
            "id": workspace, "language": "fr",
            "channels": [{"name": data["channels"]["webchat"], "type": "webchat"},
                         {"name": data["channels"]["whatsapp"], "type": "twilio_whatsapp",
                          "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": "whatsapp:+14155550199",
                          "api_base_url": twilio.base_url}],
            "ai_agent": {"name": "Lumi", "model": "baton/knowledge", "knowledge": {"entries": KNOWLEDGE}},
        }]}
        deployment = Deployment.build(parse_config(yaml.safe_dump(tree), base_dir=tmp_path), server)
        try:
            fired = fallback.fire_due(deployment)
            assert conversations["armed"] in [item["conversation"] for item in fired]
            form = history(client, workspace, conversations["armed"])[-1]
            assert form["kind"] == "contact_form" and form["text"] == TEXTS["contact_form"]["fr"]
            assert form["rich"]["fields"][1]["label"] == LABELS["phone"]["fr"]
            # The old conversation the AI answered: the customer writes in Spanish, the turn stores it.
            answered = deployment.store.conversation(workspace, conversations["answered"])
            for text in ("Hola, ¿cuánto tarda el envío a Valencia?", "¿Y hacéis envíos a Portugal también?",
                         "Gracias, ¿se puede pagar contra reembolso?"):
                message = CustomerMessage(channel=answered["channel"], sender=answered["sender"], provider_id="",
                                          text=text, customer="Ana", delivers=False, published=True,
                                          timeout_ms=120_000)
                recorded = deployment.store.inbound(workspace, message)
            take_turn(deployment, workspace, recorded.conversation)
            assert client.hget(f"baton:{workspace}:conv:{recorded.conversation}", "language") == "es"
        finally:
            deployment.close()
