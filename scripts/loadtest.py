"""Load test for `textlstm serve`: concurrent clients on loopback, latency and throughput.

Starts `textlstm serve EXPORT_DIR` on a free port (or uses --url of a running server),
sends --requests predict requests of one review each from --clients concurrent clients,
and prints p50/p90/p99 latency, throughput, errors, the CPU seconds the client used during
the run, and the server's CPU seconds and RSS before and after (from /proc, when the script
started the server).

Usage:
  python scripts/loadtest.py --export exports/imdb --texts ../shared/data/imdb/aclImdb_labeled.tar.gz
  python scripts/loadtest.py --url http://127.0.0.1:8501/v1/models/imdb --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import aiohttp
import numpy as np

FALLBACK_TEXTS = [
    "an absolute masterpiece, I loved every minute of it",
    "a dull, lifeless waste of two hours",
    "the acting was fine but the plot made no sense at all",
    "one of the best films of the decade, moving and funny",
]


def review_texts(archive: str | None, count: int) -> list[str]:
    """Up to ``count`` IMDB test reviews from an aclImdb archive (or a few fixed sentences)."""
    if not archive:
        return FALLBACK_TEXTS
    texts = []
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if member.isfile() and "/test/" in member.name and member.name.endswith(".txt"):
                texts.append(tar.extractfile(member).read().decode("utf-8"))
                if len(texts) >= count:
                    break
    return texts


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(export: str, name: str) -> tuple[subprocess.Popen, str]:
    """Start `textlstm serve` on a free port and wait until it logs that it serves."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "textlstm", "serve", export, "--name", name, "--port", str(port)],
        stderr=subprocess.PIPE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    pending = b""
    while b"serving " not in pending:
        ready, _, _ = select.select([proc.stderr], [], [], 300)
        chunk = os.read(proc.stderr.fileno(), 1 << 16) if ready else b""
        if not chunk:
            proc.kill()
            sys.exit(f"loadtest: the server did not start: {pending.decode(errors='replace')[-2000:]}")
        pending += chunk
    return proc, f"http://127.0.0.1:{port}/v1/models/{name}"


async def run_load(url: str, texts: list[str], requests: int, clients: int) -> dict[str, float]:
    """Send ``requests`` single-text predict requests from ``clients`` concurrent clients."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal errors
            for i in counter:
                body = json.dumps({"instances": [texts[i % len(texts)]]})
                started = time.perf_counter()
                try:
                    async with session.post(url + ":predict", data=body) as response:
                        payload = await response.json()
                        if response.status != 200 or "predictions" not in payload:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        # Warm up the model's graph for every batch shape class before timing.
        for text in texts[:8]:
            async with session.post(url + ":predict", data=json.dumps({"instances": [text]})) as response:
                await response.read()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "requests": requests,
        "clients": clients,
        "errors": errors,
        "seconds": round(wall, 2),
        "requests_per_second": round(requests / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def main() -> None:
    """Parse options, run the load, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--export", help="export folder to serve (the script starts the server)")
    target.add_argument("--url", help="http://HOST:PORT/v1/models/NAME of a running server")
    parser.add_argument("--texts", help="aclImdb archive to draw test reviews from (default: four sentences)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    texts = review_texts(args.texts, 1000)
    proc = None
    url = args.url
    if args.export:
        proc, url = start_server(args.export, Path(args.export).resolve().name)
    try:
        before = rss_mb(proc.pid) if proc else None
        cpu_before = (cpu_seconds(os.getpid()), cpu_seconds(proc.pid) if proc else 0.0)
        result = asyncio.run(run_load(url, texts, args.requests, args.clients))
        # Both sides share the machine's cores on loopback: the client's CPU is part of
        # what the latency figures pay for.
        result["client_cpu_seconds"] = round(cpu_seconds(os.getpid()) - cpu_before[0], 2)
        if proc:
            result["server_cpu_seconds"] = round(cpu_seconds(proc.pid) - cpu_before[1], 2)
            after = rss_mb(proc.pid)
            result.update({"server_rss_before_mb": round(before, 1), "server_rss_after_mb": round(after, 1)})
            result["server_rss_growth_mb"] = round(after - before, 1)
        result["texts"] = "IMDB test reviews" if args.texts else "four short sentences"
        result["mean_text_chars"] = round(float(np.mean([len(t) for t in texts])), 1)
        print(json.dumps(result, indent=2))
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
