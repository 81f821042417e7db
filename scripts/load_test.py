"""Load test of ``python -m nmt.serve``: throughput and latency for 1, 8 and 32 concurrent clients.

    python scripts/load_test.py CKPT [--clients 1 8 32] [--requests 256] [--max-seconds 60]
        [--input FILE] [--strategy greedy|beam] [--compare-unbatched] [--server-threads N]
    python scripts/load_test.py --url http://127.0.0.1:8000 [...]

Starts the server on a free loopback port with ``CKPT`` (or tests one already running on
this machine with ``--url``; other hosts are refused), then for each number of clients
sends ``--requests`` requests of one text each (taken in turn from ``--input``, one text
per line, a TSV's first column; default: built-in English sentences), every client
sending its next request as soon as its answer came back, and stops early after
``--max-seconds``. Each level starts with a short warm-up that is not counted.

Prints a table: requests per second, p50 and p99 latency, the mean batch the server
decoded and the server's CPU time per request (from ``GET /health``; on a machine shared
with other jobs it tells the work done, which wall-clock figures do not), 503s and other
errors (0: a dropped connection), and the speed-up over one client
(one request at a time, the server never batching). ``--compare-unbatched`` repeats every
level against a second server started with ``--max-batch 1`` (no batching), which tells
what batching itself brings. ``--json FILE`` writes the rows. Both processes share the
machine: on a small one the clients' own CPU time counts against the server.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import socket
import statistics
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlparse

from nmt.cli.common import OneLineArgumentParser, read_lines
from nmt.serve import launch

PROG = "scripts/load_test.py"
REPO = Path(__file__).resolve().parents[1]
WARMUP = 1  # requests per client before the clock starts (opens its connection)

SENTENCES = [
    "I'm hungry.",
    "Tom is in the kitchen.",
    "Where is the train station?",
    "It's raining again today.",
    "She didn't want to go to school.",
    "We have to leave before it gets dark.",
    "Can you help me?",
    "My brother works in a hospital.",
    "I've never seen anything like this before.",
    "Close the door.",
    "The children are playing in the garden.",
    "He bought a new car last week.",
    "Are you sure?",
    "I don't know what to say.",
    "This book is more interesting than that one.",
    "Let's eat.",
    "They went to the beach with their friends.",
    "Tom said he would come back tomorrow.",
    "How much does this cost?",
    "I think we should tell her the truth.",
    "The museum is closed on Mondays.",
    "Do you speak French?",
    "We were late because of the snow.",
    "Everybody laughed.",
    "I forgot to lock the door when I left the house this morning.",
    "Thank you very much.",
    "Mary wants to become a doctor.",
    "Why are you so tired?",
    "The coffee is too hot.",
    "Wait here.",
    "I used to live in a small village near the sea.",
    "What time is it?",
]
CLASSIFY_TEXTS = [
    "Are we still meeting for lunch tomorrow?",
    "WINNER!! You have won a 1000 prize. Call 09061701461 now",
    "ok see you later",
    "URGENT! Your mobile number has been awarded a bonus. Text CLAIM to 81010",
    "Sorry, I'll call you back in ten minutes.",
    "Free entry in a weekly competition to win FA Cup tickets",
    "Did you get home all right?",
    "Congratulations, you have been selected for a free holiday, reply YES",
]


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=PROG, description="Load-test nmt.serve on this machine.")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("checkpoint", nargs="?", type=Path, help="start a server with this checkpoint")
    target.add_argument("--url", help="a server already running on this machine (loopback only)")
    parser.add_argument("--model", help="model name (default: the first one)")
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[1, 8, 32],
        metavar="N",
        help="concurrent clients, one level each (default: 1 8 32)",
    )
    parser.add_argument("--requests", type=int, default=256, metavar="N", help="requests per level (default 256)")
    parser.add_argument(
        "--max-seconds", type=float, default=60.0, metavar="S", help="stop a level after this long (default 60)"
    )
    parser.add_argument("--input", type=Path, metavar="FILE", help="texts, one per line (default: built-in)")
    parser.add_argument(
        "--strategy",
        choices=("greedy", "beam"),
        default="greedy",
        help="translation: greedy or beam search with beam 5 (default greedy)",
    )
    parser.add_argument(
        "--compare-unbatched", action="store_true", help="also run every level against a server with --max-batch 1"
    )
    parser.add_argument("--server-threads", type=int, metavar="N", help="the started server's torch threads")
    parser.add_argument(
        "--server-args",
        default="",
        metavar="'ARGS'",
        help="more options for the started server, e.g. '--max-wait-ms 2'",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the rows as JSON")
    return parser


# -- the server ---------------------------------------------------------------------------


def check_loopback(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme != "http" or not parsed.hostname:
        raise ValueError(f"--url {url!r} is not an http:// URL: give e.g. http://127.0.0.1:8000")
    try:
        address = ipaddress.ip_address(socket.gethostbyname(parsed.hostname))
    except (OSError, ValueError) as error:
        raise ValueError(f"--url {url!r}: cannot resolve {parsed.hostname}: {error}") from error
    if not address.is_loopback:
        raise ValueError(f"--url {url!r} is not on this machine: the load test only runs over loopback")
    return url.rstrip("/")


@contextmanager
def started_server(checkpoints: list[str], extra: list[str]):
    """A ``python -m nmt.serve`` child on a free loopback port, run from the checkout; yields its URL."""
    with launch.started_server(checkpoints, extra, cwd=REPO) as url:
        yield url


# -- the clients ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between order statistics."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def run_level(
    url: str, path: str, bodies: list[dict], clients: int, total: int, max_seconds: float, transport=None
) -> dict:
    """``clients`` clients send ``total`` requests between them (one at a time each).

    :param transport: an httpx transport (the tests pass the app in-process); default: TCP.
    """
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, transport=transport) as http:

        async def warm(client: int) -> None:
            for k in range(WARMUP):
                with suppress(httpx.TransportError):  # counted below if it happens again
                    await http.post(path, json=bodies[(client + k) % len(bodies)])

        await asyncio.gather(*(warm(c) for c in range(clients)))
        before = (await http.get("/health")).json()
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        issued = 0
        started = time.perf_counter()
        deadline = started + max_seconds

        async def client_loop() -> None:
            nonlocal issued
            while issued < total and time.perf_counter() < deadline:
                body = bodies[issued % len(bodies)]
                issued += 1
                sent = time.perf_counter()
                try:
                    status = (await http.post(path, json=body)).status_code
                except httpx.TransportError:  # a dropped connection: an error of this request, not of the test
                    status = 0
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(client_loop() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        after = (await http.get("/health")).json()
    batches = after["batches"]["batches"] - before["batches"]["batches"]
    texts = after["batches"]["texts"] - before["batches"]["texts"]
    cpu = after.get("cpu_seconds", 0.0) - before.get("cpu_seconds", 0.0)
    done = len(latencies)
    return {
        "clients": clients,
        "requests": sum(statuses.values()),
        "ok": done,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(done / elapsed, 2) if elapsed else 0.0,
        "p50_ms": round(1000 * percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 99), 1) if latencies else None,
        "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
        "mean_batch": round(texts / batches, 2) if batches else 0.0,
        "server_cpu_ms_per_request": round(1000 * cpu / done, 1) if done else None,
        "rejected_503": statuses.get(503, 0),
        "errors": sum(n for status, n in statuses.items() if status not in (200, 503)),  # 0: connection lost
    }


def request_bodies(
    url: str, model_name: str | None, texts: list[str] | None, strategy: str
) -> tuple[str, list[dict], str]:
    import httpx

    models = httpx.get(f"{url}/models", timeout=30).json()["models"]
    if not models:
        raise ValueError("the server has no models")
    chosen = next((m for m in models if m["name"] == model_name), None) if model_name else models[0]
    if chosen is None:
        raise ValueError(f"no model {model_name!r} on the server: it has {', '.join(m['name'] for m in models)}")
    if chosen["task"] == "translation":
        options = {"strategy": "beam", "beam_size": 5} if strategy == "beam" else {}
        return (
            "/translate",
            [{"text": t, "model": chosen["name"], **options} for t in texts or SENTENCES],
            chosen["name"],
        )
    return "/classify", [{"text": t, "model": chosen["name"]} for t in texts or CLASSIFY_TEXTS], chosen["name"]


def measure(url: str, args: argparse.Namespace, texts: list[str] | None, mode: str) -> list[dict]:
    path, bodies, name = request_bodies(url, args.model, texts, args.strategy)
    rows = []
    for clients in args.clients:
        row = asyncio.run(run_level(url, path, bodies, clients, args.requests, args.max_seconds))
        row = {"server": mode, "model": name, **row}
        rows.append(row)
        print(
            f"  {mode}, {clients} clients: {row['requests_per_second']} req/s, p50 {row['p50_ms']} ms",
            file=sys.stderr,
            flush=True,
        )
    single = next((r["requests_per_second"] for r in rows if r["clients"] == 1), None)
    for row in rows:
        row["speedup_vs_1_client"] = round(row["requests_per_second"] / single, 2) if single else None
    return rows


def table(rows: list[dict]) -> str:
    header = (
        "| server | clients | requests | req/s | p50 ms | p99 ms | mean batch | server CPU ms/req | 503s | "
        "errors | req/s vs 1 client |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [
        f"| {r['server']} | {r['clients']} | {r['ok']} | {r['requests_per_second']:.2f} | {r['p50_ms']} | "
        f"{r['p99_ms']} | {r['mean_batch']} | {r['server_cpu_ms_per_request']} | {r['rejected_503']} | "
        f"{r['errors']} | {r['speedup_vs_1_client']}x |"
        for r in rows
    ]
    return "\n".join([header, *lines])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.clients) or args.requests < 1 or args.max_seconds <= 0:
        parser.error("--clients and --requests must be >= 1 and --max-seconds > 0")
    try:
        texts = None
        if args.input:
            with open(args.input, "rb") as stream:
                texts = [line.split("\t")[0] for line in read_lines(stream, str(args.input)) if line.strip()]
            if not texts:
                raise ValueError(f"{args.input} holds no text: give one text per line")
        extra = args.server_args.split()
        if args.server_threads:
            extra += ["--threads", str(args.server_threads)]
        rows = []
        if args.url:
            rows += measure(check_loopback(args.url), args, texts, "as running")
        else:
            if not args.checkpoint.is_file():
                raise ValueError(f"checkpoint {args.checkpoint} not found: give a .ckpt file or --url")
            with started_server([args.checkpoint], extra) as url:
                rows += measure(url, args, texts, "batched")
            if args.compare_unbatched:
                with started_server([args.checkpoint], [*extra, "--max-batch", "1"]) as url:
                    rows += measure(url, args, texts, "unbatched")
    except (ValueError, RuntimeError, OSError) as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
