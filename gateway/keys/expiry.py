"""When a key expires, as the CLI's ``--expires`` and the admin API's ``expires_in`` write it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gateway.errors import InvalidRequest

# The admin API's: at most six digits, so that every duration it accepts is a date a datetime can
# hold (999999d is ~2,700 years); more would overflow, a refusal the schema could not state.
DURATION_PATTERN = r"^[0-9]{1,6}[dhm]$"
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str, field: str, *, seconds: bool = False) -> timedelta:
    """``30d``, ``12h``, ``90m`` (and, with ``seconds``, ``45s`` or ``0``); errors name ``field``."""
    units = "dhms" if seconds else "dhm"
    text = text.strip()
    duration = re.fullmatch(rf"([0-9]+)([{units}])", text)
    if seconds and text == "0":
        return timedelta(0)
    if duration is None:
        example = "0, 90s, 30m, 12h or 7d" if seconds else "30d, 12h or 90m"
        raise InvalidRequest(f"{field}: expected a duration like {example}, got {text!r}", param=field)
    try:
        return timedelta(**{_UNITS[duration.group(2)]: int(duration.group(1))})
    except OverflowError:
        raise InvalidRequest(f"{field}: {text!r} is too far in the future", param=field) from None


def expires_after(text: str, field: str, now: datetime | None = None) -> datetime:
    """A duration such as ``30d``, ``12h`` or ``90m`` from now; errors name ``field``."""
    duration = parse_duration(text, field)
    try:
        return (now or datetime.now(UTC)) + duration
    except OverflowError:
        raise InvalidRequest(f"{field}: {text!r} is too far in the future", param=field) from None


def parse_expiry(text: str, field: str = "--expires", now: datetime | None = None) -> datetime:
    """A duration from now, or an ISO date/time (UTC when it names no zone), as the CLI takes it."""
    if re.fullmatch(r"[0-9]+[dhm]", text.strip()):
        return expires_after(text, field, now)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(
            f"{field}: expected an ISO date/time or a duration like 30d, got {text!r}", param=field
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def expiry_of(expires_at: datetime | None, expires_in: str | None) -> datetime | None:
    """The admin API's two ways to say it: a moment, or a duration from now; not both."""
    if expires_at is not None and expires_in is not None:
        raise InvalidRequest("Give either 'expires_at' or 'expires_in', not both.", param="expires_in")
    return expires_after(expires_in, "expires_in") if expires_in is not None else expires_at
