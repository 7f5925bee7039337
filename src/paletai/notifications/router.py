from __future__ import annotations

from fastapi import APIRouter

from paletai.core.deps import CurrentUser, DbDep
from paletai.core.errors import error_responses
from paletai.notifications.repository import SubscriptionsRepository
from paletai.notifications.schemas import SubscribeRequest, SubscriptionState

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.post("/subscribe", response_model=SubscriptionState, responses=error_responses(401, 422))
async def subscribe(body: SubscribeRequest, user: CurrentUser, db: DbDep) -> SubscriptionState:
    """Register this device's OneSignal id for your pushes (idempotent)."""
    await SubscriptionsRepository(db).subscribe(user.id, body.player_id)
    return SubscriptionState(subscribed=True)


@router.delete("/subscribe", response_model=SubscriptionState, responses=error_responses(401, 422))
async def unsubscribe(body: SubscribeRequest, user: CurrentUser, db: DbDep) -> SubscriptionState:
    """Stop pushes to this device (idempotent)."""
    await SubscriptionsRepository(db).unsubscribe(user.id, body.player_id)
    return SubscriptionState(subscribed=False)
