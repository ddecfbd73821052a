"""The `baton` command: serve, worker, check, agent, eval, status, migrate, backup, restore, plugins.

The one place that imports both sides (gateway.web, gateway.work): each command imports what it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.config import BatonConfig, load_config
from gateway.errors import BatonError, ConfigError

log = logging.getLogger("baton")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="baton", description="One shared inbox for an AI agent and a human team.")
    top.add_argument("--version", action="version", version=f"baton {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, parent: Any = commands, nested: bool = False) -> argparse.ArgumentParser:
        """A command with the common options; `nested` (an action of a command that has them too) sets no
        defaults, which would otherwise override `baton agent --config X create …`."""
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)

        def default(value: str | None) -> str | None:
            return argparse.SUPPRESS if nested else value

        sub.add_argument("--config", default=default("config.yaml"),
                         help="the YAML configuration (default: config.yaml)")
        sub.add_argument("--redis-url", default=default(None),
                         help="Redis URL, or redis+sentinel://… (default: REDIS_URL, then config, then the "
                              "embedded Valkey)")
        sub.add_argument("--data-dir", default=default(None),
                         help="the embedded Valkey's data directory (default: .baton)")
        return sub

    serve = command("serve", "Run the gateways, the workers and (by default) an embedded Valkey server.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument("--gateways", type=int, default=None,
                       help="gateway processes, all on the one port (default: config, else one per CPU)")
    serve.add_argument("--workers", type=int, default=None,
                       help="worker processes (default: config, else one per CPU plus one; 0: gateway only)")
    serve.add_argument("--proxy-headers", action="store_true",
                       help="trust X-Forwarded-* from --forwarded-allow-ips (behind a TLS proxy)")
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    gateway = command("gateway", "Run one gateway process on an inherited socket (`baton serve` starts these).")
    gateway.add_argument("--fd", type=int, required=True, help="the listening socket's file descriptor")
    gateway.add_argument("--proxy-headers", action="store_true")
    gateway.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    worker = command("worker", "Run a worker: AI turns, deliveries, notifications, the no-human timers.")
    worker.add_argument("--burst", action="store_true", help="do what is pending, then stop")
    worker.add_argument("--metrics-port", type=int, default=0,
                        help="serve this worker's Prometheus metrics on this port (for a machine without a gateway)")
    worker.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (default: 127.0.0.1)")
    check = command("check", "Validate the configuration; reach Redis, each channel and each model's settings.")
    check.add_argument("--live", action="store_true", help="also make one real call to each hosted model")
    command("status", "Show the workers, the work waiting and in flight, the timers, and Redis.")
    saved = command("backup", "Snapshot the embedded Valkey's data (while Baton runs) into a .tar.gz.")
    saved.add_argument("out", help="the backup file to write, e.g. baton-2026-12-07.tar.gz")
    restored = command("restore", "Make a data directory from a backup, to start baton serve on (see docs/deploy.md).")
    restored.add_argument("archive", help="a file `baton backup` wrote")
    restored.add_argument("--force", action="store_true", help="move the data already in the directory aside")
    migrate = command("migrate", "Bring data written by an earlier release to this release's schema (stop Baton "
                      "first; see docs/deploy.md, Upgrading).")
    migrate.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    migrate.add_argument("--force", action="store_true",
                         help="run although a worker's heartbeat is fresh (only if you know it is stopped)")
    _agent_commands(command("agent", "Manage human agents and their API tokens."), command)
    listed = commands.add_parser("plugins", help="List the installed plugins: where each comes from, the hooks and "
                                 "types it provides, the plugin API it needs, and those that failed to load.",
                                 description="List the installed plugins and those that failed to load (exit "
                                             "status 1 when one did).")
    listed.add_argument("--json", action="store_true", help="as JSON: {api_version, plugins, failures}")
    evaluate = commands.add_parser("eval", add_help=False, help="Measure the customer-message classifiers on a "
                                   "labelled JSONL file (baton eval --help for its options).")
    evaluate.add_argument("arguments", nargs=argparse.REMAINDER)
    return top


def _agent_commands(agent: argparse.ArgumentParser, command: Any) -> None:
    actions = agent.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = command(name, help_text, actions, nested=True)
        sub.add_argument("--workspace", default=None, help="workspace id (default: the only one)")
        return sub

    create = action("create", "Create an agent and print their API token (shown once).")
    create.add_argument("id", help="the agent's id: lower-case letters, digits, '.', '_' or '-'")
    create.add_argument("--name", default="", help="display name (default: the id)")
    create.add_argument("--admin", action="store_true", help="may publish and unpublish the AI agent")
    create.add_argument("--team", action="append", default=[], help="a team the agent belongs to (repeat for more)")
    create.add_argument("--days", type=int, default=90, help="days the token is valid (0: no expiry; default 90)")
    rotate = action("rotate", "Replace an agent's API token (the old one and their sessions stop at once).")
    rotate.add_argument("id", help="the agent's id")
    rotate.add_argument("--days", type=int, default=90, help="days the new token is valid (0: no expiry)")
    revoke = action("revoke", "Remove an agent: their token and sessions stop at once, open inboxes sign out.")
    revoke.add_argument("id", help="the agent's id")
    action("list", "List the agents of a workspace.")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:  # its own options, parsed by the evaluator (argparse cannot pass them through)
        from gateway.detection.evaluate import main as evaluate

        return evaluate(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "plugins":  # needs no configuration: it says what is installed
        return plugins(args)
    try:
        config = load_config(args.config)
        configure_logging(config)
        handler = {"serve": serve, "gateway": gateway, "worker": worker, "check": check, "agent": agent,
                   "status": status, "migrate": migrate, "backup": backup, "restore": restore}[args.command]
        return handler(args, config)
    except BatonError as exc:
        print(f"baton: {exc.reason}", file=sys.stderr)
        return 2


def plugins(args: argparse.Namespace) -> int:
    """`baton plugins`: every loaded plugin and every one that failed; 1 when one failed."""
    import dataclasses
    import json

    from gateway.plugin import API_VERSION
    from gateway.plugin_host import failures
    from gateway.plugin_host import plugins as loaded

    found, failed = loaded(), failures()
    if args.json:
        print(json.dumps({"api_version": API_VERSION, "plugins": [dataclasses.asdict(p) for p in found],
                          "failures": [dataclasses.asdict(f) for f in failed]}, indent=2))
        return 1 if failed else 0
    print(f"baton {__version__}, plugin API {API_VERSION}: {len(found)} plugins loaded"
          + (f", {len(failed)} failed" if failed else ""))
    for info in found:
        origin = f"{info.distribution} {info.version}" if info.distribution else "registered in-process"
        print(f"\n{info.name}  ({info.module}, from {origin})")
        print(f"  needs plugin API: {info.api_version or 'not declared'}")
        print(f"  hooks: {', '.join(info.hooks) or 'none'}")
        for kind, names in info.provides.items():
            print(f"  {kind.replace('_', ' ')}: {', '.join(names) or 'none'}")
    for failure in failed:
        print(f"\nFAILED {failure.name}  ({failure.module}, from {failure.distribution or '?'} {failure.version})")
        print(f"  {failure.error}")
    return 1 if failed else 0


def configure_logging(config: BatonConfig) -> None:
    from gateway.logs import configure

    configure(config.log_level, config.log_format)


@contextlib.contextmanager
def redis_server(args: argparse.Namespace, config: BatonConfig) -> Iterator[tuple[str, Any]]:
    """The Redis to use: an explicit URL, or the data directory's embedded Valkey (started if none runs); with the
    EmbeddedValkey when this process started it."""
    from gateway.redis_server import EmbeddedValkey, configured_url, ping

    url = configured_url(args.redis_url, config.redis_location())
    if url:
        ping(url)
        yield url, None
        return
    data_dir = Path(args.data_dir).resolve() if args.data_dir else config.data_path()
    server = EmbeddedValkey(data_dir)
    try:
        url = server.start()
        yield url, server if server.owner else None
    finally:
        server.stop()


@contextlib.contextmanager
def redis_url(args: argparse.Namespace, config: BatonConfig) -> Iterator[str]:
    """The Redis to use (see redis_server)."""
    with redis_server(args, config) as (url, _):
        yield url


def serve(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway.deployment import Deployment
    from gateway.redis_server import configured_url
    from gateway.supervisor import DataDirLock, Supervisor, listen, python_command

    data_dir = Path(args.data_dir).resolve() if args.data_dir else config.data_path()
    embedded_url = not configured_url(args.redis_url, config.redis_location())  # before the children's REDIS_URL
    password_file = data_dir / "valkey.password" if embedded_url else None
    lock = DataDirLock(data_dir)
    lock.acquire()
    _share_metrics(data_dir)
    listener = listen(args.host, args.port)
    supervisor = Supervisor()
    try:
        with redis_server(args, config) as (url, embedded):
            require_schema(url)
            deployment = Deployment.build(config, url)
            gateways = args.gateways or config.gateway.processes or os.cpu_count() or 1
            workers = _count(args.workers, config.worker.processes)
            # The URL goes to the children in their environment, not on their command lines, which any user of
            # the machine can read (ps) and which may carry the Redis password.
            os.environ["REDIS_URL"] = url
            common = ["--config", str(Path(args.config).resolve())]
            proxy = ["--proxy-headers", "--forwarded-allow-ips", args.forwarded_allow_ips] if args.proxy_headers else []
            for n in range(gateways):
                supervisor.add(f"gateway {n + 1}", python_command("gateway", "--fd", str(listener.fileno()),
                                                                  *common, *proxy), (listener.fileno(),))
            for n in range(workers):
                supervisor.add(f"worker {n + 1}", python_command("worker", *common))
            supervisor.start()
            print_urls(deployment, args.host, args.port, url, gateways, workers, password_file)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: setattr(supervisor, "stopping", True))
            supervisor.watch(also=embedded.revive if embedded else None)
            supervisor.stop(grace=_grace(config))
            deployment.close()
    finally:
        supervisor.stopping = True
        listener.close()
        lock.release()
    return 0


def _share_metrics(data_dir: Path) -> None:
    """One metrics directory for this machine's gateways and workers, so any gateway's /metrics adds them up."""
    from gateway.metrics import clear

    directory = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(data_dir / "metrics"))
    clear(directory)


def _count(flag: int | None, configured: int | None) -> int:
    """Worker processes: one per CPU and one more. A worker runs its Python one thread at a time (the GIL), and
    the cores are shared with the gateways: with 200 customers at once and a 1 s model on 2 cores, 3 workers
    answered all of them by 1.75-1.89 s, 2 workers by 2.07-2.20 s (benchmarks/bench.py, four runs each)."""
    if flag is not None:
        return flag
    return configured if configured is not None else (os.cpu_count() or 1) + 1


def _grace(config: BatonConfig) -> float:
    """How long workers may take to finish their turns: the slowest model's timeout, and some."""
    return max((w.ai_agent.timeout for w in config.workspaces if w.ai_agent), default=30.0) + 10


def gateway(args: argparse.Namespace, config: BatonConfig) -> int:
    import uvicorn

    from gateway.deployment import Deployment
    from gateway.web.app import create_app

    deployment = Deployment.build(config, _required_url(args, config), quiet=True)
    _raise_open_files_limit()  # each open widget and inbox holds a connection
    app = create_app(deployment)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # Event streams never end by themselves: end them first, so the shutdown is not a cancellation
            # (and a traceback) per open widget, and their clients reconnect to another gateway at once.
            hub = getattr(app.state, "hub", None)
            if hub is not None:
                hub.end_all()
            await super().shutdown(sockets)

    # The socket object from its descriptor, with its real family: uvicorn's own fd= takes any descriptor for a
    # Unix socket, and asyncio then leaves Nagle's algorithm on, which held every answer ~40 ms (delayed ACKs).
    listener = socket.socket(fileno=args.fd)
    Server(uvicorn.Config(app, log_level=config.log_level, timeout_graceful_shutdown=3,
                          proxy_headers=args.proxy_headers, forwarded_allow_ips=args.forwarded_allow_ips,
                          access_log=False, log_config=None)).run(sockets=[listener])
    deployment.close()
    return 0


def _raise_open_files_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _required_url(args: argparse.Namespace, config: BatonConfig) -> str:
    from gateway.redis_server import configured_url

    url = configured_url(args.redis_url, config.redis_location())
    if not url:
        raise ConfigError("a gateway process needs --redis-url (baton serve passes it)")
    return url


def print_urls(deployment: Any, host: str, port: int, url: str, gateways: int, workers: int,
               password_file: Path | None = None) -> None:
    """The banner: where Baton listens and every URL a user is pointed at (the embedded Valkey's with its password
    redacted, and the file that holds it)."""
    from gateway.connector import WidgetConnector
    from gateway.deployment import no_statuses
    from gateway.redis_server import redact

    listening = f"http://{_url_host(host)}:{port}"
    base = deployment.public_url(listening)
    role = "" if workers else "; a gateway-only node: run `baton worker` against the same Redis"
    lines = [f"Baton {__version__} listening on {listening}  ({gateways} gateway and {workers} worker processes{role})"]
    if deployment.config.public_url:
        lines.append(f"  Public URL:   {base}  (public_url: what providers call and sign)")
    where = f"  (password in {password_file})" if password_file else ""
    lines += [f"  Redis:        {redact(url)}{where}", f"  Team inbox:   {base}/inbox",
              f"  API docs:     {base}/openapi.json", f"  Health:       {listening}/healthz, {listening}/readyz"]
    for channel in deployment.channels.values():
        if isinstance(channel.connector, WidgetConnector):
            lines.append(f"  Webchat demo: {base}/demo?channel={channel.name}")
        else:
            state = "  (disabled: see above)" if channel.disabled else \
                "  (no delivery statuses: public_url is not set)" if no_statuses(channel) else ""
            lines.append(f"  Webhook:      {base}/webhooks/{channel.name}  [{channel.connector.type}]{state}")
    print("\n".join(lines), flush=True)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def worker(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway.deployment import Deployment
    from gateway.work import worker as worker_module

    os.environ.setdefault("BATON_CONFIG", str(Path(args.config).resolve()))
    with redis_url(args, config) as url:
        require_schema(url)
        deployment = Deployment.build(config, url, quiet=True)
        if args.metrics_port:
            from gateway.metrics import serve_worker_metrics

            serve_worker_metrics(deployment, args.metrics_port, args.metrics_host)
        if args.burst:
            worker_module.run_until_idle(deployment)
        else:
            worker_module.run(deployment)
        deployment.close()
    return 0


def check(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway.deployment import Deployment, no_statuses
    from gateway.plugin_host import failures as plugin_failures
    from gateway.redis_server import redact

    problems = 0
    with redis_url(args, config) as url:
        deployment = Deployment.build(config, url, quiet=True)
        print(f"configuration {args.config}: valid")
        print(f"redis {redact(url)}: reachable")
        problems += _check_schema(deployment)
        for channel in deployment.channels.values():
            status = f"disabled: {channel.disabled} (a warning: the other channels work)" if channel.disabled \
                else "ready"
            if not channel.disabled and (missing := no_statuses(channel)):
                status += f"; a warning: {missing}"
            print(f"channel {channel.name} ({channel.connector.type}): {status}")
        for failure in plugin_failures():
            print(f"{failure.describe()} (a warning: the configuration uses nothing it would provide)")
        for workspace in config.workspaces:
            problems += _check_agent(deployment, workspace, args.live)
            _check_assignment(deployment, workspace)
        deployment.close()
    return 1 if problems else 0


def _check_schema(deployment: Any) -> int:
    from gateway import schema

    try:
        state = schema.ensure(deployment.redis)
    except schema.SchemaMismatch as exc:
        print(f"data: {exc.reason}")
        return 1
    print(f"data: schema {state.version} (this release's)")
    return 0


def _check_assignment(deployment: Any, workspace: Any) -> None:
    from gateway.handover import lifecycle

    rule = lifecycle.assignment_in_force(deployment, workspace)
    source = "set in Settings" if rule["source"] == "settings" else "from config.yaml"
    print(f"workspace {workspace.id}: assignment {rule['mode']}, capacity {rule['capacity']} ({source})")


def _check_agent(deployment: Any, workspace: Any, live: bool) -> int:
    from gateway import ai

    agent = workspace.ai_agent
    if agent is None:
        print(f"workspace {workspace.id}: no AI agent")
        return 0
    published = deployment.store.published(workspace.id, agent.published)
    override = " (set at runtime)" if published != agent.published else ""
    entries = len(deployment.knowledge(workspace.id))
    print(f"workspace {workspace.id}: AI agent {agent.model}, {'published' if published else 'unpublished'}"
          f"{override}; {entries} knowledge entries")
    missing = ai.missing_keys(agent)
    if missing:
        print(f"  model {agent.model}: missing {', '.join(missing)} — every conversation would go to a human")
        return 1
    if live and not ai.is_offline(agent):
        try:
            ai.complete(agent, [{"role": "user", "content": "Say OK."}], tools=False)
        except Exception as exc:  # noqa: BLE001 - report whatever the provider says
            print(f"  model {agent.model}: the live call failed: {type(exc).__name__}: {str(exc)[:200]}")
            return 1
        print(f"  model {agent.model}: a live call answered")
    return 0


def agent(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway.redis_server import connect
    from gateway.team import list_agents
    from gateway.web.auth import create_agent, revoke_agent, rotate_token

    workspace = pick_workspace(config, args.workspace)
    with redis_url(args, config) as url:
        require_schema(url)
        client = connect(url, decode_responses=True)
        if args.action == "create":
            token = create_agent(client, workspace, args.id, args.name, admin=args.admin, days=args.days,
                                 teams=args.team)
            print(f"Created agent {args.id!r} in workspace {workspace!r}. Their token (shown once):\n{token}")
        elif args.action == "rotate":
            token = rotate_token(client, workspace, args.id, days=args.days)
            print(f"New token for {args.id!r} (shown once; the old one no longer works):\n{token}")
        elif args.action == "revoke":
            revoke_agent(client, workspace, args.id)
            print(f"Revoked agent {args.id!r}.")
        else:
            for record in list_agents(client, workspace):
                print(f"{record['id']}\t{record['name']}\t{'admin' if record.get('admin') else 'agent'}")
        client.close()
    return 0


def status(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway.cli.status import report
    from gateway.deployment import Deployment

    with redis_url(args, config) as url:
        deployment = Deployment.build(config, url, quiet=True)
        print(report(deployment))
        deployment.close()
    return 0


def require_schema(url: str) -> None:
    """Refuse to start on data of another schema than this release's (stamping a store that carries none)."""
    from gateway import schema
    from gateway.redis_server import connect

    client = connect(url, max_connections=2, decode_responses=True)
    try:
        schema.ensure(client)
    finally:
        client.close()


def migrate(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway import migrations, schema
    from gateway.redis_server import connect, redact

    with redis_url(args, config) as url:
        # A text an old release cut in the middle of a character is read with U+FFFD, not refused.
        client = connect(url, max_connections=4, decode_responses=True, encoding_errors="replace")
        try:
            report = migrations.migrate(client, dry_run=args.dry_run, force=args.force,
                                        progress=lambda line: print(line, flush=True))
        finally:
            client.close()
    print(f"redis {redact(url)}: the data was schema {report.before}; this release reads schema {schema.VERSION}")
    if not report.steps:
        print("nothing to migrate")
    for step, counts in report.steps:
        done = ", ".join(f"{count} {name}" for name, count in counts.items())
        print(f"step {step.version} done: {done}" if not args.dry_run else f"step {step.version} would run: "
              f"{step.summary}")
    if not args.dry_run:
        print(f"the data is now schema {report.after}")
    return 0


def backup(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway import backup as backups
    from gateway.redis_server import configured_url

    if configured_url(args.redis_url, config.redis_location()):
        raise ConfigError("baton backup snapshots the embedded Valkey; for a Redis of your own, back up its "
                          "append-only file (docs/deploy.md, Backups)")
    with redis_server(args, config) as (url, _):
        data_dir = Path(args.data_dir).resolve() if args.data_dir else config.data_path()
        manifest = backups.backup(url, data_dir, Path(args.out))
    print(f"{args.out}: {manifest['keys']} keys, schema {manifest['schema']}, Baton {manifest['baton']}")
    return 0


def restore(args: argparse.Namespace, config: BatonConfig) -> int:
    from gateway import backup as backups

    data_dir = Path(args.data_dir).resolve() if args.data_dir else config.data_path()
    manifest = backups.restore(Path(args.archive), data_dir, force=args.force)
    print(f"{data_dir}: restored from {args.archive} (schema {manifest.get('schema')}, taken "
          f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(manifest.get('created_at', 0)))}); start it with "
          f"baton serve --data-dir {data_dir}")
    return 0


def pick_workspace(config: BatonConfig, requested: str | None) -> str:
    if requested:
        return config.workspace(requested).id
    if len(config.workspaces) > 1:
        ids = ", ".join(w.id for w in config.workspaces)
        raise ConfigError(f"several workspaces ({ids}): choose one with --workspace")
    return config.workspaces[0].id

