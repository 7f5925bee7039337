"""What we ask the model: the system prompt, the user prompts and the shape of the answer."""

from __future__ import annotations

from typing import Any

from paletai.generation.providers.base import GameDraft, GenerationRequest

# The answer's shape, used as OpenAI's strict json_schema and as Anthropic's tool input schema.
# `html` comes last so that a truncated answer has its labels complete.
GAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "short game title, at most 60 characters"},
        "description": {"type": "string", "description": "one or two sentences for the feed"},
        "controls": {"type": "string", "description": "how to play, e.g. 'Arrows or swipe'"},
        "html": {"type": "string", "description": "the complete single-file HTML5 game"},
    },
    "required": ["title", "description", "controls", "html"],
    "additionalProperties": False,
}
SCHEMA_NAME = "game"
TOOL_NAME = "submit_game"
TOOL_DESCRIPTION = "Submit the finished game: its title, description, controls and HTML file."

SYSTEM_PROMPT = """\
You are PaletAI, an expert HTML5 game developer. From a player's prompt you write ONE small, \
polished, fully playable browser game as a single self-contained HTML file.

The file runs in a sandboxed iframe whose Content-Security-Policy is default-src 'none', so:
- Everything is inline: one or more <script> elements without src, and <style> elements. \
No external scripts, stylesheets, fonts, images, audio or CDNs; no @import; no url() to the \
network. Draw with <canvas> (preferred) or DOM/SVG elements; generate sound with the Web Audio \
API if any; images only as inline SVG or data: URLs.
- No network at all: no fetch, XMLHttpRequest, WebSocket, EventSource, sendBeacon or import().
- No localStorage/sessionStorage/cookies/alert/prompt (the sandbox blocks them; wrap any \
storage use in try/catch).

The game must have:
- a playable root: a <canvas> (or an element with id="game"/"board"/"grid") sized to the \
viewport and resized on window resize, so it works on phones and desktops alike;
- keyboard controls AND touch controls (touch/pointer events or on-screen buttons);
- a visible score, a game-over state and a restart (key and tap);
- a start or instructions screen, smooth requestAnimationFrame animation, and no console errors.

Keep the file compact (well under 200 KB) and complete: never leave placeholders or "TODO"."""

ANSWER_JSON = (
    "Answer with the JSON object asked for: title, description, controls and html (the whole "
    "file, starting with <!DOCTYPE html>)."
)
ANSWER_TOOL = (
    f"Submit the game by calling the {TOOL_NAME} tool with title, description, controls and "
    "html (the whole file, starting with <!DOCTYPE html>). If you cannot call the tool, reply "
    "with the whole file in one ```html code block."
)

CONTINUE_PROMPT = (
    "Your answer was cut off by the length limit. Continue EXACTLY where it stopped: output only "
    "the remaining characters, starting with the very next character, without repeating anything, "
    "without any introduction and without code fences."
)


def generate_prompt(request: GenerationRequest) -> str:
    """The user message for a new game, or for a remix when the request has a parent."""
    if request.parent_html is None:
        return f"Create this game:\n\n{request.prompt.strip()}"
    title = request.parent_title or "the original game"
    return (
        f"Remix an existing game, {title!r}. Keep what works and change it as the player asks. "
        "Return the complete new file, not a diff.\n\n"
        f"The player's request:\n{request.prompt.strip()}\n\n"
        f"The existing game's HTML:\n```html\n{request.parent_html}\n```"
    )


def repair_prompt(request: GenerationRequest, draft: GameDraft, complaints: list[str]) -> str:
    """The user message that asks for a corrected game after validation failed."""
    listed = "\n".join(f"- {complaint}" for complaint in complaints)
    return (
        f"You wrote this game for the prompt:\n{request.prompt.strip()}\n\n"
        f"Its title was {draft.title!r}. It failed our checks:\n{listed}\n\n"
        "Fix every problem and return the complete corrected file (not a diff), keeping the "
        "gameplay.\n\n"
        f"The game's HTML:\n```html\n{draft.html}\n```"
    )
