"""The `baton` command: serve, worker, check, and agent create|list|revoke."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from gateway import __version__
from gateway.config import BatonConfig, load_config
from gateway.errors import BatonError, ConfigError

log = logging.getLogger("baton")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="baton", description="One shared inbox for an AI agent and a human team.")
    top.add_argument("--version", action="version", version=f"baton {__version__}")
    commands = top.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", default="config.yaml", help="the YAML configuration (default: config.yaml)")
        sub.add_argument("--redis-url", default=None,
                         help="Redis URL (default: REDIS_URL, then config, then the embedded Valkey)")
        sub.add_argument("--data-dir", default=None, help="embedded Valkey's data directory (default: .baton)")
        return sub

    serve = command("serve", "Run the gateway, a worker and (by default) an embedded Valkey server.")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=None,
                       help="worker processes (default: config; 0 for a gateway-only node)")
    serve.add_argument("--proxy-headers", action="store_true",
                       help="trust X-Forwarded-* from --forwarded-allow-ips (behind a TLS proxy)")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    worker = command("worker", "Run a worker: AI turns, deliveries, notifications, fallback timers.")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    command("check", "Validate the configuration and reach Redis and every channel's settings.")
    agent = command("agent", "Manage human agents.")
    agent.add_argument("action", choices=["create", "list", "revoke"])
    agent.add_argument("id", nargs="?", help="agent id (create, revoke)")
    agent.add_argument("--name", default="", help="display name (create)")
    agent.add_argument("--admin", action="store_true", help="may publish/unpublish the AI agent (create)")
    agent.add_argument("--workspace", default=None, help="workspace id (default: the only one)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config)
        logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for chatty in ("twilio.http_client", "LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(chatty).setLevel(logging.WARNING)  # a line per request/model call at INFO
        handler = {"serve": serve, "worker": worker, "check": check, "agent": agent}[args.command]
        return handler(args, config)
    except BatonError as exc:
        print(f"baton: {exc.reason}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def redis_url(args: argparse.Namespace, config: BatonConfig) -> Iterator[str]:
    """The Redis to use: an explicit URL, or the data directory's embedded Valkey (started if needed)."""
    from gateway.redis_server import EmbeddedValkey, configured_url, ping

    url = configured_url(args.redis_url, config.redis_url)
    if url:
        ping(url)
        yield url
        return
    data_dir = Path(args.data_dir).resolve() if args.data_dir else config.data_path()
    server = EmbeddedValkey(data_dir)
    try:
        yield server.start()
    finally:
        server.stop()


def serve(args: argparse.Namespace, config: BatonConfig) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.deployment import Deployment

    with redis_url(args, config) as url:
        deployment = Deployment.build(config, url)
        workers = start_workers(args, url, config.worker.processes if args.workers is None else args.workers)
        try:
            print_urls(deployment, args.host, args.port, url)
            app = create_app(deployment)
            # uvicorn re-raises the signal that stopped it once it is done; take it here, so that the
            # workers and the embedded server are still stopped in order below.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: None)
            uvicorn.Server(uvicorn.Config(
                app, host=args.host, port=args.port, log_level=config.log_level, timeout_graceful_shutdown=3,
                proxy_headers=args.proxy_headers, forwarded_allow_ips=args.forwarded_allow_ips)).run()
        finally:
            stop_workers(workers)
            deployment.close()
    return 0


def start_workers(args: argparse.Namespace, url: str, count: int) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "gateway.cli", "worker", "--config", args.config, "--redis-url", url]
    # Their own session: Ctrl-C reaches only `baton serve`, which then asks each worker once to stop.
    return [subprocess.Popen(command, start_new_session=True) for _ in range(count)]


def stop_workers(workers: list[subprocess.Popen[bytes]], grace: float = 60.0) -> None:
    """Ask each worker to finish the job in hand and stop (RQ's warm shutdown), then wait."""
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()


def print_urls(deployment: object, host: str, port: int, url: str) -> None:
    from gateway.deployment import Deployment

    assert isinstance(deployment, Deployment)
    base = deployment.public_url(f"http://{host}:{port}")
    lines = [f"Baton {__version__} on {base}", f"  Redis:        {url}", f"  Team inbox:   {base}/inbox",
             f"  API docs:     {base}/openapi.json"]
    for channel in deployment.channels.values():
        if channel.connector.type == "webchat":
            lines.append(f"  Webchat demo: {base}/demo?channel={channel.name}")
        else:
            state = f"  (disabled: {channel.disabled})" if channel.disabled else ""
            lines.append(f"  Webhook:      {base}/webhooks/{channel.name}  [{channel.connector.type}]{state}")
    print("\n".join(lines), flush=True)


def worker(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway import worker as worker_module
    from gateway.deployment import Deployment

    os.environ.setdefault("BATON_CONFIG", str(Path(args.config).resolve()))
    with redis_url(args, config) as url:
        deployment = Deployment.build(config, url)
        worker_module.run(deployment, burst=args.burst)
    return 0


def check(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway.deployment import Deployment

    problems = 0
    with redis_url(args, config) as url:
        deployment = Deployment.build(config, url)
        print(f"configuration {args.config}: valid")
        print(f"redis {url}: reachable")
        for channel in deployment.channels.values():
            status = f"disabled: {channel.disabled}" if channel.disabled else "ready"
            print(f"channel {channel.name} ({channel.connector.type}): {status}")
            problems += bool(channel.disabled)
        for workspace in config.workspaces:
            agent = workspace.ai_agent
            entries = len(deployment.knowledge(workspace.id))
            described = f"{agent.model}, {'published' if agent.published else 'unpublished'}" if agent else "none"
            print(f"workspace {workspace.id}: AI agent {described}; {entries} knowledge entries")
        deployment.close()
    return 1 if problems else 0


def agent(args: argparse.Namespace, config: BatonConfig) -> int:
    import redis

    from gateway.auth import create_agent, list_agents, revoke_agent

    workspace = pick_workspace(config, args.workspace)
    if args.action in ("create", "revoke") and not args.id:
        raise ConfigError(f"baton agent {args.action} needs an agent id")
    with redis_url(args, config) as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        if args.action == "create":
            token = create_agent(client, workspace, args.id, args.name, admin=args.admin)
            print(f"Created agent {args.id!r} in workspace {workspace!r}. Their token (shown once):\n{token}")
        elif args.action == "revoke":
            revoke_agent(client, workspace, args.id)
            print(f"Revoked agent {args.id!r}.")
        else:
            for record in list_agents(client, workspace):
                print(f"{record['id']}\t{record['name']}\t{'admin' if record.get('admin') else 'agent'}")
        client.close()
    return 0


def pick_workspace(config: BatonConfig, requested: str | None) -> str:
    if requested:
        return config.workspace(requested).id
    if len(config.workspaces) > 1:
        ids = ", ".join(w.id for w in config.workspaces)
        raise ConfigError(f"several workspaces ({ids}): choose one with --workspace")
    return config.workspaces[0].id


if __name__ == "__main__":
    sys.exit(main())
