"""An OpenAI-compatible chat-completions server for the fault suite, in a process of its own: it answers
"Re: <the customer's last message>" after --delay seconds, so every answer names the message it answers; the
first request whose last message contains --hold-marker is held for --hold-seconds instead, so a test can kill
the worker that holds that turn. Each request is logged as it arrives, with the caller's TCP port and the mode it
met.

`PUT /mode {"mode": …, "late": seconds}` makes it misbehave from the next request on, as a provider does:
`answer` (the default), `hang` (holds every request for --hold-seconds), `error` (HTTP 500 with an OpenAI error
body), `garbage` (HTTP 200 whose body is no completion, as a misconfigured proxy answers), `late` (answers after
`late` seconds, meant to be past the caller's timeout), `huge` (answers "Re: <the message>" followed by `size`
characters of sentences, whatever max_tokens the caller asked for). Each request's log line also says the
max_tokens it asked for and how many characters its messages held.

    python tests/faults/model_server.py --port 8100 --log model.jsonl --hold-marker HOLDTURN --hold-seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from typing import IO, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODES = ("answer", "hang", "error", "garbage", "late", "huge")
SENTENCE = "This lamp's warranty covers parts and labour for two years from delivery. "
_ids = itertools.count(1)


def app(log: IO[str], delay: float, hold_marker: str, hold_seconds: float) -> Starlette:
    held: set[str] = set()
    state: dict[str, Any] = {"mode": "answer", "late": 0.0, "size": 0}

    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())
        users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
        text = users[-1] if users else ""
        peer = request.client.port if request.client else 0
        mode = state["mode"]
        prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
        log.write(json.dumps({"at": time.time(), "peer_port": peer, "text": text[:200], "mode": mode,
                              "max_tokens": body.get("max_tokens"), "prompt_chars": prompt}) + "\n")
        log.flush()
        if mode == "error":
            return JSONResponse({"error": {"message": "the model is overloaded", "type": "server_error"}},
                                status_code=500)
        if mode == "garbage":
            return Response(b"<html>upstream says hello</html>", media_type="application/json")
        if mode == "hang" or (hold_marker and hold_marker in text and text not in held):
            held.add(text)
            await asyncio.sleep(hold_seconds)
        else:
            await asyncio.sleep(state["late"] if mode == "late" else delay)
        content = f"Re: {text[:200]}"
        if mode == "huge":
            content += "\n\n" + (SENTENCE * (int(state["size"]) // len(SENTENCE) + 1))[:int(state["size"])]
        return JSONResponse({
            "id": f"chatcmpl-{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "echo"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

    async def set_mode(request: Request) -> JSONResponse:
        wanted = json.loads(await request.body())
        if wanted.get("mode") not in MODES:
            return JSONResponse({"error": f"mode must be one of {', '.join(MODES)}"}, status_code=400)
        state.update(mode=wanted["mode"], late=float(wanted.get("late", 0.0)), size=int(wanted.get("size", 0)))
        return JSONResponse(state)

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                             Route("/mode", set_mode, methods=["PUT"])])


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
