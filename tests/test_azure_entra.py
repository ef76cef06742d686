"""Azure OpenAI with Microsoft Entra ID: the gateway fetches bearer tokens (client credentials)
from the token endpoint, renews them before they expire, and retries when Entra is down."""

from __future__ import annotations

from fakes.fake_azure import FakeAzure
from harness import Gateway, eventually

from gateway.catalog.config import EntraConfig, parse_catalog_config
from gateway.errors import ConfigError
from gateway.providers.entra import EntraTokens
from gateway.settings import Settings
from gateway.upstream.client import Upstream

PROMPT = [{"role": "user", "content": "Say hello"}]


async def test_requests_carry_a_token_from_entra_and_no_api_key(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).chat.completions.with_raw_response.create(
        model="azure-entra-model", messages=PROMPT
    )
    assert raw.parse().choices[0].message.content
    sent = gateway.fakes.azure.requests[-1]
    assert sent.headers["authorization"] in {f"Bearer {token}" for token in gateway.fakes.azure.issued}
    assert "api-key" not in sent.headers
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.prompt_tokens, row.completion_tokens, row.status_code) == (12, 7, 200)


async def test_tokens_are_renewed_before_they_expire_and_fetched_again_after_a_failure() -> None:
    entra = EntraConfig("tenant-9", "app-9", "GATEWAY_TEST_ENTRA_SECRET")
    async with FakeAzure() as fake:
        fake.token_lifetime, fake.token_failures = 4, 1  # the first attempt fails; tokens live 4 s
        upstream = Upstream(Settings())
        tokens = EntraTokens(upstream)
        provider = tokens.token_for("azure", EntraConfig(**{**_fields(entra), "authority": fake.root_url}))
        try:
            await tokens.start()
            assert provider.authorize("u", {}, b"") == {}  # Entra was down: no token yet, retried in 1 s
            await eventually(lambda: provider.token == "fake-entra-token-1")
            # Renewed at half its lifetime (2 s), not when it expires.
            await eventually(lambda: provider.token == "fake-entra-token-2")
            assert provider.authorize("u", {}, b"") == {"authorization": "Bearer fake-entra-token-2"}
            assert "fake-entra-token" not in repr(provider)
        finally:
            await tokens.stop()
            await upstream.aclose()
        assert len(fake.token_requests) >= 3 and all(form == fake.token_requests[0] for form in fake.token_requests)
        grant = fake.token_requests[0]
        assert grant["grant_type"] == ["client_credentials"] and grant["client_id"] == ["app-9"]
        assert grant["scope"] == ["https://cognitiveservices.azure.com/.default"]
        assert grant["client_secret"] == ["entra-client-secret-do-not-leak"]
        assert {r.path for r in fake.requests} == {"/tenant-9/oauth2/v2.0/token"}


def test_entra_is_validated_with_clear_errors() -> None:
    base = {"kind": "azure", "base_url": "https://r.openai.azure.com"}
    entra = {"tenant_id": "t", "client_id": "c", "client_secret_env": "SECRET"}
    parsed = parse_catalog_config({"backends": {"a": {**base, "entra": entra}}}, "models.yaml")
    assert parsed.backends["a"].entra == EntraConfig("t", "c", "SECRET")
    assert parsed.backends["a"].credential_ref == "entra:t/c/env:SECRET"
    cases = [
        ({**base, "kind": "openai", "entra": entra}, "kind: azure"),
        ({**base, "api_key_env": "K", "entra": entra}, "not both"),
        ({**base, "entra": {**entra, "client_secret_env": "not a var"}}, "client_secret_env"),
        ({**base, "entra": {"client_id": "c", "client_secret_env": "S"}}, "tenant_id"),
        ({**base, "entra": {**entra, "authority": "login"}}, "authority"),
    ]
    for spec, problem in cases:
        try:
            parse_catalog_config({"backends": {"a": spec}}, "models.yaml")
        except ConfigError as exc:
            assert problem in str(exc) and "backends.a.entra" in str(exc)
        else:
            raise AssertionError(f"accepted {spec}")


def _fields(entra: EntraConfig) -> dict[str, str]:
    return {name: getattr(entra, name) for name in ("tenant_id", "client_id", "client_secret_env", "scope")}
