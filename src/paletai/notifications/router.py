from __future__ import annotations

from fastapi import APIRouter

from paletai.core.deps import CtxDep, CurrentUser
from paletai.core.errors import error_responses
from paletai.notifications.repository import SubscriptionsRepository
from paletai.notifications.schemas import SubscribeRequest, SubscriptionState

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.post("/subscribe", response_model=SubscriptionState, responses=error_responses(401, 422))
async def subscribe(body: SubscribeRequest, user: CurrentUser, ctx: CtxDep) -> SubscriptionState:
    """Register this device's OneSignal id for your pushes (idempotent)."""
    await SubscriptionsRepository(ctx.db).subscribe(user.id, body.player_id)
    return SubscriptionState(subscribed=True)


@router.delete("/subscribe", response_model=SubscriptionState, responses=error_responses(401, 422))
async def unsubscribe(body: SubscribeRequest, user: CurrentUser, ctx: CtxDep) -> SubscriptionState:
    """Stop pushes to this device (idempotent)."""
    await SubscriptionsRepository(ctx.db).unsubscribe(user.id, body.player_id)
    return SubscriptionState(subscribed=False)
