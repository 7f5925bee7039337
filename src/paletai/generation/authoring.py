"""Author one game: generate, validate, repair once, validate again."""

from __future__ import annotations

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


async def author_game(
    provider: GameProvider, request: GenerationRequest, progress: Progress
) -> GameDraft:
    """A validated game from `provider`, with `usage` summed over every call it took.

    Stages reported: "generating", "validating", and "repairing" when the first game fails
    validation. Raises InvalidGameError when the repaired game still fails, and lets the
    provider's ProviderError (auth, unavailable, ...) through.
    """
    await progress("generating", {})
    draft = await provider.generate(request, progress)
    await progress("validating", {})
    complaints = validate_game_html(draft.html)
    if not complaints:
        return draft
    await progress("repairing", {"complaints": len(complaints)})
    repaired = await provider.repair(request, draft, complaints, progress)
    usage = add_usage(draft.usage, repaired.usage)
    await progress("validating", {"repaired": True})
    remaining = validate_game_html(repaired.html)
    if remaining:
        quoted = "; ".join(remaining[:QUOTED_COMPLAINTS])
        raise InvalidGameError(f"the generated game failed validation: {quoted}")
    return replace(repaired, usage=usage)
