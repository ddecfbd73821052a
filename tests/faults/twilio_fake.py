"""A stand-in for Twilio's Messages API in a process of its own, for the fault suite: it accepts every send (as
the twilio SDK expects) and appends one JSON line per send to a log as soon as the request has arrived, before
answering: its arrival time, the sender's TCP port (so a test can find and kill the process that sent it), the
recipient and the body. A body containing --hold-marker is answered only after --hold-seconds, so a test can
kill the sender between Twilio's acceptance and Baton's record of it. POST /notify takes a notifier's webhook and
logs it in the same file (with a "notification" field instead of "body").

GET on the Messages list answers as Twilio does (newest first, filtered by To and From), from the messages taken.
POST /control {"mode": …, "seconds": …} makes it misbehave until told otherwise: `hang` takes each message and
answers only after `seconds`; `blackhole` takes nothing and answers 503 after `seconds` (the request never reached
Twilio's records: logged with "dropped" instead of "body"); `fail` answers 503 at once; `ok` again. The list answers
503 in every mode but `ok`.

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
    taken: list[dict[str, str]] = []  # the messages created, oldest first, as the list answers them
    state = {"mode": "ok", "seconds": 0.0}

    def unavailable() -> JSONResponse:
        return JSONResponse(status_code=503, content={"code": 20503, "message": "Service Unavailable",
                                                      "more_info": "https://www.twilio.com/docs/errors/20503",
                                                      "status": 503})

    async def create(request: Request) -> JSONResponse:
        arrived = time.time()
        form = parse_qs((await request.body()).decode())
        body, to = form.get("Body", [""])[0], form.get("To", [""])[0]
        mode, seconds = state["mode"], float(state["seconds"])
        peer = request.client.port if request.client else 0
        if mode == "fail":
            return unavailable()
        if mode == "blackhole":
            log.write(json.dumps({"at": arrived, "to": to, "dropped": body, "peer_port": peer}) + "\n")
            log.flush()
            await asyncio.sleep(seconds)
            return unavailable()
        sid = "SM" + secrets.token_hex(16)
        log.write(json.dumps({"at": arrived, "to": to, "body": body, "sid": sid, "peer_port": peer}) + "\n")
        log.flush()
        account = request.path_params["account"]
        resource = {
            "account_sid": account, "api_version": "2010-04-01", "body": body, "date_created": formatdate(usegmt=True),
            "direction": "outbound-api", "from": form.get("From", [""])[0], "sid": sid, "status": "queued", "to": to,
            "num_media": "0", "num_segments": "1", "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json"}
        taken.append(resource)
        if hold_marker and hold_marker in body:
            await asyncio.sleep(hold_seconds)
        if mode == "hang":
            await asyncio.sleep(seconds)
        return JSONResponse(status_code=201, content=resource)

    async def listing(request: Request) -> JSONResponse:
        if state["mode"] != "ok":
            return unavailable()
        query = request.query_params
        wanted = {name.lower(): query[name] for name in ("To", "From") if name in query}
        size = int(query.get("PageSize", "50"))
        found = [m for m in reversed(taken) if all(m[name] == value for name, value in wanted.items())][:size]
        uri = str(request.url.path)
        return JSONResponse({"messages": found, "uri": uri, "first_page_uri": uri, "next_page_uri": None,
                             "previous_page_uri": None, "page": 0, "page_size": size, "start": 0,
                             "end": len(found)})

    async def control(request: Request) -> JSONResponse:
        asked = json.loads(await request.body())
        state.update(mode=str(asked["mode"]), seconds=float(asked.get("seconds", 0)))
        log.write(json.dumps({"at": time.time(), "mode": state["mode"]}) + "\n")
        log.flush()
        return JSONResponse(state)

    async def notify(request: Request) -> JSONResponse:
        """A notifier webhook (workspaces[].notifiers, type webhook) pointed here: logged like a send."""
        notification = json.loads(await request.body())
        log.write(json.dumps({"at": time.time(), "notification": notification.get("id"),
                              "type": notification.get("type"), "conversation": notification.get("conversation")})
                  + "\n")
        log.flush()
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/2010-04-01/Accounts/{account}/Messages.json", create, methods=["POST"]),
                             Route("/2010-04-01/Accounts/{account}/Messages.json", listing, methods=["GET"]),
                             Route("/control", control, methods=["POST"]),
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
