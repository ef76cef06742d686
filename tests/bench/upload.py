"""Measure what an audio upload costs the gateway's memory: is it streamed through, or held whole?

Starts the fake upstream and a gateway (embedded mode), then sends multipart transcription uploads
of growing size, chunked from a generator, and reads the gateway's peak resident memory (VmHWM)
after each. A gateway that held uploads whole would grow by about the upload's size each step.

Usage: python tests/bench/upload.py [--sizes-mb 1,8,24]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from services import (
    LOOPBACK,
    Processes,
    free_port,
    gateway_cli,
    gateway_command,
    gateway_env,
    memory_kib,
    process_tree,
    start_fake_upstream,
    wait_for_http,
)

BOUNDARY = "bench-upload-boundary"
PIECE = 64 * 1024


class _NoPinning:
    def for_load(self) -> None:
        return None


def multipart(size: int) -> Iterator[bytes]:
    """A transcription form, ``model`` first, then ``size`` bytes of audio, produced piece by piece."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
        "Content-Type: audio/mpeg\r\n\r\n"
    ).encode()
    piece = bytes(range(256)) * (PIECE // 256)
    for start in range(0, size, PIECE):
        yield piece[: min(PIECE, size - start)]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def upload(port: int, token: str, size: int) -> tuple[int, float, dict[str, object]]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
    headers = {
        "authorization": f"Bearer {token}",
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
        "transfer-encoding": "chunked",
    }
    started = time.perf_counter()
    connection.request("POST", "/v1/audio/transcriptions", body=multipart(size), headers=headers, encode_chunked=True)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    return response.status, elapsed, json.loads(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="1,8,24")
    args = parser.parse_args(argv)
    sizes = [int(float(mb) * 1024 * 1024) for mb in args.sizes_mb.split(",")]
    with tempfile.TemporaryDirectory(prefix="gateway-upload-bench-") as tmp, Processes(Path(tmp)) as procs:
        upstream = start_fake_upstream(procs, _NoPinning())  # type: ignore[arg-type]
        models = Path(tmp) / "models.yaml"
        models.write_text(
            f"backends:\n  fake:\n    kind: openai\n    base_url: http://{LOOPBACK}:{upstream}/v1\n"
            "models:\n  whisper-1:\n    backend: fake\n    prices: {audio_second: 100}\n"
        )
        env = gateway_env({"models_file": str(models), "data_dir": str(Path(tmp) / "data"), "admin_key": ""})
        token = gateway_cli(["keys", "create", "--name", "bench"], env).splitlines()[0].strip()
        port = free_port()
        proc = procs.start("gateway", [*gateway_command(), "serve", "--host", LOOPBACK, "--port", str(port)], env=env)
        wait_for_http(proc, procs.log("gateway"), port, "/healthz")
        status, _, _ = upload(port, token, 1024)  # warm up: first-request imports and allocations
        print(f"warm-up upload: {status}")
        print(f"{'upload MB':>10} {'status':>6} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12} {'growth MB':>10}")
        baseline = sum(memory_kib(pid, "VmHWM") for pid in process_tree(proc.pid)) / 1024
        for size in sizes:
            status, seconds, reply = upload(port, token, size)
            peak = sum(memory_kib(pid, "VmHWM") for pid in process_tree(proc.pid)) / 1024
            mb = size / 1024 / 1024
            rate = mb / seconds
            print(f"{mb:>10.1f} {status:>6} {seconds:>8.2f} {rate:>7.1f} {peak:>12.1f} {peak - baseline:>10.1f}")
            if status != 200:
                print(f"  reply: {reply}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
