from __future__ import annotations

from pydantic import Field, StrictStr

from paletai.core.schemas import RequestModel, ResponseModel


class SubscribeRequest(RequestModel):
    player_id: StrictStr = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the OneSignal subscription (player) id of this device",
    )


class SubscriptionState(ResponseModel):
    subscribed: bool
