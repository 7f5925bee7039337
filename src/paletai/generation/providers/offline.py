"""The offline author: real, playable game templates chosen and themed from the prompt.

It needs no keys and no network, and it is honest about it (provider "offline"). The same
(prompt, seed) always gives the same game, so a retried task makes the same game again.

A template is made of two files in templates/: _shell.html, the page every game shares (markup,
style and the runtime: start/end, overlay, score, particles, input, touch pad, test hook), and
<game>.html, the parts that are the game's own: <template data-slot="help"> (its help text,
plain text that is encoded for the HTML and the JS it lands in), an optional
<template data-slot="pad"> (its touch-pad keys) and <script data-slot="game"> (its code).
assemble_template pours the parts into the shell's {{>SLOT}}s; fill_template then fills the
{{PLACEHOLDERS}}, so each game is still one self-contained page with one inline script.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from paletai.generation.cover import Palette, palette_for
from paletai.generation.providers.base import (
    GameDraft,
    GenerationRequest,
    HealthState,
    Progress,
)

TEMPLATE_META = re.compile(r'<meta\s+name="paletai-template"\s+content="([a-z0-9-]+)"\s*/?>')
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True)
class GameKind:
    name: str  # the template file's stem
    label: str  # a title when the prompt gives none
    strong: tuple[str, ...]  # words that name this game outright
    weak: tuple[str, ...]  # words that hint at it; any strong word elsewhere wins
    blurb: str
    controls: str


KINDS: dict[str, GameKind] = {
    kind.name: kind
    for kind in (
        GameKind(
            "snake",
            "Snake",
            ("snake", "worm", "serpent", "nokia"),
            ("slither", "tail"),
            "Steer the snake to the food, grow longer, and don't hit the walls or your own tail.",
            "Arrow keys or WASD to steer; on touch, swipe or use the on-screen pad. "
            "Space or tap to start and restart.",
        ),
        GameKind(
            "pong",
            "Pong",
            ("pong", "paddle", "tennis", "ping"),
            ("racket", "rally"),
            "Classic pong against the computer: return the ball and be first to 7 points.",
            "Up/Down or W/S, or drag on the court, to move your paddle. "
            "Space or tap to start and restart.",
        ),
        GameKind(
            "breakout",
            "Breakout",
            ("breakout", "brick", "arkanoid", "bricks"),
            ("wall", "blocks", "smash"),
            "Bounce the ball off your paddle and break every brick; you have three lives.",
            "Left/Right or A/D, or drag, to move the paddle; Space or tap to launch the ball.",
        ),
        GameKind(
            "flappy",
            "Flappy",
            ("flappy", "bird", "helicopter", "flap"),
            ("fly", "flying", "wings", "plane", "jetpack"),
            "Flap through the gaps between the pipes; every gap you pass scores a point.",
            "Space, Up or tap to flap. Space or tap to restart.",
        ),
        GameKind(
            "shooter",
            "Space Shooter",
            ("shooter", "invaders", "asteroid", "alien", "shmup", "galaga"),
            ("space", "shoot", "shooting", "laser", "spaceship", "ufo", "galaxy", "rocket"),
            "Defend your ship against waves of invaders: dodge their shots and clear each wave.",
            "Left/Right or A/D to move, Space to fire. "
            "On touch: drag to move; you fire while touching.",
        ),
        GameKind(
            "2048",
            "2048",
            ("2048", "merge", "tiles", "sliding"),
            ("number", "numbers", "puzzle", "tile", "slide"),
            "Slide the tiles; equal numbers merge into their sum. "
            "Reach 2048 before the board fills up.",
            "Arrow keys or WASD, or swipe, to slide the tiles. R to start over.",
        ),
        GameKind(
            "arena",
            "RPG Arena",
            ("rpg", "arena", "dungeon", "slime", "zelda", "roguelike", "roguelite"),
            ("fight", "sword", "monster", "hero", "knight", "battle", "quest", "adventure"),
            "A top-down fight: move around the arena, strike the slimes before they reach you, "
            "and survive the waves; you have 5 HP.",
            "Arrow keys or WASD to move, Space to strike; on touch, drag to move and tap to "
            "strike. Space or tap to start and restart.",
        ),
        GameKind(
            "platformer",
            "Platformer",
            ("platformer", "platform", "platforms", "mario", "sidescroller"),
            ("jump", "jumping", "run", "runner", "climb", "level", "levels"),
            "Run and jump from platform to platform, collect the coins and reach the flag; "
            "a fall costs a life.",
            "Left/Right or A/D to run, Space, Up or W to jump; on touch, use the pad. "
            "Space or tap to start and restart.",
        ),
        GameKind(
            "memory",
            "Memory",
            ("memory", "pairs", "concentration", "matching"),
            ("match", "cards", "card", "remember", "flip"),
            "Flip the cards two at a time and find all eight pairs in as few moves as you can.",
            "Click or tap two cards to flip them; "
            "keyboard: arrows to move, Space or Enter to flip.",
        ),
    )
}

_STOPWORDS = frozenset(
    """a an the and or of for to in on at by with without from into onto about my me i we you
    your our it its is are be that this these those where which who whom whose while when then
    than so very really just some any make made create build code write generate design give
    want would like please can could let lets let's game games simple basic small little tiny
    playable html html5 javascript js canvas browser web mobile version style styled themed
    theme kind type one new classic clone play player players using use but not also all
    should has have had will get now instead change turn more less add again same two versus
    vs friend""".split()
)
_FAST_WORDS = frozenset(
    "fast faster fastest quick quicker speedy hard harder hardest difficult insane turbo "
    "extreme crazy hyper frantic challenging expert".split()
)
_SLOW_WORDS = frozenset(
    "slow slower slowest easy easier relaxed relaxing chill calm gentle kids kid beginner "
    "casual cozy cosy".split()
)
_TITLE_MAX = 40


# Two-player modes, for the templates that have one (pong: W/S against the arrow keys).
TWO_PLAYER_KINDS = frozenset({"pong"})
_TWO_PLAYER = re.compile(
    r"\b(?:two|2)[\s-]*(?:players?|player|people|humans?|p)\b|\bmulti-?player\b|\bversus\b"
    r"|\bvs\.?\b|\bpvp\b|\b(?:with|against) (?:a|my) (?:friend|brother|sister|mate)\b"
    r"|\blocal (?:co-?op|multiplayer)\b",
    re.I,
)
TWO_PLAYER_BLURB = "Two-player pong on one keyboard: each returns the ball; first to 7 points wins."
TWO_PLAYER_CONTROLS = (
    "Left player: W/S. Right player: Up/Down arrows. On touch, drag on your half of the court. "
    "Space or tap to start and restart."
)

# Pieces drawn from the prompt's nouns: memory cards, 2048 tiles (small to large), snake food,
# invaders, arena enemies, platformer coins. Each set has 11 distinct emoji (2 ... 2048).
PIECE_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fruit": ("fruit", tuple("🍒🍓🍇🍋🍊🍎🍐🍑🥭🍍🍉")),
    "cat": ("cat", tuple("🐱😺😸😹😻😼😽🙀😿😾🦁")),
    "dog": ("dog", tuple("🐶🐕🐩🦮🐺🦊🐾🦴🐈🦁🐯")),
    "animal": ("animal", tuple("🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮🐷")),
    "food": ("food", tuple("🍟🌭🍔🍕🌮🌯🥪🥗🍜🍣🍰")),
    "sweet": ("sweet", tuple("🍬🍭🍫🍪🍩🧁🍰🍮🍯🎂🍦")),
    "vegetable": ("vegetable", tuple("🥕🥦🌽🍆🥔🍅🥒🌶🧅🥬🍄")),
    "ocean": ("sea creature", tuple("🐚🦐🦀🐟🐠🐡🐙🦑🐬🦈🐳")),
    "space": ("space", tuple("🌑🌒🌓🌔🌕🌍🪐☄🌟🚀🛸")),
    "monster": ("monster", tuple("👻👽👾🤖👹👺💀🧟🧛🐲🐉")),
    "bug": ("bug", tuple("🐜🐛🐞🐝🦋🦗🕷🐌🦂🪲🪳")),
    "flower": ("flower", tuple("🌱🌿🍀🌷🌼🌸🌺🌻🌹💐🌳")),
    "bird": ("bird", tuple("🐣🐤🐥🐦🐧🕊🦜🦉🦆🦢🦅")),
    "dinosaur": ("dinosaur", tuple("🥚🐣🦎🐊🐢🐍🦕🦖🐲🐉🌋")),
    "face": ("emoji", tuple("🙂😊😄😁😆😂🤣😍🤩😎🥳")),
    "heart": ("heart", tuple("🤍💛🧡❤💗💓💞💕💖💘💝")),
    "weather": ("weather", tuple("💧🌧⛅🌤☀🌈❄⛄🌪⚡🌊")),
}
_PIECE_WORDS: dict[str, str] = {
    word: key
    for key, words in {
        "fruit": "fruit fruits fruity apple banana cherry strawberry grape orange lemon berry",
        "cat": "cat kitten kitty kitties cats meow",
        "dog": "dog puppy puppies pup doggo",
        "animal": "animal animals zoo pet pets farm",
        "food": "food foods pizza burger burgers snack snacks lunch",
        "sweet": "candy candies sweet sweets dessert desserts chocolate cake cookie cookies donut",
        "vegetable": "vegetable vegetables veggie veggies carrot carrots garden",
        "ocean": "ocean sea fish fishes underwater aquarium octopus shark",
        "space": "planet planets moon moons star stars cosmic",
        "monster": "monster monsters ghost ghosts zombie zombies halloween spooky",
        "bug": "bug bugs insect insects bee bees butterfly butterflies",
        "flower": "flower flowers plant plants spring",
        "bird": "birds chick chicks duck ducks penguin penguins",
        "dinosaur": "dinosaur dinosaurs dino dinos jurassic",
        "face": "emoji emojis smiley smileys face faces",
        "heart": "heart hearts love valentine valentines",
        "weather": "weather rain snow sunny storm",
    }.items()
    for word in words.split()
}
# A hero for the games with one (arena, platformer, flappy), when the prompt names one.
HEROES: dict[str, str] = {
    "cat": "🐱",
    "kitten": "🐱",
    "dog": "🐶",
    "puppy": "🐶",
    "robot": "🤖",
    "ninja": "🥷",
    "frog": "🐸",
    "penguin": "🐧",
    "fox": "🦊",
    "bunny": "🐰",
    "rabbit": "🐰",
    "wizard": "🧙",
    "witch": "🧙",
    "princess": "👸",
    "alien": "👽",
    "ghost": "👻",
    "monkey": "🐵",
    "bear": "🐻",
    "pig": "🐷",
    "chicken": "🐔",
    "unicorn": "🦄",
    "dragon": "🐉",
    "dinosaur": "🦖",
    "dino": "🦖",
    "bee": "🐝",
    "duck": "🦆",
    "mouse": "🐭",
    "knight": "🤺",
    "zombie": "🧟",
    "astronaut": "🧑‍🚀",
    "pirate": "🏴‍☠️",
    "owl": "🦉",
    "hamster": "🐹",
    "panda": "🐼",
}
HERO_KINDS = frozenset({"arena", "platformer", "flappy"})
PIECE_KINDS = frozenset({"memory", "2048", "snake", "shooter", "arena", "platformer"})


@dataclass(frozen=True)
class Theme:
    """Everything a template is filled with. Values are raw; the encoders escape them."""

    title: str
    caption: str
    palette: Palette
    speed: float
    players: int = 1
    pieces: tuple[str, ...] = ()
    hero: str = ""


def _js_string(value: str) -> str:
    """A JS string literal that is also safe inside a <script> element."""
    encoded = json.dumps(value, ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(raw, escaped)
    return encoded


def _css_color(value: str) -> str:
    if not _HEX_COLOR.fullmatch(value):
        raise ValueError(f"not a #rrggbb colour: {value!r}")
    return value.lower()


def _js_number(value: float) -> str:
    return f"{min(max(float(value), 0.5), 2.0):.2f}"


# Every placeholder a template may use, each with the one encoder that fits where it stands.
_ENCODERS: dict[str, Callable[[Theme], str]] = {
    "TITLE": lambda t: html.escape(t.title, quote=True),
    "CAPTION": lambda t: html.escape(t.caption, quote=True),
    "TITLE_JS": lambda t: _js_string(t.title),
    "BG": lambda t: _css_color(t.palette[0]),
    "FG": lambda t: _css_color(t.palette[1]),
    "ACCENT": lambda t: _css_color(t.palette[2]),
    "SPEED": lambda t: _js_number(t.speed),
    "PLAYERS": lambda t: "2" if t.players == 2 else "1",
    "PIECES_JS": lambda t: "[" + ", ".join(_js_string(p) for p in t.pieces) + "]",
    "HERO_JS": lambda t: _js_string(t.hero),
}


def fill_template(source: str, theme: Theme) -> str:
    """Fill a template's {{PLACEHOLDERS}} in one pass, so a value is never filled again."""

    def replace(match: re.Match[str]) -> str:
        encoder = _ENCODERS.get(match.group(1))
        if encoder is None:
            raise ValueError(f"unknown template placeholder {match.group(0)}")
        return encoder(theme)

    return _PLACEHOLDER.sub(replace, source)


_SHELL = "_shell"
_SLOT = re.compile(r"\{\{>([A-Z_]+)\}\}")
_PART = re.compile(r'<(template|script) data-slot="([a-z]+)">(.*?)</\1>', re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_KIND_NAME = re.compile(r"[a-z0-9-]+")
_PAD_GLYPHS = {
    "left": "&#9664;",
    "up": "&#9650;",
    "down": "&#9660;",
    "right": "&#9654;",
    "action": "&#9679;",
}


def _read_template_file(name: str) -> str:
    return (resources.files("paletai.generation") / "templates" / f"{name}.html").read_text(
        encoding="utf-8"
    )


def _game_parts(name: str, source: str) -> dict[str, str]:
    """A game file's parts by slot; anything but the parts and comments is refused."""
    parts: dict[str, str] = {}
    for match in _PART.finditer(source):
        slot, body = match.group(2), match.group(3)
        if slot in parts:
            raise ValueError(f"{name}: the {slot!r} part is there twice")
        parts[slot] = body
    leftover = _COMMENT.sub("", _PART.sub("", source)).strip()
    if leftover:
        raise ValueError(f"{name}: text outside the parts: {leftover[:40]!r}")
    if not {"help", "game"} <= set(parts) <= {"help", "pad", "game"}:
        raise ValueError(f"{name}: parts must be help, game and maybe pad, not {sorted(parts)}")
    if any("{{>" in body for body in parts.values()):
        raise ValueError(f"{name}: a part cannot hold a {{{{>SLOT}}}}")
    return parts


def _pad(name: str, keys: list[str]) -> str:
    """The touch pad's markup: one button a key, or nothing for a game without a pad."""
    if not keys:
        return ""
    unknown = [key for key in keys if key not in _PAD_GLYPHS]
    if unknown:
        raise ValueError(f"{name}: no pad button for {unknown}")
    buttons = "".join(
        f'    <button type="button" data-key="{key}" aria-label="{key}">'
        f"{_PAD_GLYPHS[key]}</button>\n"
        for key in keys
    )
    return f'  <div id="pad" class="touch">\n{buttons}  </div>'


def assemble_template(name: str, shell: str, game: str) -> str:
    """The game's template: its parts poured into the shell's {{>SLOT}}s, in one pass.

    Both sources are the package's own files, never a request's text; the result still has
    its {{PLACEHOLDERS}} for fill_template to encode.
    """
    if not _KIND_NAME.fullmatch(name):
        raise ValueError(f"not a template name: {name!r}")
    parts = _game_parts(name, game)
    help_text = parts["help"].strip()
    slots = {
        "KIND": name,
        "KIND_JS": _js_string(name),
        "HELP": html.escape(help_text, quote=False),  # element text, never an attribute
        "HELP_JS": _js_string(help_text),
        "PAD": _pad(name, parts.get("pad", "").split()),
        "GAME": parts["game"].strip("\n"),
    }

    def replace(match: re.Match[str]) -> str:
        value = slots.get(match.group(1))
        if value is None:
            raise ValueError(f"unknown template slot {match.group(0)}")
        return value

    return _SLOT.sub(replace, shell)


@cache
def _template_source(name: str) -> str:
    return assemble_template(name, _read_template_file(_SHELL), _read_template_file(name))


@cache
def _shipped_templates() -> tuple[str, ...]:
    """The games, by file stem; partials (a leading "_", like _shell.html) are not games."""
    folder = resources.files("paletai.generation") / "templates"
    names = [entry.name.removesuffix(".html") for entry in folder.iterdir()]
    return tuple(sorted(name for name in names if name in KINDS and not name.startswith("_")))


def template_names() -> list[str]:
    """The game templates shipped with the package, sorted."""
    return list(_shipped_templates())


def _tokens(prompt: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(prompt)]


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def kind_named_in(prompt: str) -> str | None:
    """The game kind a prompt names: a strong word beats a weak one, then the earliest wins."""
    available = set(template_names())
    best: tuple[int, int, str] | None = None
    for position, token in enumerate(_tokens(prompt)):
        for word in {token, _singular(token)}:
            for kind in KINDS.values():
                if kind.name not in available:
                    continue
                if word in kind.strong or word == kind.name:
                    rank = (0, position, kind.name)
                elif word in kind.weak:
                    rank = (1, position, kind.name)
                else:
                    continue
                if best is None or rank < best:
                    best = rank
    return best[2] if best else None


def template_of(html_source: str) -> str | None:
    """The template a game was made from, read from its paletai-template meta tag."""
    match = TEMPLATE_META.search(html_source)
    if match and match.group(1) in KINDS:
        return match.group(1)
    return None


def _seed_index(seed: str, modulo: int) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "big") % modulo


def choose_template(prompt: str, seed: str, parent_html: str | None = None) -> str:
    """The prompt's game, else the parent's (remix), else a choice fixed by the seed."""
    named = kind_named_in(prompt)
    if named:
        return named
    if parent_html:
        parent = template_of(parent_html)
        if parent in template_names():
            return parent
    names = template_names()
    return names[_seed_index(seed, len(names))]


def speed_for(prompt: str) -> float:
    """The game's pace: faster for "fast/hard" words, slower for "slow/easy" ones."""
    words = set(_tokens(prompt))
    fast, slow = bool(words & _FAST_WORDS), bool(words & _SLOW_WORDS)
    if fast and not slow:
        return 1.35
    if slow and not fast:
        return 0.75
    return 1.0


def players_for(prompt: str) -> int:
    """2 when the prompt asks for two players ("pong for two players", "2-player", "versus")."""
    return 2 if _TWO_PLAYER.search(prompt) else 1


def pieces_for(prompt: str, hero: str = "") -> tuple[str, tuple[str, ...]] | None:
    """The piece set the prompt's first themed noun names ("fruits" -> fruit emoji), if any.

    With a hero, the hero's own noun is not a piece ("a cat platformer with candy": candy).
    """
    for token in _tokens(prompt):
        if hero and HEROES.get(_singular(token), HEROES.get(token)) == hero:
            continue
        for word in (token, _singular(token)):
            key = _PIECE_WORDS.get(word)
            if key:
                return PIECE_SETS[key]
    return None


def hero_for(prompt: str) -> str:
    """The hero the prompt names ("a cat platformer" -> a cat), or "" for the drawn one."""
    for token in _tokens(prompt):
        for word in (token, _singular(token)):
            if word in HEROES:
                return HEROES[word]
    return ""


def _title_case(word: str) -> str:
    return word if word.isupper() or word[0].isdigit() else word[0].upper() + word[1:]


def title_for(prompt: str, kind: str, parent_title: str | None = None) -> str:
    """A short title from the prompt's meaningful words ("a neon snake game" -> "Neon Snake")."""
    words = [w for w in _WORD.findall(prompt) if w.lower() not in _STOPWORDS]
    picked: list[str] = []
    for word in words:
        if word.lower() in (w.lower() for w in picked):
            continue
        if len(" ".join([*picked, word])) > _TITLE_MAX:
            break
        picked.append(word)
        if len(picked) == 4:
            break
    title = " ".join(_title_case(w) for w in picked)
    if parent_title and not kind_named_in(prompt):
        parent = " ".join(parent_title.split())
        known = {w.lower() for w in parent.split()}
        fresh = " ".join(_title_case(w) for w in picked if w.lower() not in known)
        combined = f"{fresh} {parent}".strip()
        title = combined if len(combined) <= _TITLE_MAX else (title or parent[:_TITLE_MAX])
    return title or KINDS[kind].label


def _caption(prompt: str) -> str:
    text = " ".join(prompt.split())
    if len(text) > 90:
        text = text[:89].rstrip() + "…"
    return f"“{text}”" if text else ""


def describe(game: GameKind, players: int, pieces: str | None, hero: str) -> str:
    """The description, honest about the template: "Breakout, themed from your prompt. …"."""
    themed = "themed from your prompt"
    touches = [f"{pieces} pieces"] if pieces else []
    if hero:
        touches.append(f"a {hero} hero")
    if touches:
        themed += " with " + " and ".join(touches)
    label = f"Two-player {game.label}" if players == 2 else game.label
    blurb = TWO_PLAYER_BLURB if players == 2 else game.blurb
    return f"{label}, {themed}. {blurb}"


class OfflineProvider:
    """Authors games from the bundled templates: no keys, no network, deterministic."""

    name = "offline"
    model = "templates-v1"

    def build(self, request: GenerationRequest) -> GameDraft:
        """The draft for a request (sync: the work is a template fill)."""
        kind = choose_template(request.prompt, request.seed, request.parent_html)
        title = title_for(
            request.prompt, kind, request.parent_title if request.parent_html else None
        )
        game = KINDS[kind]
        players = players_for(request.prompt) if kind in TWO_PLAYER_KINDS else 1
        hero = hero_for(request.prompt) if kind in HERO_KINDS else ""
        pieces = pieces_for(request.prompt, hero) if kind in PIECE_KINDS else None
        theme = Theme(
            title=title,
            caption=_caption(request.prompt),
            palette=palette_for(request.prompt, request.seed),
            speed=speed_for(request.prompt),
            players=players,
            pieces=pieces[1] if pieces else (),
            hero=hero,
        )
        return GameDraft(
            title=title,
            description=describe(game, players, pieces[0] if pieces else None, hero),
            controls=TWO_PLAYER_CONTROLS if players == 2 else game.controls,
            html=fill_template(_template_source(kind), theme),
            provider=self.name,
            model=self.model,
            usage={},
        )

    async def generate(self, request: GenerationRequest, progress: Progress) -> GameDraft:
        draft = self.build(request)
        await progress(
            "generating", {"chars": len(draft.html), "template": template_of(draft.html)}
        )
        return draft

    async def repair(
        self,
        request: GenerationRequest,
        draft: GameDraft,
        complaints: list[str],
        progress: Progress,
    ) -> GameDraft:
        # The templates are valid as shipped, so a repair is simply the same game made again.
        return await self.generate(request, progress)

    async def check(self) -> HealthState:
        return "healthy" if template_names() else "degraded"

    async def aclose(self) -> None:
        return None
