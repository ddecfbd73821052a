"""The pages people use: the team inbox (/inbox), the widget script (/widget.js) and the demo page (/demo)."""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

STATIC = resources.files("gateway").joinpath("static")


def _page(name: str, media_type: str = "text/html; charset=utf-8"):  # type: ignore[no-untyped-def]
    async def serve(request: Request) -> Response:
        return FileResponse(str(STATIC.joinpath(name)), media_type=media_type,
                            headers={"Cache-Control": "no-cache"})

    return serve


def routes() -> list[BaseRoute]:
    return [
        Route("/demo", _page("demo.html"), include_in_schema=False),
        Route("/widget.js", _page("widget.js", "text/javascript; charset=utf-8"), include_in_schema=False),
        Route("/inbox", _page("inbox.html"), include_in_schema=False),
    ]
