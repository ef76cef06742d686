"""PostgreSQL unreachable (production mode): every key, model and limit known before keeps working;
revoked keys stay refused; only changes wait; every usage record is written once it returns.

The outage is a TCP proxy between this gateway and PostgreSQL that the test cuts (open connections
dropped, new ones refused), so the shared database the rest of the suite uses is never stopped.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from fakes.tcp_proxy import TcpProxy
from harness import ADMIN_KEY, POSTGRES_URL, Gateway, running_gateway
from sqlalchemy.engine import make_url

from gateway.db.engine import create_engine, session_factory
from gateway.keys.service import KeyService

PROMPT = [{"role": "user", "content": "Say hello"}]


async def _key_made_before_start(name: str) -> str:
    engine = create_engine(POSTGRES_URL)
    try:
        return (await KeyService(session_factory(engine)).create(name)).secret
    finally:
        await engine.dispose()


async def _chat(gateway: Gateway, key: str) -> str:
    raw = await gateway.openai(key).chat.completions.with_raw_response.create(model="chat-model", messages=PROMPT)
    assert raw.parse().choices[0].message.content
    return raw.headers["x-request-id"]


async def test_known_keys_keep_working_while_the_database_is_down(tmp_path: Path) -> None:
    never_used = await _key_made_before_start("outage-cached-at-start")
    async with TcpProxy(make_url(POSTGRES_URL).port or 5432) as proxy:
        url = make_url(POSTGRES_URL).set(port=proxy.port).render_as_string(hide_password=False)
        # A short TTL, so that every cached entry is past it during the outage.
        async with running_gateway("postgres", tmp_path, database_url=url, key_cache_ttl_seconds=0.05) as gateway:
            used, revoked = await gateway.create_key("outage-used"), await gateway.create_key("outage-revoked")
            before = [await _chat(gateway, used), await _chat(gateway, revoked)]
            await gateway.runtime.keys.revoke(revoked[:12])
            gateway.runtime.auth.forget((await gateway.runtime.keys.info(revoked[:12])).id)
            with pytest.raises(openai.AuthenticationError):
                await _chat(gateway, revoked)
            generation = gateway.runtime.live.current.generation

            await proxy.cut()
            during = [await _chat(gateway, key) for key in (used, never_used) * 10]
            with pytest.raises(openai.AuthenticationError) as refused:
                await _chat(gateway, revoked)  # revoked before the outage: still refused
            assert "revoked" in refused.value.message
            async with gateway.http() as http:
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json()["checks"]["database"].startswith("failed")
                assert ready.json()["status"] == "degraded"
                change = await http.get("/admin/keys", headers={"authorization": f"Bearer {ADMIN_KEY}"})
                assert change.status_code == 503  # changes wait for the database
                assert change.json()["error"]["code"] == "service_unavailable"
            assert gateway.runtime.auth.stale_served > 0
            # The snapshot could not be rebuilt, and the one in force kept serving.
            assert gateway.runtime.live.current.generation >= generation

            await proxy.restore()
            for request_id in before + during:
                assert len(await _rows_eventually(gateway, request_id)) == 1
            refused_id = refused.value.response.headers["x-request-id"]
            assert (await _rows_eventually(gateway, refused_id))[0].status_code == 401


async def _rows_eventually(gateway: Gateway, request_id: str) -> list[object]:
    """The usage rows of a request once the writer has caught up after the outage (up to 60 s)."""
    for _ in range(600):
        rows = await gateway.usage_rows(request_id)
        if rows:
            return list(rows)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no usage record for {request_id}")
