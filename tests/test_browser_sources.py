"""Rules of the browser code, checked on the source of every module (no browser needed): a test in
Chromium catches a breach only where it happens to look.

- Text goes in as text: no HTML parsing of data anywhere.
- Children go through dom.js (h, append, fill), which flattens arrays and skips null: the native
  replaceChildren()/append()/prepend() turn an array into "[object HTMLOptionElement]" and null into "null"
  (the "Assign to…" select that listed nobody).
- Event streams are read with fetch() and the token in a header: never EventSource, never a token in a URL.
- The widget's field limits come from the server: none is written in its code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gateway.web

STATIC = Path(gateway.web.__file__).parent / "static"
MODULES = sorted(STATIC.rglob("*.js"))
WIDGET = [STATIC / "widget.js", *sorted((STATIC / "widget").glob("*.js"))]


def source(path: Path) -> str:
    """The code without its comments (a comment may name what the code must not do)."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"(?m)(^|\s)//.*$", "", text)


def name(path: Path) -> str:
    return str(path.relative_to(STATIC))


def test_the_modules_are_found() -> None:
    assert {"widget.js", "widget/main.js", "inbox/app.js", "inbox/dom.js", "inbox/stream.js"} <= set(map(name, MODULES))


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_text_goes_in_as_text(path: Path) -> None:
    assert not re.findall(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|DOMParser", source(path))


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "dom.js"], ids=name)
def test_children_go_through_the_dom_helpers(path: Path) -> None:
    assert not re.findall(r"\.(replaceChildren|append|prepend)\(", source(path))


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_streams_carry_no_token_in_a_url(path: Path) -> None:
    assert not re.findall(r"new EventSource|[?&]token=", source(path))


@pytest.mark.parametrize("path", WIDGET, ids=name)
def test_the_widget_has_no_field_limits_of_its_own(path: Path) -> None:
    assert not re.findall(r"max_?length\W+\d|maxlength=\W*\d", source(path), flags=re.I)
