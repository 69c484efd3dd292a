"""The shapes of the dashboard's JSON API: request bodies, responses and documented errors.

Every JSON endpoint names one of these (or :class:`zkfl.status.TaskStatus`) as its
response model, so the OpenAPI schema is typed and schemathesis can check responses
against it. Field names are what the page in ``static/`` and the tests read: renaming
one is an API change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from zkfl.dashboard.notes import MAX_NOTES_CHARS


class ChallengeRequest(BaseModel):
    address: str = Field(description="the wallet that will sign, 0x-prefixed", max_length=64)


class Challenge(BaseModel):
    message: str = Field(description="the EIP-4361 message to sign with personal_sign")


class SignIn(BaseModel):
    message: str = Field(max_length=4096)
    signature: str = Field(description="0x-prefixed 65-byte signature", max_length=200)


class Identity(BaseModel):
    address: str | None = Field(description="the signed-in wallet; null when not signed in")


class Notes(BaseModel):
    notes: str = Field(max_length=MAX_NOTES_CHARS)


class TaskOrder(StrEnum):
    REWARD = "reward"  # largest reward pool first
    DEADLINE = "deadline"  # soonest deadline first


# The refusals the API's operations document (FastAPI adds 422 for malformed input itself).
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "refused input, with the reason"},
    401: {"description": "not signed in"},
    403: {"description": "signed in, but not this task's organisation"},
    404: {"description": "no such task"},
    421: {"description": "the request's Host is not one of this dashboard's configured origins"},
    503: {"description": "the chain does not answer"},
}
