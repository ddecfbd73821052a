"""An OpenAI-compatible chat-completions server that answers every request after a fixed delay, concurrently
(asyncio), so a benchmark measures Baton waiting on a hosted model, not the fake's own limits.

    python benchmarks/slow_model.py --port 8100 --delay 1.0
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_ids = itertools.count(1)


def app(delay: float, text: str) -> Starlette:
    async def completions(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        await asyncio.sleep(delay)
        prompt = sum(len(m.get("content") or "") for m in body.get("messages", [])) // 4 + 1
        return JSONResponse({
            "id": f"chatcmpl-{next(_ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "slow"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 12, "total_tokens": prompt + 12}})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--text", default="Orders ship within one business day.")
    args = parser.parse_args()
    uvicorn.run(app(args.delay, args.text), host="127.0.0.1", port=args.port, log_level="warning",
                backlog=4096, timeout_keep_alive=30)


if __name__ == "__main__":
    main()
