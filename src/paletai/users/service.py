from __future__ import annotations

from paletai.config import Settings
from paletai.db.client import Database
from paletai.games.quota import PromptQuota
from paletai.users.schemas import UserInDB, UserMe, UserPublic


async def user_me(db: Database, settings: Settings, user: UserInDB) -> UserMe:
    used = await PromptQuota(db, settings.DAILY_PROMPT_LIMIT).used_today(user.id)
    limit = settings.DAILY_PROMPT_LIMIT
    return UserMe(
        **UserPublic.model_validate(user).model_dump(),
        daily_prompt_limit=limit,
        prompts_used_today=used,
        prompts_remaining_today=max(0, limit - used),
    )
