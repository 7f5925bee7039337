"""The offline provider: template choice, theming, escaping, determinism, remix, hygiene."""

from __future__ import annotations

import html as html_lib
import json
import re
from typing import Any

import pytest

from paletai.generation.cover import palette_for
from paletai.generation.providers.base import GameDraft, GameProvider, GenerationRequest
from paletai.generation.providers.offline import (
    OfflineProvider,
    Theme,
    assemble_template,
    choose_template,
    fill_template,
    speed_for,
    template_names,
    template_of,
    title_for,
)

EXPECTED_TEMPLATES = {
    "snake",
    "pong",
    "breakout",
    "flappy",
    "shooter",
    "2048",
    "memory",
    "arena",
    "platformer",
}
HOSTILE = "</script><script>alert(1)</script> \"quoted\" 'single' <b>bold</b> & {{TITLE}}"


def build(prompt: str, seed: str = "seed-1", **kw: Any) -> GameDraft:
    return OfflineProvider().build(GenerationRequest(prompt=prompt, seed=seed, **kw))


def scripts_of(document: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", document, flags=re.S)


def test_ships_all_templates() -> None:
    assert set(template_names()) >= EXPECTED_TEMPLATES
    assert template_names() == sorted(template_names())


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("Create a simple snake game", "snake"),
        ("a worm that eats apples", "snake"),
        ("Serpents!", "snake"),
        ("ping pong against the computer", "pong"),
        ("tennis with paddles", "pong"),
        ("a breakout clone", "breakout"),
        ("smash the bricks", "breakout"),
        ("Arkanoid in lava colours", "breakout"),
        ("flappy bird but a cat", "flappy"),
        ("a helicopter in a cave", "flappy"),
        ("space invaders", "shooter"),
        ("shoot the asteroids", "shooter"),
        ("aliens attack", "shooter"),
        ("2048", "2048"),
        ("merge the number tiles", "2048"),
        ("a memory game with cards", "memory"),
        ("find the matching pairs", "memory"),
        # A word that names a game outright beats a hint, wherever it stands.
        ("a snake in outer space", "snake"),
        ("space snake", "snake"),
        ("a puzzle where you find pairs", "memory"),
    ],
)
def test_chooses_template_from_prompt_words(prompt: str, kind: str) -> None:
    assert choose_template(prompt, "any-seed") == kind
    assert template_of(build(prompt).html) == kind


def test_no_game_word_chooses_by_seed_deterministically() -> None:
    prompt = "something cosy about a rainy afternoon"
    picks = {seed: choose_template(prompt, seed) for seed in (f"game-{i}" for i in range(40))}
    assert all(choose_template(prompt, seed) == kind for seed, kind in picks.items())
    assert len(set(picks.values())) >= 4  # the seed really spreads the choice


@pytest.mark.parametrize(
    ("prompt", "title"),
    [
        ("a neon snake game", "Neon Snake"),
        ("Create a simple snake game", "Snake"),
        ("make me a pong game please", "Pong"),
        ("2048", "2048"),
        ("", "Snake"),
    ],
)
def test_title_from_prompt(prompt: str, title: str) -> None:
    assert title_for(prompt, "snake") == title


def test_long_prompt_gives_short_title() -> None:
    title = title_for(
        "galactic " * 30 + "alien invaders from the deep dark nebula of doom", "shooter"
    )
    assert 0 < len(title) <= 40


def test_theme_uses_colour_words_and_speed_words() -> None:
    neon = build("a neon snake game")
    bg, fg, accent = palette_for("a neon snake game", "seed-1")
    assert (bg, fg, accent) == palette_for("neon", "another-seed")  # the word decides, not the seed
    for colour in (bg, fg, accent):
        assert colour in neon.html
    assert palette_for("ocean breakout", "x") != palette_for("lava breakout", "x")
    assert "var SPEED = 1.35;" in build("a fast hard snake").html
    assert "var SPEED = 0.75;" in build("an easy relaxed snake").html
    assert "var SPEED = 1.00;" in build("a snake").html


def test_colours_without_colour_words_come_from_seed() -> None:
    assert palette_for("a snake", "game-a") == palette_for("a snake", "game-a")
    assert palette_for("a snake", "game-a") != palette_for("a snake", "game-b")
    for colour in palette_for("a snake", "game-c"):
        assert re.fullmatch(r"#[0-9a-f]{6}", colour)


def test_draft_fields() -> None:
    draft = build("a neon snake game")
    assert draft.title == "Neon Snake"
    assert draft.provider == "offline"
    assert draft.model == "templates-v1"
    assert draft.usage == {}
    assert "snake" in draft.description.lower()
    assert "arrow" in draft.controls.lower()
    assert "{{" not in draft.html
    assert "<title>Neon Snake</title>" in draft.html


def test_same_prompt_and_seed_same_game() -> None:
    assert build("a pastel breakout", "s1") == build("a pastel breakout", "s1")
    assert build("a breakout", "s1").html != build("a breakout", "s2").html  # seed colours


def test_hostile_prompt_is_escaped_everywhere() -> None:
    draft = build(f"snake {HOSTILE}")
    document = draft.html
    assert "alert(1)" not in "".join(scripts_of(document))
    assert "<script>alert" not in document
    assert "<b>bold</b>" not in document
    # The page still has exactly the template's one script and its closing tag.
    assert document.count("<script>") == 1
    assert document.count("</script>") == 1
    # The caption shows the prompt, escaped as HTML text.
    assert html_lib.escape("</script><script>alert(1)</script>", quote=True) in document


def test_fill_template_escapes_each_context() -> None:
    theme = Theme(
        title=HOSTILE, caption=HOSTILE, palette=("#000000", "#ffffff", "#ff0000"), speed=1
    )
    source = (
        '<title>{{TITLE}}</title><p title="{{CAPTION}}">{{CAPTION}}</p>'
        "<script>var t = {{TITLE_JS}}; var s = {{SPEED}};</script>"
    )
    filled = fill_template(source, theme)
    head, script = filled.split("<script>", 1)
    assert "<script" not in head
    assert "<b>" not in head
    assert '"quoted"' not in head  # quotes cannot close an attribute
    assert "&lt;/script&gt;" in head
    assert "</script>" not in script.removesuffix("</script>")
    assert "\\u003c/script\\u003e" in script
    # Values are filled in once: a placeholder inside a value stays literal text.
    assert filled.count("{{TITLE}}") == 4


def test_fill_template_refuses_unknown_placeholders_and_bad_values() -> None:
    theme = Theme(title="t", caption="c", palette=("#000000", "#ffffff", "#ff0000"), speed=1)
    with pytest.raises(ValueError, match="NOPE"):
        fill_template("{{NOPE}}", theme)
    bad = Theme(title="t", caption="c", palette=("red;}</style>", "#ffffff", "#ff0000"), speed=1)
    with pytest.raises(ValueError, match="colour"):
        fill_template("{{BG}}", bad)
    wild = Theme(title="t", caption="c", palette=("#000000", "#ffffff", "#ff0000"), speed=1e9)
    assert fill_template("{{SPEED}}", wild) == "2.00"


def test_assemble_template_pours_parts_into_the_shell() -> None:
    shell = (
        '<meta content="{{>KIND}}"><p>{{>HELP}}</p>\n{{>PAD}}\n'
        "<script>var k = {{>KIND_JS}}, h = {{>HELP_JS}};\n{{>GAME}}\n</script>"
    )
    game = (
        "<!-- a comment is fine -->\n"
        '<template data-slot="help">Tap & go <now></template>\n'
        '<template data-slot="pad">left action</template>\n'
        '<script data-slot="game">\n  go({{SPEED}});\n</script>\n'
    )
    assembled = assemble_template("x-1", shell, game)
    assert '<meta content="x-1">' in assembled
    assert "<p>Tap &amp; go &lt;now&gt;</p>" in assembled
    assert 'var k = "x-1", h = "Tap \\u0026 go \\u003cnow\\u003e";' in assembled
    assert 'data-key="left"' in assembled
    assert 'data-key="action"' in assembled
    assert "\n  go({{SPEED}});\n</script>" in assembled  # placeholders are left for the fill
    assert "{{>" not in assembled
    no_pad = game.replace('<template data-slot="pad">left action</template>\n', "")
    assert "<button" not in assemble_template("x", shell, no_pad)


@pytest.mark.parametrize(
    ("name", "shell", "game", "complaint"),
    [
        ("x", "{{>HELP}}{{>GAME}}", '<template data-slot="help">h</template>', "parts"),
        ("x", "{{>GAME}}", '<script data-slot="game">g</script>stray', "outside"),
        (
            "x",
            "{{>NOPE}}",
            '<template data-slot="help">h</template><script data-slot="game">g</script>',
            "NOPE",
        ),
        (
            "x",
            "{{>PAD}}",
            '<template data-slot="help">h</template>'
            '<template data-slot="pad">jump</template><script data-slot="game">g</script>',
            "jump",
        ),
        (
            "x",
            "{{>GAME}}",
            '<template data-slot="help">{{>GAME}}</template><script data-slot="game">g</script>',
            "SLOT",
        ),
        (
            "x",
            "{{>GAME}}",
            '<template data-slot="help">h</template>'
            '<template data-slot="help">h</template><script data-slot="game">g</script>',
            "twice",
        ),
        ('x" onload="', "", "", "name"),
    ],
)
def test_assemble_template_refuses_bad_parts(
    name: str, shell: str, game: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        assemble_template(name, shell, game)


def test_partials_are_not_games() -> None:
    assert not [name for name in template_names() if name.startswith("_")]


def test_speed_words() -> None:
    assert speed_for("TURBO snake") > 1 > speed_for("chill snake")
    assert speed_for("fast but easy") == 1.0


async def test_provider_protocol_generate_repair_check() -> None:
    provider: GameProvider = OfflineProvider()
    assert (provider.name, provider.model) == ("offline", "templates-v1")
    stages: list[tuple[str, dict[str, Any]]] = []

    async def progress(stage: str, info: dict[str, Any]) -> None:
        stages.append((stage, info))

    request = GenerationRequest(prompt="retro pong", seed="g1")
    draft = await provider.generate(request, progress)
    assert template_of(draft.html) == "pong"
    assert stages
    assert stages[0][0] == "generating"
    assert stages[0][1]["chars"] == len(draft.html)
    repaired = await provider.repair(request, draft, ["anything"], progress)
    assert repaired == draft
    assert await provider.check() == "healthy"
    await provider.aclose()


def test_remix_keeps_parent_kind_unless_prompt_names_one() -> None:
    parent = build("a neon 2048", "parent")
    kept = build("make it faster", "child", parent_html=parent.html, parent_title=parent.title)
    assert template_of(kept.html) == "2048"
    assert "var SPEED = 1.35;" in kept.html
    assert kept.title == "Faster Neon 2048"
    again = build("more neon", "child", parent_html=parent.html, parent_title=parent.title)
    assert again.title == "Neon 2048"
    changed = build("now make it a snake", "child", parent_html=parent.html, parent_title="x")
    assert template_of(changed.html) == "snake"
    assert changed.title == "Snake"


def test_remix_recolours_from_new_prompt() -> None:
    parent = build("a neon snake", "parent")
    child = build("ocean colours", "child", parent_html=parent.html, parent_title=parent.title)
    assert template_of(child.html) == "snake"
    assert palette_for("ocean", "child")[2] in child.html
    assert palette_for("neon", "parent")[2] not in child.html


def test_remix_of_unknown_parent_falls_back_to_seed() -> None:
    draft = build("whatever", "child", parent_html="<html>not ours</html>", parent_title="Old")
    assert template_of(draft.html) in template_names()


@pytest.mark.parametrize("name", sorted(EXPECTED_TEMPLATES))
def test_template_is_self_contained_and_safe(name: str) -> None:
    document = build(f"a {name} game").html
    assert document.lstrip().lower().startswith("<!doctype html>")
    assert f'<meta name="paletai-template" content="{name}">' in document
    assert '<meta name="viewport"' in document
    assert "<canvas" in document
    assert len(document.encode()) < 100_000
    # Nothing is loaded from anywhere: no external scripts, styles, fonts, images or calls.
    assert not re.search(r"\b(?:src|href|action)\s*=", document, flags=re.I)
    assert not re.search(r"https?://|url\(|@import|//[a-z0-9.-]+\.[a-z]{2,}/", document, re.I)
    for forbidden in ("fetch(", "XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon"):
        assert forbidden not in document
    # localStorage throws in a sandboxed frame without allow-same-origin.
    assert "localStorage" not in document
    assert "document.cookie" not in document
    # Touch and keyboard, a score, a restart, and the test hook.
    assert "pointerdown" in document
    assert "keydown" in document
    assert 'id="score"' in document
    assert "Play again" in document
    assert "window.__paletai" in document
    assert len(scripts_of(document)) == 1


# --- what a new user asks for -----------------------------------------------------------------


def pieces_in(draft: GameDraft) -> list[str]:
    """The emoji pieces a game was filled with (the shell's PIECES array)."""
    match = re.search(r"var PIECES = (\[.*?\]);", draft.html)
    assert match is not None
    pieces: list[str] = json.loads(match.group(1))
    return pieces


def test_pong_for_two_players_is_two_player_pong() -> None:
    draft = build("pong for two players")
    assert template_of(draft.html) == "pong"
    assert "var PLAYERS = 2 === 2" in draft.html
    assert draft.description.startswith("Two-player Pong, themed from your prompt.")
    assert "computer" not in draft.description.lower()
    assert "W/S" in draft.controls
    assert "arrows" in draft.controls
    assert draft.title == "Pong"


@pytest.mark.parametrize("prompt", ["2-player pong", "pong versus a friend", "multiplayer pong"])
def test_other_ways_to_ask_for_two_players(prompt: str) -> None:
    assert "var PLAYERS = 2 === 2" in build(prompt).html


def test_pong_alone_stays_against_the_computer() -> None:
    draft = build("a pong game")
    assert "var PLAYERS = 1 === 2" in draft.html
    assert "computer" in draft.description.lower()


def test_memory_with_fruits_has_fruit_cards() -> None:
    draft = build("a memory game with fruits")
    assert template_of(draft.html) == "memory"
    pieces = pieces_in(draft)
    assert "🍎" in pieces
    assert "🍓" in pieces
    assert len(set(pieces)) >= 8  # eight distinct pairs
    assert "with fruit pieces" in draft.description


def test_2048_with_cats_has_cat_tiles() -> None:
    draft = build("2048 but with cats")
    assert template_of(draft.html) == "2048"
    pieces = pieces_in(draft)
    assert pieces[0] == "🐱"
    assert len(set(pieces)) == 11  # one a value, 2 up to 2048
    assert "with cat pieces" in draft.description


def test_no_named_pieces_means_drawn_pieces() -> None:
    assert pieces_in(build("a memory game")) == []
    assert pieces_in(build("pong with cats")) == []  # pong has no pieces to theme


def test_an_rpg_fighting_slimes_is_the_arena() -> None:
    draft = build("an RPG where you fight slimes")
    assert template_of(draft.html) == "arena"
    assert draft.description.startswith("RPG Arena, themed from your prompt.")
    assert "slimes" in draft.description
    assert "Space to strike" in draft.controls


def test_a_platformer_is_the_platformer() -> None:
    draft = build("a platformer")
    assert template_of(draft.html) == "platformer"
    assert draft.description.startswith("Platformer, themed from your prompt.")
    assert "jump" in draft.controls.lower()


def test_a_named_hero_plays_and_is_not_a_piece() -> None:
    draft = build("a cat platformer with candy")
    assert 'var HERO = "🐱"' in draft.html
    assert "🍬" in pieces_in(draft)
    assert "🐱" not in pieces_in(draft)
    assert "with sweet pieces and a 🐱 hero" in draft.description


@pytest.mark.parametrize("name", sorted(EXPECTED_TEMPLATES))
def test_descriptions_name_their_template(name: str) -> None:
    draft = build(f"a {name} game")
    assert template_of(draft.html) == name
    label = {"shooter": "Space Shooter", "arena": "RPG Arena"}.get(name, name.capitalize())
    assert draft.description.startswith(f"{label}, themed from your prompt")
