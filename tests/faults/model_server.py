"""An OpenAI-compatible chat-completions server for the fault suite, in a process of its own: it answers
"Re: <the customer's last message>" after --delay seconds, so every answer names the message it answers; the
first request whose last message contains --hold-marker is held for --hold-seconds instead, so a test can kill
the worker that holds that turn. Each request is logged as it arrives, with the caller's TCP port.

    python tests/faults/model_server.py --port 8100 --log model.jsonl --hold-marker HOLDTURN --hold-seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from typing import IO

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_ids = itertools.count(1)


def app(log: IO[str], delay: float, hold_marker: str, hold_seconds: float) -> Starlette:
    held: set[str] = set()

    async def completions(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
        text = users[-1] if users else ""
        peer = request.client.port if request.client else 0
        log.write(json.dumps({"at": time.time(), "peer_port": peer, "text": text[:200]}) + "\n")
        log.flush()
        if hold_marker and hold_marker in text and text not in held:
            held.add(text)
            await asyncio.sleep(hold_seconds)
        else:
            await asyncio.sleep(delay)
        return JSONResponse({
            "id": f"chatcmpl-{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "echo"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"Re: {text[:200]}"},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--hold-marker", default="")
    parser.add_argument("--hold-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with open(args.log, "a", encoding="utf-8") as log:
        uvicorn.run(app(log, args.delay, args.hold_marker, args.hold_seconds), host="127.0.0.1", port=args.port,
                    log_level="warning", backlog=4096, timeout_keep_alive=30)


if __name__ == "__main__":
    main()
