"""Validate JSON payloads against component schemas of OpenAI's published OpenAPI spec.

Usage in a test::

    from openai_spec import validate

    validate("CreateChatCompletionResponse", response.json())

The spec is looked up at ``<repo root>/../shared/specs/openai-openapi.yaml`` (the repo root is the
parent of ``tests/``), or at the path in the ``GATEWAY_TEST_OPENAI_SPEC`` environment variable. When the
file is missing, :func:`validate` raises :class:`OpenAISpecNotFoundError`. That error is deliberately
*not* an ``AssertionError``, so a ``pytest.raises(AssertionError)`` around ``validate`` can never pass
just because the spec is missing.

The component schemas are turned into plain JSON Schema 2020-12 before validation with
``jsonschema``. This handles the OpenAPI quirks found in the file:

* ``nullable: true`` (an OpenAPI 3.0 keyword that OpenAI's 3.1 document still uses, e.g. for a
  stream chunk's ``finish_reason`` and ``usage``) becomes ``anyOf: [<schema>, {type: "null"}]``;
* the boolean ``exclusiveMinimum``/``exclusiveMaximum`` (OpenAPI 3.0 / draft 4 form) becomes the
  numeric 2020-12 form;
* ``$recursiveRef: "#"`` / ``$recursiveAnchor`` (draft 2019-09, which 2020-12 would silently
  ignore) becomes a ``$ref`` to the enclosing component;
* in an OpenAPI 3.0 document, the siblings of a ``$ref`` are ignored, as 3.0 says.

``discriminator``, ``example``, ``x-*`` extensions and other OpenAPI-only keywords are left in
place. To JSON Schema they are unknown keywords, so they are annotations and are ignored.
``oneOf``/``anyOf`` are still enforced, so a discriminated union must still match the right branch.
``format`` is not enforced (in 2020-12 it is only an annotation by default), and the spec uses
non-standard formats such as ``unixtime``.
"""

from __future__ import annotations

import difflib
import functools
import heapq
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["SPEC_ENV_VAR", "OpenAISpecNotFoundError", "spec_path", "validate"]

SPEC_ENV_VAR: Final = "GATEWAY_TEST_OPENAI_SPEC"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_SPEC_PATH: Final = REPO_ROOT.parent / "shared" / "specs" / "openai-openapi.yaml"

_BASE_URI: Final = "urn:gateway-tests:openai-openapi"
_DIALECT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"
_MAX_MESSAGE: Final = 300

# Keywords whose value is a mapping of name -> subschema.
_SCHEMA_MAP_KEYWORDS: Final = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
# Keywords whose value is a list of subschemas.
_SCHEMA_LIST_KEYWORDS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
# Keywords whose value is a single subschema (``items`` may also be a list in old drafts).
_SCHEMA_KEYWORDS: Final = frozenset(
    {
        "items",
        "additionalItems",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentSchema",
    }
)

_YamlLoader: type[yaml.CSafeLoader] | type[yaml.SafeLoader]
try:
    _YamlLoader = yaml.CSafeLoader  # libyaml: about 10x faster than the pure-Python loader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _YamlLoader = yaml.SafeLoader


class OpenAISpecNotFoundError(FileNotFoundError):
    """The OpenAPI spec file is missing. Tests that validate against it must fail, not skip."""


def spec_path() -> Path:
    """Where the spec is expected: ``$GATEWAY_TEST_OPENAI_SPEC`` or ``<repo>/../shared/specs/...``."""
    override = os.environ.get(SPEC_ENV_VAR)
    if override:
        return Path(override).expanduser().resolve()
    return DEFAULT_SPEC_PATH


def validate(component: str, instance: object) -> None:
    """Assert that ``instance`` conforms to ``#/components/schemas/<component>`` of the spec.

    Raises ``AssertionError`` listing every validation error (JSON path + message) when it does not.
    Raises :class:`OpenAISpecNotFoundError` when the spec file cannot be found, and ``LookupError``
    when the component does not exist.
    """
    path = spec_path()
    validator = _validator(str(path), component)
    errors = sorted(validator.iter_errors(instance), key=_error_sort_key)
    if not errors:
        return
    lines = [
        f"payload does not conform to #/components/schemas/{component} "
        f"({len(errors)} error{'s' if len(errors) != 1 else ''}; spec {path}):"
    ]
    for error in errors:
        lines.append(f"  - {_json_path(error.absolute_path)}: {_shorten(error.message)}")
        hint = _closest_branch_error(error)
        if hint is not None:
            lines.append(f"      closest branch: {_json_path(hint.absolute_path)}: {_shorten(hint.message)}")
    raise AssertionError("\n".join(lines))


@functools.lru_cache(maxsize=256)
def _validator(spec_file: str, component: str) -> Draft202012Validator:
    schemas, registry = _load_components(spec_file)
    if component not in schemas:
        raise LookupError(_unknown_component_message(component, schemas, spec_file))
    return Draft202012Validator({"$ref": _component_uri(component)}, registry=registry)


@functools.lru_cache(maxsize=2)
def _load_components(spec_file: str) -> tuple[Mapping[str, Any], Registry[Any]]:
    """Parse the spec once and return its converted component schemas and a registry holding them."""
    path = Path(spec_file)
    if not path.is_file():
        source = f"${SPEC_ENV_VAR}" if os.environ.get(SPEC_ENV_VAR) else "the default location"
        raise OpenAISpecNotFoundError(
            f"OpenAI OpenAPI spec not found at {path} (from {source}). The tests that validate "
            f"payloads against it need this file: put OpenAI's openapi.yaml at {DEFAULT_SPEC_PATH} "
            f"(i.e. <repo root>/../shared/specs/openai-openapi.yaml) or set {SPEC_ENV_VAR} to its path."
        )
    with path.open("rb") as fh:
        document = yaml.load(fh, Loader=_YamlLoader)  # C/Safe loader only

    if not isinstance(document, dict):
        raise ValueError(f"{path}: not an OpenAPI document (top level is {type(document).__name__})")
    version = str(document.get("openapi", ""))
    if version.startswith("3.0"):
        oas30 = True
    elif version.startswith("3.1"):
        oas30 = False
        dialect = document.get("jsonSchemaDialect", _DIALECT_2020_12)
        if dialect.rstrip("#") != _DIALECT_2020_12:
            raise ValueError(f"{path}: unsupported jsonSchemaDialect {dialect!r}")
    else:
        raise ValueError(f"{path}: unsupported OpenAPI version {version!r} (expected 3.0.x or 3.1.x)")

    raw = (document.get("components") or {}).get("schemas")
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: no components.schemas section")
    schemas = {name: _convert(schema, component=name, oas30=oas30) for name, schema in raw.items()}
    resource = DRAFT202012.create_resource({"components": {"schemas": schemas}})
    registry: Registry[Any] = Registry().with_resource(_BASE_URI, resource)
    return schemas, registry


def _convert(node: object, *, component: str, oas30: bool) -> object:
    """Translate one OpenAPI schema object (recursively) into JSON Schema 2020-12."""
    if not isinstance(node, dict):
        return node  # boolean schemas
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            out[key] = {name: _convert(sub, component=component, oas30=oas30) for name, sub in value.items()}
        elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            out[key] = [_convert(sub, component=component, oas30=oas30) for sub in value]
        elif key in _SCHEMA_KEYWORDS:
            if isinstance(value, list):
                out[key] = [_convert(sub, component=component, oas30=oas30) for sub in value]
            else:
                out[key] = _convert(value, component=component, oas30=oas30)
        else:
            out[key] = value  # assertions, annotations, discriminator, example, x-* extensions

    # Draft 2019-09 recursion. In this spec it always points back at the enclosing component.
    out.pop("$recursiveAnchor", None)
    if "$recursiveRef" in out:
        target = out.pop("$recursiveRef")
        if target != "#":
            raise ValueError(f"components.schemas.{component}: unsupported $recursiveRef {target!r}")
        out["$ref"] = _component_pointer(component)

    # OpenAPI 3.0 / draft 4 boolean exclusive bounds -> numeric 2020-12 form.
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(exclusive)
        if isinstance(flag, bool):
            del out[exclusive]
            if flag and bound in out:
                out[exclusive] = out.pop(bound)

    nullable = out.pop("nullable", False) is True
    if oas30 and "$ref" in out:
        out = {"$ref": out["$ref"]}  # OpenAPI 3.0: siblings of $ref are ignored
    if nullable:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _component_pointer(component: str) -> str:
    escaped = component.replace("~", "~0").replace("/", "~1")
    return f"#/components/schemas/{escaped}"


def _component_uri(component: str) -> str:
    return _BASE_URI + _component_pointer(component)


def _unknown_component_message(component: str, schemas: Mapping[str, Any], spec_file: str) -> str:
    close = difflib.get_close_matches(component, list(schemas), n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"no component schema {component!r} in {spec_file}.{hint}"


def _closest_branch_error(error: ValidationError) -> ValidationError | None:
    """For a failed ``anyOf``/``oneOf``, the most likely reason, from the most plausible branch.

    Like ``jsonschema.exceptions.best_match``, except that the OpenAPI ``discriminator`` is used
    when there is one: only the branches that accept the instance's discriminator property are kept.
    """
    best = error
    while best.context:
        candidates = _discriminated_candidates(best)
        ranked = heapq.nsmallest(2, candidates or best.context, key=relevance)
        if not candidates and len(ranked) == 2 and relevance(ranked[0]) == relevance(ranked[1]):
            break  # ambiguous, as in best_match
        best = ranked[0]
    return None if best is error else best


def _discriminated_candidates(error: ValidationError) -> list[ValidationError]:
    schema, instance = error.schema, error.instance
    if not isinstance(schema, dict) or not isinstance(instance, dict):
        return []
    discriminator = schema.get("discriminator")
    prop = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
    if prop not in instance:
        return []
    branches: dict[object, list[ValidationError]] = {}
    for sub in error.context:
        branch = sub.relative_schema_path[0] if sub.relative_schema_path else None
        branches.setdefault(branch, []).append(sub)
    matching = [
        errors for errors in branches.values() if not any(list(sub.relative_path)[:1] == [prop] for sub in errors)
    ]
    return matching[0] if len(matching) == 1 else []


def _error_sort_key(error: ValidationError) -> tuple[str, ...]:
    return tuple(str(part) for part in error.absolute_path)


def _json_path(path: Iterable[str | int]) -> str:
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


def _shorten(message: str) -> str:
    if len(message) <= _MAX_MESSAGE:
        return message
    return message[: _MAX_MESSAGE - 1] + "…"
