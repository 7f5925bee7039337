"""validate_game_html, extract_html and reading a model's answer."""

from __future__ import annotations

import json

import pytest

from paletai.generation.validation import (
    MAX_GAME_BYTES,
    extract_html,
    parse_game_answer,
    partial_json,
    strip_fences,
    validate_game_html,
)
from tests.generation.providers.fake_llm import INVALID_GAME_HTML, VALID_GAME_HTML


def page(body: str, head: str = "") -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


GOOD_SCRIPT = "<script>let score = 0; requestAnimationFrame(() => score++);</script>"


def test_valid_game_has_no_complaints() -> None:
    assert validate_game_html(VALID_GAME_HTML) == []


@pytest.mark.parametrize(
    "body",
    [
        '<canvas id="c"></canvas>',
        '<div id="game-board"></div>',
        '<div class="grid cells"></div>',
        '<svg viewBox="0 0 10 10"></svg>',
    ],
)
def test_playable_roots(body: str) -> None:
    assert validate_game_html(page(body + GOOD_SCRIPT)) == []


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("", "the game is empty"),
        ("just words, no markup", "not HTML"),
        (page("<canvas></canvas>"), "no inline <script>"),
        (page("<canvas></canvas><script>   </script>"), "no inline <script>"),
        (page("<p>hi</p>" + GOOD_SCRIPT), "no playable root"),
        (
            page('<canvas></canvas><script src="https://cdn.x.com/a.js"></script>' + GOOD_SCRIPT),
            "external script",
        ),
        (
            page('<canvas></canvas><script src="//cdn.x.com/a.js"></script>' + GOOD_SCRIPT),
            "external script",
        ),
        (page('<canvas></canvas><script src="game.js"></script>' + GOOD_SCRIPT), "external script"),
        (
            page("<canvas></canvas>" + GOOD_SCRIPT, '<link rel="stylesheet" href="x.css">'),
            "external stylesheet",
        ),
        (
            page(
                "<canvas></canvas>" + GOOD_SCRIPT, "<style>@import url(http://f.com/a.css);</style>"
            ),
            "@import",
        ),
        (
            page(
                "<canvas></canvas>" + GOOD_SCRIPT,
                "<style>body{background:url('https://x.com/bg.png')}</style>",
            ),
            "CSS url()",
        ),
        (
            page('<canvas></canvas><img src="https://x.com/a.png">' + GOOD_SCRIPT),
            "external resource <img",
        ),
        (page("<canvas></canvas><script>fetch('/score')</script>"), "fetch()"),
        (page("<canvas></canvas><script>new XMLHttpRequest()</script>"), "XMLHttpRequest"),
        (page("<canvas></canvas><script>new WebSocket('wss://x')</script>"), "WebSocket"),
        (page("<canvas></canvas><script>new EventSource('/e')</script>"), "EventSource"),
        (page("<canvas></canvas><script>navigator.sendBeacon('/b')</script>"), "sendBeacon"),
        (page("<canvas></canvas><script>import('https://esm.sh/x')</script>"), "import()"),
        (page('<canvas onclick="fetch(1)"></canvas>' + GOOD_SCRIPT), "fetch()"),
    ],
)
def test_complaints(html: str, expected: str) -> None:
    complaints = validate_game_html(html)
    assert any(expected in complaint for complaint in complaints), complaints


def test_invalid_fixture_gets_every_complaint() -> None:
    complaints = validate_game_html(INVALID_GAME_HTML)
    assert len(complaints) == 3  # external script, no inline script, no playable root


def test_size_cap() -> None:
    padding = "<!--" + "x" * MAX_GAME_BYTES + "-->"
    complaints = validate_game_html(VALID_GAME_HTML.replace("</body>", padding + "</body>"))
    assert complaints == [
        f"the file is {len(padding) // 1024 + 1} KB; keep the whole game under 250 KB"
    ]


def test_code_words_inside_strings_of_other_names_are_fine() -> None:
    script = "<script>const prefetchable = 1; function fetcher() {} let webSocketish = 2;</script>"
    assert validate_game_html(page("<canvas></canvas>" + script)) == []


def test_extract_html() -> None:
    assert extract_html(f"Here:\n```html\n{VALID_GAME_HTML}```\nbye") == VALID_GAME_HTML.strip()
    assert extract_html(f"```\n{VALID_GAME_HTML}\n```") == VALID_GAME_HTML.strip()
    assert extract_html(VALID_GAME_HTML) == VALID_GAME_HTML.strip()
    assert extract_html("  <html><body></body></html>") == "<html><body></body></html>"
    assert extract_html("```python\nprint(1)\n```") is None
    assert extract_html("no code here") is None
    # A cut answer: the unterminated fence still yields what it has.
    assert extract_html("```html\n<!DOCTYPE html><canvas>") == "<!DOCTYPE html><canvas>"
    # The first html block wins.
    assert extract_html("```html\n<p>1</p>\n```\n```html\n<p>2</p>\n```") == "<p>1</p>"


def test_strip_fences() -> None:
    assert strip_fences("```html\nrest</html>\n```") == "rest</html>"
    assert strip_fences("rest</html>") == "rest</html>"


def test_parse_game_answer() -> None:
    answer = json.dumps({"title": "T", "description": "D", "controls": "C", "html": "<canvas>"})
    fields = parse_game_answer(answer, "a prompt")
    assert fields is not None
    assert (fields.title, fields.description, fields.controls, fields.html) == (
        "T",
        "D",
        "C",
        "<canvas>",
    )
    # JSON without labels: defaults from the HTML's <title> and the prompt.
    fields = parse_game_answer(json.dumps({"html": VALID_GAME_HTML}), "space snake please")
    assert fields is not None
    assert (fields.title, fields.description) == ("Fake Dodge", "space snake please")
    fenced = parse_game_answer(json.dumps({"html": f"```html\n{VALID_GAME_HTML}```"}), "p")
    assert fenced is not None
    assert fenced.html == VALID_GAME_HTML.strip()
    assert parse_game_answer('{"title": "no html"}', "p") is None
    assert parse_game_answer("sorry", "p") is None


def test_partial_json_keeps_the_unfinished_string() -> None:
    assert partial_json('{"title": "T", "html": "<canv') == {"title": "T", "html": "<canv"}
    assert partial_json("nothing") == {}


@pytest.mark.parametrize("prompt", ["snake", "pong", "breakout", "flappy bird", "2048", "memory"])
async def test_offline_games_pass_validation(prompt: str) -> None:
    # The offline author goes through the same author_game as the SDK providers.
    from paletai.generation.providers.base import GenerationRequest, no_progress
    from paletai.generation.providers.offline import OfflineProvider

    draft = await OfflineProvider().generate(
        GenerationRequest(prompt=prompt, seed="s"), no_progress
    )
    assert validate_game_html(draft.html) == []
