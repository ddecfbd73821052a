"""Baton's conversation-loop benchmark: run `python benchmarks/bench.py` from the repository.

1. Webhook acknowledgements per second on one uvicorn worker for Twilio-signed posts (each a new
   message: verify, parse, dedupe, record, enqueue, TwiML), next to a bare Starlette endpoint that only
   parses the same form, measured in the same run with wrk (`apt-get install wrk`). The ratio is the figure.
2. Time from an inbound webhook to the AI's reply reaching the (fake) Twilio API, with the offline
   model, through `baton serve` (gateway + one worker + embedded Valkey): median and p99.

Both sides run on this machine; compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import yaml
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio  # noqa: E402

BUSINESS = "whatsapp:+14155550199"
WRK_SCRIPT = """
local requests = {}
local n = 0
function init(args)
  for line in io.lines(args[1]) do
    local signature, body = line:match("^(.-)\\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", wrk.path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = signature}, body)
  end
  n = math.random(#requests)
end
function request()
  n = n % #requests + 1
  return requests[n]
end
"""
BARE_APP = """
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def receive(request):
    form = parse_qsl((await request.body()).decode(), keep_blank_values=True)  # as Baton parses it
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response />', media_type="text/xml")

app = Starlette(routes=[Route("/webhooks/wa", receive, methods=["POST"])])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def write_config(directory: Path, twilio_url: str, log_level: str) -> Path:
    path = directory / "bench.yaml"
    path.write_text(yaml.safe_dump({
        "log_level": log_level, "data_dir": str(directory / "data"),
        "workspaces": [{"id": "bench", "channels": [{
            "name": "wa", "type": "twilio_whatsapp", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
            "from": BUSINESS, "api_base_url": twilio_url}],
            "ai_agent": {"model": "baton/knowledge", "knowledge": {"files": [str(ROOT / "knowledge" / "*.md")]}}}],
    }))
    return path


def signed_form(url: str, n: int, run: str) -> tuple[str, dict[str, str]]:
    form = {"MessageSid": f"SM{run}{n:024d}"[:34], "AccountSid": ACCOUNT_SID, "From": f"whatsapp:+1555{n:07d}",
            "To": BUSINESS, "Body": "How do I return a lamp?", "NumMedia": "0", "ProfileName": f"Customer {n}"}
    return RequestValidator(AUTH_TOKEN).compute_signature(url, form), form


def serve(config: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", str(port),
               "--workers", str(workers)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
    return process


def wait_for_worker(data_dir: Path, timeout: float = 60) -> None:
    """The gateway answers before the worker has imported litellm: measure the steady state."""
    import json

    import redis
    from rq import Worker

    client = redis.Redis.from_url(json.loads((data_dir / "valkey.json").read_text())["url"])
    deadline = time.monotonic() + timeout
    while not Worker.all(connection=client):
        if time.monotonic() > deadline:
            raise SystemExit("no worker registered")
        time.sleep(0.1)
    client.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


def wrk(url: str, requests_file: Path, seconds: int, connections: int) -> float:
    script = requests_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    output = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url,
                             "--", str(requests_file)], capture_output=True, text=True, check=True).stdout
    non_2xx = [line for line in output.splitlines() if "Non-2xx" in line]
    if non_2xx:
        raise SystemExit(f"wrk saw errors against {url}: {non_2xx[0]}")
    return float(next(line.split()[1] for line in output.splitlines() if line.startswith("Requests/sec")))


def throughput(directory: Path, twilio_url: str, seconds: int, connections: int) -> None:
    if shutil.which("wrk") is None:
        print("throughput: skipped (wrk not installed: apt-get install wrk)")
        return
    config = write_config(directory, twilio_url, "warning")
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/wa"
    requests_file = directory / "requests.tsv"
    with requests_file.open("w") as out:
        for n in range(60_000):  # unique MessageSids: every request is a new message, not a duplicate
            signature, form = signed_form(url, n, str(int(time.time()))[-6:])
            out.write(f"{signature}\t{urlencode(form)}\n")
    baton = serve(config, port, workers=0)  # gateway only: the queue absorbs the turns
    try:
        baton_rps = wrk(url, requests_file, seconds, connections)
    finally:
        stop(baton)
    bare_port = free_port()
    (directory / "bare_app.py").write_text(BARE_APP)
    bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port),
                             "--log-level", "warning", "--no-access-log"], cwd=directory,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{bare_port}/", bare)
        bare_rps = wrk(f"http://127.0.0.1:{bare_port}/webhooks/wa", requests_file, seconds, connections)
    finally:
        stop(bare)
    print(f"throughput: Baton {baton_rps:.0f} acks/s, bare Starlette form endpoint {bare_rps:.0f} req/s, "
          f"ratio {baton_rps / bare_rps:.2f} (wrk -t1 -c{connections} -d{seconds}s, one uvicorn worker each)")


def latency(directory: Path, twilio: FakeTwilio, count: int, rate: float) -> None:
    config = write_config(directory, twilio.base_url, "warning")
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/wa"
    baton = serve(config, port, workers=1)
    wait_for_worker(directory / "data")
    sent: dict[str, float] = {}
    try:
        with httpx.Client() as client:
            run = str(int(time.time()))[-6:] + "9"
            for n in range(count):
                signature, form = signed_form(url, n, run)
                sent[form["From"]] = time.monotonic()
                response = client.post(url, data=form, headers={"X-Twilio-Signature": signature})
                response.raise_for_status()
                time.sleep(1 / rate)
        deadline = time.monotonic() + 60
        while len(twilio.arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop(baton)
    order = list(sent)
    by_index = {order.index(to): (twilio.arrivals[to] - sent[to]) * 1000 for to in sent if to in twilio.arrivals}
    slowest = sorted(by_index.items(), key=lambda item: -item[1])[:3]
    delays = sorted(by_index.values())
    if len(delays) < count:
        print(f"latency: only {len(delays)} of {count} replies arrived")
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    p90 = delays[int(len(delays) * 0.9)]
    print(f"latency: webhook → reply at Twilio, {len(delays)} messages at {rate:.0f}/s: median "
          f"{statistics.median(delays):.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, max {delays[-1]:.1f} ms; "
          f"slowest (message #, ms): {', '.join(f'#{i} {ms:.0f}' for i, ms in slowest)}")


class TimedTwilio(FakeTwilio):
    """The fake Twilio, noting when each recipient's first reply arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: dict[str, float] = {}
        self._arrival_lock = threading.Lock()

    def handle(self, request):  # type: ignore[no-untyped-def]
        with self._arrival_lock:
            self.arrivals.setdefault(request.form.get("To", [""])[0], time.monotonic())
        return super().handle(request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second for the latency run")
    args = parser.parse_args()
    os.environ.pop("REDIS_URL", None)
    with tempfile.TemporaryDirectory() as tmp, TimedTwilio() as twilio:
        for part in ("throughput", "latency"):
            (Path(tmp) / part).mkdir()
        throughput(Path(tmp) / "throughput", twilio.base_url, args.seconds, args.connections)
        latency(Path(tmp) / "latency", twilio, args.messages, args.rate)


if __name__ == "__main__":
    main()
