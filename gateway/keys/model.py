"""What the request path knows about an authenticated key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: uuid.UUID
    prefix: str
    name: str
    org_id: uuid.UUID
    team_id: uuid.UUID | None
    allowed_models: frozenset[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    org_name: str = ""
    team_name: str | None = None
    """Names, for the quota rules that address organizations and teams by name."""
    user_id: uuid.UUID | None = None
    rotated: bool = False
    """This is the key's previous secret, valid until ``expires_at`` (the rotation's grace period)."""

    def may_use(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models
