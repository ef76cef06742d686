"""The text table printed by ``run.py``: one column per target (direct first, then each gateway)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wrkrun import WrkResult

MIB = 1024


@dataclass(frozen=True, slots=True)
class GatewayStats:
    transport: str
    processes: int
    rss_kib: int  # VmRSS summed over the gateway's processes after the run
    peak_rss_kib: int  # VmHWM summed likewise
    cpu_seconds: float  # user + system CPU of the gateway's processes during the three phases
    requests_sent: int  # requests the load tools sent and saw answered (see in_flight_bound)
    in_flight_bound: int  # wrk may have left up to this many more in flight when it stopped
    usage_rows_after_1s: int
    usage_rows: int
    usage_wait_seconds: float
    log_errors: int
    log: str


@dataclass(slots=True)
class Measurement:
    target: str
    throughput: WrkResult
    rate: dict[str, Any]
    stream: dict[str, Any]
    gateway: GatewayStats | None = None


Cell = Callable[[Measurement, Measurement], str]  # (this column, the direct column) -> text


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _added(value: float | None, base: float | None) -> str:
    return "-" if value is None or base is None else f"{value - base:+.2f}"


def _errors(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0"


def _part(stream: dict[str, Any], part: str) -> dict[str, Any]:
    value: dict[str, Any] = stream.get(part) or {}
    return value


def _stream_part(m: Measurement, part: str) -> dict[str, Any]:
    return _part(m.stream, part)


def _stream(part: str, metric: str, p: str) -> Cell:
    return lambda m, _d: _ms((_stream_part(m, part).get(metric) or {}).get(p))


def _stream_added(part: str, metric: str, p: str) -> Cell:
    def cell(m: Measurement, d: Measurement) -> str:
        if m is d:
            return ""
        mine = (_stream_part(m, part).get(metric) or {}).get(p)
        direct = (_stream_part(d, part).get(metric) or {}).get(p)
        return _added(mine, direct)

    return cell


def _rate_added(p: str) -> Cell:
    return lambda m, d: "" if m is d else _added(m.rate["latency"][p], d.rate["latency"][p])


def _gateway(fn: Callable[[GatewayStats], str]) -> Cell:
    return lambda m, _d: "" if m.gateway is None else fn(m.gateway)


def _cpu_per_request(g: GatewayStats) -> float:
    return g.cpu_seconds * 1000 / g.requests_sent if g.requests_sent else 0.0


def _usage(g: GatewayStats) -> str:
    text = f"{g.usage_rows}/{g.requests_sent}"
    return text + ("" if g.usage_rows == g.usage_rows_after_1s else f" ({g.usage_wait_seconds:.1f}s)")


def _rows(rate: float, stream: dict[str, Any]) -> list[tuple[str, Cell | None]]:
    concurrent = _part(stream, "concurrent")
    rows: list[tuple[str, Cell | None]] = [
        ("max throughput (wrk, closed loop)", None),
        ("  requests/s", lambda m, _d: f"{m.throughput.rps:,.0f}"),
        ("  p50 ms", lambda m, _d: _ms(m.throughput.p50_ms)),
        ("  p99 ms", lambda m, _d: _ms(m.throughput.p99_ms)),
        ("  non-2xx / socket errors", lambda m, _d: f"{m.throughput.non_2xx} / {m.throughput.socket_errors}"),
        (f"fixed rate {rate:g} req/s (open loop)", None),
        ("  achieved req/s", lambda m, _d: f"{m.rate['achieved_rps']:,.0f}"),
        ("  p50 ms", lambda m, _d: _ms(m.rate["latency"]["p50_ms"])),
        ("  p99 ms", lambda m, _d: _ms(m.rate["latency"]["p99_ms"])),
        ("  max ms", lambda m, _d: _ms(m.rate["latency"]["max_ms"])),
        ("  added p50 ms (vs direct)", _rate_added("p50_ms")),
        ("  added p99 ms (vs direct)", _rate_added("p99_ms")),
        ("  errors", lambda m, _d: _errors(m.rate["errors"])),
        ("  generator lag p99 ms", lambda m, _d: _ms(m.rate["lag"]["p99_ms"])),
        (f"streaming, {_part(stream, 'sequential').get('ok', 0)} sequential", None),
        ("  TTFB p50 ms", _stream("sequential", "ttfb", "p50_ms")),
        ("  TTFB p99 ms", _stream("sequential", "ttfb", "p99_ms")),
        ("  added TTFB p50 ms", _stream_added("sequential", "ttfb", "p50_ms")),
        ("  last byte p50 ms", _stream("sequential", "last_byte", "p50_ms")),
        ("  last byte p99 ms", _stream("sequential", "last_byte", "p99_ms")),
    ]
    if concurrent:
        rows += [
            (f"streaming, {concurrent.get('ok', 0)} at concurrency {stream.get('concurrency')}", None),
            ("  TTFB p50 ms", _stream("concurrent", "ttfb", "p50_ms")),
            ("  TTFB p99 ms", _stream("concurrent", "ttfb", "p99_ms")),
            ("  last byte p50 ms", _stream("concurrent", "last_byte", "p50_ms")),
            ("  last byte p99 ms", _stream("concurrent", "last_byte", "p99_ms")),
        ]
    rows += [
        ("  stream errors", lambda m, _d: _errors(_stream_errors(m))),
        ("gateway process", None),
        ("  RSS after run MiB", _gateway(lambda g: f"{g.rss_kib / MIB:.1f}")),
        ("  peak RSS MiB", _gateway(lambda g: f"{g.peak_rss_kib / MIB:.1f}")),
        ("  processes", _gateway(lambda g: str(g.processes))),
        ("  CPU s during load", _gateway(lambda g: f"{g.cpu_seconds:.1f}")),
        ("  CPU ms per request", _gateway(lambda g: f"{_cpu_per_request(g):.3f}")),
        ("  usage rows / requests sent", _gateway(_usage)),
        ("  ERROR lines in its log", _gateway(lambda g: str(g.log_errors))),
    ]
    return rows


def _stream_errors(m: Measurement) -> dict[str, int]:
    errors: dict[str, int] = {}
    for part in ("sequential", "concurrent"):
        for name, count in (_stream_part(m, part).get("errors") or {}).items():
            errors[name] = errors.get(name, 0) + count
    return errors


def render(results: list[Measurement], rate: float) -> str:
    direct = results[0]
    rows = _rows(rate, direct.stream)
    label_width = max(len(label) for label, _ in rows) + 2
    widths = [max(14, len(m.target) + 2) for m in results]
    lines = [" " * label_width + "".join(m.target.rjust(w) for m, w in zip(results, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    for label, cell in rows:
        if cell is None:
            lines.append(label)
            continue
        values = [cell(m, direct) for m in results]
        lines.append(label.ljust(label_width) + "".join(v.rjust(w) for v, w in zip(values, widths, strict=True)))
    return "\n".join(lines)


def _cpu(m: Measurement) -> float:
    return _cpu_per_request(m.gateway) if m.gateway else float("nan")


def compare_transports(results: list[Measurement]) -> list[str]:
    """One line per pair of gateway columns: which transport did better, by how much."""
    gateways = [m for m in results if m.gateway is not None]
    if len(gateways) < 2:
        return []
    direct, a = results[0], gateways[0]
    lines = []
    for b in gateways[1:]:
        tp = (a.throughput.rps / b.throughput.rps - 1) * 100 if b.throughput.rps else float("nan")
        added = [m.rate["latency"]["p99_ms"] - direct.rate["latency"]["p99_ms"] for m in (a, b)]
        lines.append(
            f"{a.target} vs {b.target}: "
            f"max throughput {a.throughput.rps:,.0f} vs {b.throughput.rps:,.0f} req/s ({tp:+.1f}%), "
            f"added p99 at {direct.rate['offered_rps']:g} req/s {added[0]:+.2f} vs {added[1]:+.2f} ms, "
            f"CPU per request {_cpu(a):.3f} vs {_cpu(b):.3f} ms"
        )
    return lines
