"""A stand-in for Twilio's Messages API in a process of its own, for benchmarks: it accepts every send (as the
twilio SDK expects) and appends one JSON line per message to a log, stamped with the time it arrived.

    python benchmarks/twilio_sink.py --port 8300 --log sent.jsonl
"""

from __future__ import annotations

import argparse
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


def app(log: IO[str]) -> Starlette:
    async def create(request: Request) -> JSONResponse:
        arrived = time.time()
        form = parse_qs((await request.body()).decode())
        body, to = form.get("Body", [""])[0], form.get("To", [""])[0]
        sid = "SM" + secrets.token_hex(16)
        log.write(json.dumps({"at": arrived, "to": to, "body": body, "sid": sid}) + "\n")
        log.flush()
        account = request.path_params["account"]
        return JSONResponse(status_code=201, content={
            "account_sid": account, "api_version": "2010-04-01", "body": body, "date_created": formatdate(usegmt=True),
            "direction": "outbound-api", "from": form.get("From", [""])[0], "sid": sid, "status": "queued", "to": to,
            "num_media": "0", "num_segments": "1", "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json"})

    return Starlette(routes=[Route("/2010-04-01/Accounts/{account}/Messages.json", create, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    with open(args.log, "a", encoding="utf-8") as log:
        uvicorn.run(app(log), host="127.0.0.1", port=args.port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
