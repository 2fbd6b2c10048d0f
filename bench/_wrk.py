"""wrk (the HTTP load generator, a Debian package) against one URL, as the yardstick the
benchmarks' own client is held to: ``wrk -t2 -c<CONCURRENCY> -d<SECONDS>s --latency URL``,
its requests per second and 99th-percentile latency read from its report."""

from __future__ import annotations

import re
import shutil
import subprocess

THREADS = 2
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def require() -> str:
    """wrk's path; a clear error when it is not installed."""
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed: run tools/install-system-deps.sh (as root), "
                           "or `make bench`, which runs it first")
    return exe


def parse(report: str) -> dict[str, float]:
    """Requests/s, p99 (ms), requests and socket errors from a ``wrk --latency`` report."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", report, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$", report, re.M)
    count = re.search(r"^\s+(\d+) requests in ", report, re.M)
    if rps is None or p99 is None or count is None:
        raise RuntimeError(f"wrk's report has no Requests/sec or 99% latency:\n{report}")
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        report)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    return {"rps": float(rps.group(1)),
            "p99_ms": float(p99.group(1)) * _UNITS_MS[p99.group(2)],
            "requests": float(count.group(1)),
            "socket_errors": float(sum(int(n) for n in sockets.groups()) if sockets else 0),
            "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0}


def measure(url: str, *, seconds: float, connections: int,
            headers: dict[str, str] | None = None) -> dict[str, float]:
    """wrk's figures for ``url`` (whole seconds, at least one). Any answer other than 2xx or
    3xx is an error: the figure would not be the one asked for."""
    argv = [require(), f"-t{THREADS}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, check=False,
                          timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    figures = parse(done.stdout)
    if figures["non_2xx"]:
        raise RuntimeError(f"wrk: {int(figures['non_2xx'])} of {int(figures['requests'])} "
                           f"answers from {url} were not 2xx or 3xx")
    return figures


def results(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    """``measure``'s figures as a benchmark's results: ``wrk_<prefix>_requests_per_s``,
    ``_p99_ms`` and ``_socket_errors``."""
    return {f"wrk_{prefix}_requests_per_s": round(figures["rps"], 1),
            f"wrk_{prefix}_p99_ms": round(figures["p99_ms"], 2),
            f"wrk_{prefix}_socket_errors": int(figures["socket_errors"])}
