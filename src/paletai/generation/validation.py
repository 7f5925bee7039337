"""Check a generated game before it is published, and read games out of a model's answer.

The game runs in a sandboxed iframe under `Content-Security-Policy: default-src 'none'`, so
anything it loads from elsewhere would simply break it: such games are refused here, with
complaints the model can act on in its repair round.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import jiter

MAX_GAME_BYTES = 250 * 1024

# id/class words that mark the element a DOM game is played in.
_ROOT_WORDS = re.compile(r"game|board|grid|arena|playfield|stage", re.IGNORECASE)
_JS_TYPES = {"", "text/javascript", "application/javascript", "module", "text/ecmascript"}
_EXTERNAL_URL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
# Elements whose src/href would fetch something when the page loads.
_LOADING_ATTRS = {
    "img": "src",
    "audio": "src",
    "video": "src",
    "source": "src",
    "track": "src",
    "iframe": "src",
    "embed": "src",
    "object": "data",
    "input": "src",
}
_LINK_LOADING_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "import", "manifest"}

_NETWORK_CALLS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bfetch\s*\("), "fetch()"),
    (re.compile(r"\bXMLHttpRequest\b"), "XMLHttpRequest"),
    (re.compile(r"\bWebSocket\b"), "WebSocket"),
    (re.compile(r"\bEventSource\b"), "EventSource"),
    (re.compile(r"\bsendBeacon\b"), "navigator.sendBeacon"),
    (re.compile(r"\bimportScripts\s*\("), "importScripts()"),
    (re.compile(r"\bimport\s*\(\s*['\"`]"), "import() of a URL"),
    (re.compile(r"\bimport\b[^;\n]*?\bfrom\s*['\"]"), "an import statement"),
]
_CSS_IMPORT = re.compile(r"@import\b", re.IGNORECASE)
_CSS_EXTERNAL_URL = re.compile(r"url\(\s*['\"]?\s*(?:https?:)?//", re.IGNORECASE)


class _GameScanner(HTMLParser):
    """Collects what validation needs in one pass over the document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inline_scripts: list[str] = []
        self.script_srcs: list[str] = []
        self.styles: list[str] = []
        self.external: list[str] = []
        self.stylesheet_links: list[str] = []
        self.handlers: list[str] = []
        self.has_root = False
        self.tags = 0
        self._in_script: bool | None = None  # None: not in a script; else: is it JavaScript
        self._script_parts: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags += 1
        values = {name.lower(): (value or "") for name, value in attrs}
        for name, value in values.items():
            if name.startswith("on") and value:
                self.handlers.append(value)
        if "style" in values:
            self.styles.append(values["style"])
        if tag in ("canvas", "svg"):
            self.has_root = True
        elif _ROOT_WORDS.search(f"{values.get('id', '')} {values.get('class', '')}"):
            self.has_root = True
        if tag == "script":
            if "src" in values:
                self.script_srcs.append(values["src"] or "(empty)")
            script_type = values.get("type", "").strip().lower()
            self._in_script = script_type in _JS_TYPES and "src" not in values
            self._script_parts = []
        elif tag == "style":
            self._in_style = True
        elif tag == "link":
            rels = set(values.get("rel", "").lower().split())
            href = values.get("href", "")
            if rels & _LINK_LOADING_RELS and href:
                self.stylesheet_links.append(href)
            elif href and _EXTERNAL_URL.match(href) and rels & {"icon", "shortcut"}:
                self.external.append(f"<link href={href!r}>")
        elif tag == "base" and values.get("href"):
            self.external.append(f"<base href={values['href']!r}>")
        else:
            attr = _LOADING_ATTRS.get(tag)
            if attr and _EXTERNAL_URL.match(values.get(attr, "")):
                self.external.append(f"<{tag} {attr}={values[attr]!r}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_script is not None:
            if self._in_script:
                self.inline_scripts.append("".join(self._script_parts))
            self._in_script = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            self._script_parts.append(data)
        elif self._in_style:
            self.styles.append(data)

    def close(self) -> None:
        super().close()
        # An unterminated <script> (a truncated answer) still counts as what it holds.
        if self._in_script:
            self.inline_scripts.append("".join(self._script_parts))
        self._in_script = None


def _short(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def validate_game_html(html: str) -> list[str]:
    """Everything wrong with a generated game, one complaint each; empty means it is valid."""
    if not html or not html.strip():
        return ["the game is empty: write one complete HTML document"]
    complaints: list[str] = []
    size = len(html.encode("utf-8"))
    if size > MAX_GAME_BYTES:
        complaints.append(
            f"the file is {size // 1024} KB; keep the whole game under {MAX_GAME_BYTES // 1024} KB"
        )
    scanner = _GameScanner()
    scanner.feed(html)
    scanner.close()
    if scanner.tags == 0:
        return ["the answer is not HTML: write one complete HTML document"]
    for src in scanner.script_srcs:
        complaints.append(
            f"external script <script src={_short(src)!r}> is not allowed: inline all JavaScript"
        )
    for href in scanner.stylesheet_links:
        complaints.append(
            f"external stylesheet or resource <link href={_short(href)!r}> is not allowed: "
            "inline all CSS in a <style> element"
        )
    for what in scanner.external:
        complaints.append(
            f"external resource {_short(what)} is not allowed: the game cannot load anything "
            "from the network (draw with canvas/CSS, or use data: URLs)"
        )
    css = "\n".join(scanner.styles)
    if _CSS_IMPORT.search(css):
        complaints.append("CSS @import is not allowed: inline all CSS in a <style> element")
    if _CSS_EXTERNAL_URL.search(css):
        complaints.append("CSS url() pointing at the network is not allowed (no web fonts/images)")
    scripts = scanner.inline_scripts
    if not any(script.strip() for script in scripts):
        complaints.append("there is no inline <script>: the game logic must be inline JavaScript")
    code = "\n".join([*scripts, *scanner.handlers])
    for pattern, label in _NETWORK_CALLS:
        if pattern.search(code):
            complaints.append(
                f"the script uses {label}: the game runs offline and must not use the network"
            )
    if not scanner.has_root:
        complaints.append(
            "there is no playable root: add a <canvas> (or an element with id/class 'game', "
            "'board' or 'grid', or an <svg>) that the game draws into"
        )
    return complaints


_FENCE = re.compile(r"```[ \t]*(html|htm)?[ \t]*\r?\n(.*?)(?:\r?\n[ \t]*```|\Z)", re.S | re.I)
_DOC_START = re.compile(r"^\s*(<!doctype\s+html|<html[\s>])", re.I)


def extract_html(text: str) -> str | None:
    """The game in a free-text answer: the first ```html block, or the whole text if it is HTML.

    An unterminated fence (a truncated answer) yields everything after it.
    """
    if _DOC_START.match(text):
        return text.strip()
    fallback: str | None = None
    for match in _FENCE.finditer(text):
        body = match.group(2).strip()
        if match.group(1):
            return body
        if fallback is None and _DOC_START.match(body):
            fallback = body
    return fallback


def strip_fences(text: str) -> str:
    """A continuation's text without the code fence the model may have wrapped it in."""
    stripped, opened = re.subn(r"^\s*```[a-zA-Z]*[ \t]*\r?\n", "", text, count=1)
    if opened:
        stripped = re.sub(r"\r?\n?[ \t]*```\s*$", "", stripped, count=1)
    return stripped


@dataclass
class GameFields:
    """The labelled game a model answered with (before it becomes a GameDraft)."""

    title: str
    description: str
    controls: str
    html: str


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)


def _fallback_title(html: str, prompt: str) -> str:
    match = _TITLE.search(html)
    if match and match.group(1).strip():
        return _short(" ".join(match.group(1).split()), 80)
    words = prompt.split()[:6]
    return _short(" ".join(words).strip(" .!?").capitalize() or "Untitled game", 80)


def fields_from_mapping(data: Any, prompt: str) -> GameFields | None:
    """GameFields from a decoded JSON object, or None if it holds no HTML."""
    if not isinstance(data, dict):
        return None
    html = data.get("html")
    if not isinstance(html, str) or not html.strip():
        return None
    if html.lstrip().startswith("```"):  # a fenced block inside the JSON string
        html = extract_html(html) or html

    def text(key: str, default: str) -> str:
        value = data.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else default

    return GameFields(
        title=_short(text("title", _fallback_title(html, prompt)), 120),
        description=text("description", _short(prompt, 300)),
        controls=text("controls", "Keyboard or touch"),
        html=html,
    )


def fields_from_html(html: str, prompt: str) -> GameFields:
    return GameFields(
        title=_fallback_title(html, prompt),
        description=_short(prompt, 300),
        controls="Keyboard or touch",
        html=html,
    )


def partial_json(text: str) -> dict[str, Any]:
    """What a truncated JSON object says so far (an unfinished string keeps what it has)."""
    start = text.find("{")
    if start < 0:
        return {}
    try:
        data = jiter.from_json(text[start:].encode("utf-8"), partial_mode="trailing-strings")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def parse_game_answer(text: str, prompt: str) -> GameFields | None:
    """Read a game from a model's answer: the JSON object asked for, else a fenced HTML block,
    else (a JSON object broken somewhere) the fields it holds so far."""
    stripped = text.strip()
    if stripped.startswith("```json"):
        stripped = strip_fences(stripped).strip()
    try:
        fields = fields_from_mapping(json.loads(stripped), prompt)
    except ValueError:
        fields = None
    if fields is not None:
        return fields
    html = extract_html(text)
    if html:
        return fields_from_html(html, prompt)
    return fields_from_mapping(partial_json(stripped), prompt)
