"""Author one game: generate, validate, repair once, validate again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from paletai.generation.providers.base import (
    GameDraft,
    GameProvider,
    GenerationRequest,
    InvalidGameError,
    Progress,
)
from paletai.generation.providers.common import add_usage
from paletai.generation.validation import validate_game_html

# How many complaints the player-facing failure message quotes.
QUOTED_COMPLAINTS = 3

# A check beyond the static one (the playability check in a browser): complaints, or none.
GameCheck = Callable[[str], Awaitable[list[str]]]


async def _complaints(html: str, check: GameCheck | None) -> list[str]:
    complaints = validate_game_html(html)
    # Only a game that passes the static checks is worth running.
    if not complaints and check is not None:
        complaints = await check(html)
    return complaints


async def author_game(
    provider: GameProvider,
    request: GenerationRequest,
    progress: Progress,
    *,
    check: GameCheck | None = None,
) -> GameDraft:
    """A validated game from `provider`, with `usage` summed over every call it took.

    Stages reported: "generating", "validating", and "repairing" when the first game fails
    validation (`validate_game_html`, then `check` if given). Raises InvalidGameError when the
    repaired game still fails, and lets the provider's ProviderError (auth, unavailable, ...)
    through.
    """
    await progress("generating", {})
    draft = await provider.generate(request, progress)
    await progress("validating", {})
    complaints = await _complaints(draft.html, check)
    if not complaints:
        return draft
    await progress("repairing", {"complaints": len(complaints)})
    repaired = await provider.repair(request, draft, complaints, progress)
    usage = add_usage(draft.usage, repaired.usage)
    await progress("validating", {"repaired": True})
    remaining = await _complaints(repaired.html, check)
    if remaining:
        quoted = "; ".join(remaining[:QUOTED_COMPLAINTS])
        raise InvalidGameError(f"the generated game failed validation: {quoted}")
    return replace(repaired, usage=usage)
