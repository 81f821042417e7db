"""``python -m nmt.serve CKPT [CKPT ...]``: serve checkpoints over HTTP (see :mod:`nmt.serve`).

Each ``CKPT`` is a translation or classification checkpoint (or a ``nmt/cli/export.py``
file), optionally named: ``fr=outputs/spm_bahdanau/RUN/checkpoints/best.ckpt``; otherwise
a model is named after its experiment (``spm_bahdanau``). Translation checkpoints joined
with ``+`` are served as one ensemble, the mean of their step probabilities
(``fr=runs/a/best.ckpt+runs/b/best.ckpt``; they must share their tokenizers). Only these
files are ever loaded, with ``torch.load(weights_only=True)``. ``--port 0`` picks a free
port. The first line on stdout is ``serving N models at http://HOST:PORT/``.

Errors (a bad option, a missing, damaged or unservable checkpoint, a port in use) are one
line on stderr and exit status 2 (see :mod:`nmt.cli.common`).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from nmt.cli.common import OneLineArgumentParser, add_running_arguments, apply_threads, resolve_device, run_command

PROG = "python -m nmt.serve"


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=PROG, description="Serve nmt checkpoints over HTTP, with a demo page at /.")
    parser.add_argument(
        "checkpoints",
        nargs="+",
        metavar="CKPT",
        help="translation or classification checkpoints; NAME=PATH names one; PATH1+PATH2 serves "
        "translation checkpoints as one ensemble",
    )
    net = parser.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    net.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    net.add_argument(
        "--max-connections",
        type=int,
        default=512,
        metavar="N",
        help="open connections beyond which uvicorn answers 503 (default 512)",
    )
    batching = parser.add_argument_group("batching")
    batching.add_argument(
        "--max-batch", type=int, default=32, metavar="N", help="most texts decoded together (default 32)"
    )
    batching.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        metavar="MS",
        help="longest a text waits for others to join its batch (default 5; 0 = none)",
    )
    batching.add_argument(
        "--max-queue",
        type=int,
        default=1024,
        metavar="N",
        help="texts waiting beyond which requests get 503 (default 1024)",
    )
    caps = parser.add_argument_group("input limits")
    caps.add_argument("--max-chars", type=int, default=2000, metavar="N", help="characters per text (default 2000)")
    caps.add_argument("--max-texts", type=int, default=64, metavar="N", help="texts per request (default 64)")
    caps.add_argument("--max-beam", type=int, default=16, metavar="N", help="beam size and n-best (default 16)")
    caps.add_argument(
        "--max-body-bytes", type=int, default=1_000_000, metavar="N", help="request body size (default 1000000)"
    )
    run = parser.add_argument_group("running")
    add_running_arguments(run)  # --precision applies to the translation models
    run.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info")
    run.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    for option, least in (
        ("max_connections", 1),
        ("max_batch", 1),
        ("max_queue", 1),
        ("max_chars", 1),
        ("max_texts", 1),
        ("max_beam", 1),
        ("max_body_bytes", 1),
    ):
        value = getattr(args, option)
        if value is not None and value < least:
            parser.error(f"--{option.replace('_', '-')} must be >= {least}, got {value}")
    if args.max_queue < args.max_texts:
        parser.error(
            f"--max-queue ({args.max_queue}) must be >= --max-texts ({args.max_texts}): "
            "otherwise a full request could never be queued"
        )
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0..65535, got {args.port}")
    if not 0 <= args.max_wait_ms <= 10_000:
        parser.error(f"--max-wait-ms must be in 0..10000, got {args.max_wait_ms}")
    return args


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket, so that a port in use is a one-line error here and
    ``--port 0`` tells its port before uvicorn starts."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {error.strerror or error}: "
            "stop what uses it or choose another --port/--host"
        ) from error
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(args: argparse.Namespace) -> int:
    """Load the models, bind the port, then serve until stopped."""
    import uvicorn

    from nmt.inference.translator import decoding_dtype
    from nmt.serve.app import create_app
    from nmt.serve.batcher import Batcher
    from nmt.serve.models import ModelSpec, load_models
    from nmt.serve.schemas import Limits

    apply_threads(args.threads)
    device = resolve_device(args.device)
    decoding_dtype(args.precision, device)  # a bad pairing fails before any model loads
    models = load_models([ModelSpec.parse(a) for a in args.checkpoints], device, args.max_batch, args.precision)
    sock = listen(args.host, args.port)
    limits = Limits(args.max_chars, args.max_texts, args.max_beam, args.max_body_bytes)
    batcher = Batcher(args.max_batch, args.max_wait_ms / 1000, args.max_queue)
    app = create_app(models, limits, batcher)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    for model in models.values():
        print(f"{model.name}: {model.task}, {model.info['file']}", flush=True)
    print(f"serving {len(models)} model{'s' * (len(models) != 1)} at http://{shown}:{port}/", flush=True)
    if not ipaddress.ip_address(socket.gethostbyname(host) if ":" not in host else host).is_loopback:
        print(f"note: listening on {host}, beyond this machine; the server has no authentication", file=sys.stderr)
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=args.access_log,
        limit_concurrency=args.max_connections,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(PROG, lambda: serve(args))


if __name__ == "__main__":
    sys.exit(main())
