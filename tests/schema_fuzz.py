"""Schemathesis over the gateway's served OpenAPI schema: every operation, every check.

The /v1 and health routes run with a user key, /admin with the admin key. Generation is
deterministic (``--generation-deterministic``: Hypothesis' derandomize) and Schemathesis sets no
Hypothesis deadline, so a run is reproducible and nothing in it depends on timing.

As a script (a longer run than the test suite's)::

    python tests/schema_fuzz.py [--max-examples 100] [--mode embedded|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import ADMIN_KEY, Gateway, running_gateway

ST = Path(sys.executable).with_name("st")


@dataclass
class Run:
    who: str
    returncode: int
    output: str

    @property
    def summary(self) -> str:
        return self.output.strip().splitlines()[-1] if self.output.strip() else "(no output)"


async def schemathesis(base_url: str, key: str, who: str, paths: str, max_examples: int) -> Run:
    """One ``st run`` over the operations whose path matches ``paths`` (a regex)."""
    command = [
        str(ST),
        "run",
        f"{base_url}/schema/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {key}",
        "--include-path-regex",
        paths,
        "--max-examples",
        str(max_examples),
        "--generation-deterministic",  # which also keeps no example database between runs
        "--workers",
        "1",
        "--no-color",
    ]
    # A subprocess, awaited: the gateway keeps serving on this event loop meanwhile. Run in a fresh
    # directory: Schemathesis keeps a cache of earlier crashes in ./.schemathesis, which would make
    # one run depend on the last (and litter the checkout).
    with tempfile.TemporaryDirectory() as cwd:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd
        )
        output, _ = await process.communicate()
    return Run(who, process.returncode or 0, output.decode(errors="replace"))


async def fuzz(gateway: Gateway, max_examples: int) -> list[Run]:
    user_key = await gateway.create_key("schemathesis")
    return [
        await schemathesis(gateway.base_url, user_key, "user key", r"^/(v1|healthz|readyz|metrics)", max_examples),
        await schemathesis(gateway.base_url, ADMIN_KEY, "admin key", r"^/admin/", max_examples),
    ]


async def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--mode", choices=["embedded", "postgres"], default="embedded")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        async with running_gateway(args.mode, Path(tmp)) as gateway:
            runs = await fuzz(gateway, args.max_examples)
    for run in runs:
        print(f"--- {run.who} ---\n{run.output}")
    print(f"{time.monotonic() - started:.0f} s; " + "; ".join(f"{run.who}: {run.summary}" for run in runs))
    return max(run.returncode for run in runs)


if __name__ == "__main__":
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDTESTONLY")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test-secret-access-key")
    os.environ.setdefault("GATEWAY_TEST_ENTRA_SECRET", "entra-client-secret-do-not-leak")
    sys.exit(asyncio.run(_main()))
