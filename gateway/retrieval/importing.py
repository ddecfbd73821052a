"""Files an admin imports into the knowledge base: Markdown (one article per top-level heading; the file's name for a
file without one) and HTML (its <title> or first <h1>; headings, paragraphs and list items become Markdown)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import PurePosixPath

from gateway.errors import BadRequest

FORMATS = ("markdown", "html")
_TOP = re.compile(r"^#[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def detect_format(name: str, declared: str | None) -> str:
    if declared:
        if declared not in FORMATS:
            raise BadRequest(f"'format' must be one of {', '.join(FORMATS)} (PDF is not supported)")
        return declared
    suffix = PurePosixPath(name).suffix.casefold()
    if suffix in (".md", ".markdown", ".txt"):
        return "markdown"
    if suffix in (".html", ".htm"):
        return "html"
    raise BadRequest(f"cannot tell the format of {name!r}: name it .md or .html, or give 'format' "
                     "(markdown or html; PDF is not supported)")


def split_file(name: str, content: str, file_format: str) -> list[tuple[str, str]]:
    """(title, Markdown body) of each article in a file."""
    markdown = html_to_markdown(content) if file_format == "html" else content
    articles: list[tuple[str, list[str]]] = []
    fenced = False
    lead: list[str] = []
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        top = None if fenced else _TOP.match(line)
        if top:
            articles.append((top.group(1).strip(), []))
        elif articles:
            articles[-1][1].append(line)
        else:
            lead.append(line)
    found = [(title, "\n".join(body).strip()) for title, body in articles]
    if not found:
        stem = PurePosixPath(name).stem.replace("-", " ").replace("_", " ").strip() or "Untitled"
        found = [(stem[:1].upper() + stem[1:], "\n".join(lead).strip())]
    elif "\n".join(lead).strip():  # text before the first heading belongs to the first article
        title, body = found[0]
        found[0] = (title, "\n\n".join(["\n".join(lead).strip(), body]).strip())
    return [(title, body) for title, body in found if body]


class _Text(HTMLParser):
    BLOCKS = {"p", "div", "section", "article", "br", "tr", "table", "ul", "ol", "blockquote", "pre"}
    SKIP = {"script", "style", "nav", "header", "footer", "noscript", "template", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.title = ""
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag == "title":
            self.in_title = True
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.out.append("\n\n" + "#" * (1 if tag == "h1" else 2) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(self.skipping - 1, 0)
        elif tag == "title":
            self.in_title = False
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6") or tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif not self.skipping:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_markdown(content: str) -> str:
    parser = _Text()
    parser.feed(content)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if not text.startswith("# ") and parser.title.strip():
        text = f"# {html.unescape(parser.title.strip())}\n\n{text}"
    return text
