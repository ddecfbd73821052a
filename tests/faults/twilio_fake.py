"""A stand-in for Twilio's Messages API in a process of its own, for the fault suite: it accepts every send (as
the twilio SDK expects) and appends one JSON line per send to a log as soon as the request has arrived, before
answering: its arrival time, the sender's TCP port (so a test can find and kill the process that sent it), the
recipient and the body. A body containing --hold-marker is answered only after --hold-seconds, so a test can
kill the sender between Twilio's acceptance and Baton's record of it. POST /notify takes a notifier's webhook and
logs it in the same file (with a "notification" field instead of "body").

    python tests/faults/twilio_fake.py --port 8300 --log sent.jsonl --hold-marker HOLDSEND --hold-seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from email.utils import formatdate
from typing import IO
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def app(log: IO[str], hold_marker: str, hold_seconds: float) -> Starlette:
    async def create(request: Request) -> JSONResponse:
        arrived = time.time()
        form = parse_qs((await request.body()).decode())
        body, to = form.get("Body", [""])[0], form.get("To", [""])[0]
        sid = "SM" + secrets.token_hex(16)
        peer = request.client.port if request.client else 0
        log.write(json.dumps({"at": arrived, "to": to, "body": body, "sid": sid, "peer_port": peer}) + "\n")
        log.flush()
        if hold_marker and hold_marker in body:
            await asyncio.sleep(hold_seconds)
        account = request.path_params["account"]
        return JSONResponse(status_code=201, content={
            "account_sid": account, "api_version": "2010-04-01", "body": body, "date_created": formatdate(usegmt=True),
            "direction": "outbound-api", "from": form.get("From", [""])[0], "sid": sid, "status": "queued", "to": to,
            "num_media": "0", "num_segments": "1", "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json"})

    async def notify(request: Request) -> JSONResponse:
        """A notifier webhook (workspaces[].notifiers, type webhook) pointed here: logged like a send."""
        notification = json.loads(await request.body())
        log.write(json.dumps({"at": time.time(), "notification": notification.get("id"),
                              "type": notification.get("type"), "conversation": notification.get("conversation")})
                  + "\n")
        log.flush()
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/2010-04-01/Accounts/{account}/Messages.json", create, methods=["POST"]),
                             Route("/notify", notify, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--hold-marker", default="")
    parser.add_argument("--hold-seconds", type=float, default=30.0)
    args = parser.parse_args()
    with open(args.log, "a", encoding="utf-8") as log:
        uvicorn.run(app(log, args.hold_marker, args.hold_seconds), host="127.0.0.1", port=args.port,
                    log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
