from __future__ import annotations

from fastapi import APIRouter, Response, status

from paletai.core.deps import CtxDep, CurrentUser
from paletai.core.errors import error_responses
from paletai.users.flows import delete_account

router = APIRouter(tags=["users"])


@router.delete(
    "/users/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses({401: "no valid token: log in first"}),
)
async def leave(user: CurrentUser, ctx: CtxDep) -> Response:
    """Delete your account with your games (and their covers), likes and push subscriptions.
    Your tokens stop working."""
    await delete_account(ctx, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
