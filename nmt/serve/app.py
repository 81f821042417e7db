"""The HTTP routes: ``/translate``, ``/classify``, ``/models``, ``/health`` and the page at ``/``.

:func:`create_app` serves the models it is given (those loaded from the command line:
no request can name a file). Every request's texts go through the :class:`Batcher`, which
runs them, batched with other requests', on its worker thread. Every error is JSON,
``{"detail": "one line naming the problem and the fix"}`` (422s add ``"errors"``, one per
field), with these statuses:

* 400 the body is not valid JSON; 413 it is larger than ``--max-body-bytes``; 415 it is
  not sent as ``application/json``;
* 404 an unknown model name (or no model for the task);
* 422 a wrong field, type or value, a text that is empty, too long or holds control
  characters, a beam or n-best above ``--max-beam``, a model of the other task;
* 503 the batching queue is full (with ``Retry-After``); 500 the model failed on a batch
  (the server goes on).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nmt.data.text import normalize_text
from nmt.decoding import DecodingOptions
from nmt.serve.batcher import Batcher, QueueFull
from nmt.serve.models import ServedClassifier, ServedModel, ServedTranslator
from nmt.serve.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    Limits,
    TranslateRequest,
    TranslateResponse,
    text_problems,
)

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("nmt.serve")


class BodyLimit:
    """Pure ASGI middleware: a request body over ``max_bytes`` is answered 413 before it is
    parsed, whether or not it declares its length (a chunked upload is cut off there)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            {
                "detail": f"the request body is larger than {self.max_bytes:,} bytes (--max-body-bytes): "
                "send fewer or shorter texts per request"
            },
            status_code=413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


UNION_TAGS = {"str", "list[str]"}  # pydantic's names for the members of ``str | list[str]``
EXAMPLE = '{"text": "Hello."}'


def _one_line(errors: list[dict[str, Any]]) -> tuple[int, str, list[dict[str, str]]]:
    """Status, message and per-field list for pydantic's validation errors."""
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "")
            return 400, f"the request body is not valid JSON ({reason}): send a JSON object such as {EXAMPLE}", []
    fields: dict[str, str] = {}
    for error in errors:
        parts = [str(part) for part in error.get("loc", ()) if part != "body"]
        message = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            message = "unknown field (see GET /openapi.json for the fields)"
        elif error.get("type") == "missing":
            message = (
                "required field is missing"
                if parts
                else f"the request body is empty: send a JSON object such as {EXAMPLE}"
            )
        elif not parts:
            message = f"the body must be a JSON object such as {EXAMPLE}"
        elif parts[0] == "text" and len(parts) > 1 and parts[1] in UNION_TAGS:
            parts, message = ["text"], "must be a string or a list of strings"
        fields.setdefault(".".join(parts) or "body", message)
    listed = [{"field": field, "message": message} for field, message in fields.items()]
    return 422, "; ".join(f"{f['field']}: {f['message']}" for f in listed), listed


def create_app(
    models: Mapping[str, ServedModel],
    limits: Limits = Limits(),
    batcher: Batcher | None = None,
) -> FastAPI:
    """The application serving ``models`` (by name), with the given caps and batcher."""
    batcher = batcher or Batcher()
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        batcher.close()

    app = FastAPI(
        title="nmt",
        summary="Recurrent translation and text classification with attention.",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.models = models
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            shown = media_type or "none"
            return JSONResponse(
                {"detail": f"the body must be JSON, sent with Content-Type: application/json (got {shown})"},
                status_code=415,
            )
        status, message, fields = _one_line(list(error.errors()))
        content: dict[str, Any] = {"detail": message}
        if fields:
            content["errors"] = fields
        return JSONResponse(content, status_code=status)

    @app.exception_handler(QueueFull)
    async def busy(request: Request, error: QueueFull) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503, headers={"Retry-After": "1"})

    def pick(name: str | None, kind: type, task: str) -> Any:
        if name is None:
            for model in models.values():
                if isinstance(model, kind):
                    return model
            loaded = ", ".join(f"{m.name} ({m.task})" for m in models.values()) or "none"
            raise HTTPException(
                404, f"no {task} model is loaded (loaded: {loaded}): start the server with a {task} checkpoint"
            )
        named = models.get(name)
        if named is None:
            raise HTTPException(404, f"unknown model {name!r}: the loaded models are {', '.join(models)} (GET /models)")
        if not isinstance(named, kind):
            endpoint = "/translate" if named.task == "translation" else "/classify"
            raise HTTPException(422, f"model {name!r} is a {named.task} model: send it to POST {endpoint}")
        return named

    def check_texts(texts: str | list[str]) -> list[str]:
        problems = text_problems(texts, limits)
        if problems:
            raise HTTPException(422, "; ".join(problems))
        return [texts] if isinstance(texts, str) else list(texts)

    async def run(key: tuple, runner, texts: list[str]) -> list:
        try:
            return await batcher.submit(key, runner, texts)
        except QueueFull:
            raise
        except Exception as error:  # a failure of the model on this batch, not of the server
            log.exception("batch failed")
            raise HTTPException(500, f"the model failed on this batch: {type(error).__name__}: {error}") from error

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and load: models, queue, batches run so far, CPU time used."""
        return {
            "status": "ok",
            "models": list(models),
            "uptime_seconds": round(time.monotonic() - started, 1),
            "cpu_seconds": round(time.process_time(), 3),  # the server's, all threads: work done, whatever else runs
            "queue": {"waiting": batcher.waiting, "running": batcher.running, "capacity": batcher.max_queue},
            "batches": batcher.stats.as_dict(),
        }

    @app.get("/models")
    async def list_models() -> dict[str, Any]:
        """What is loaded: task, sizes, tokenizers, training figures; and the server's limits."""
        return {
            "models": [model.describe() for model in models.values()],
            "limits": limits.as_dict(),
            "batching": {
                "max_batch": batcher.max_batch,
                "max_wait_ms": round(batcher.max_wait * 1000, 3),
                "max_queue": batcher.max_queue,
            },
        }

    @app.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True)
    async def translate(request: TranslateRequest) -> dict[str, Any]:
        """Translate one text or a list; beam, n-best, sampling; attention on request."""
        model: ServedTranslator = pick(request.model, ServedTranslator, "translation")
        texts = check_texts(request.text)
        if request.strategy == "beam" and request.beam_size > limits.max_beam:
            raise HTTPException(
                422, f"beam_size {request.beam_size} is above the limit of {limits.max_beam} (--max-beam)"
            )
        if request.n_best > limits.max_beam:
            raise HTTPException(422, f"n_best {request.n_best} is above the limit of {limits.max_beam} (--max-beam)")
        prefix = request.prefix if request.prefix and request.prefix.strip() else ""
        if prefix and (problems := text_problems(prefix, limits)):  # a text's size and character checks
            raise HTTPException(422, "; ".join(problem.replace("text", "prefix", 1) for problem in problems))
        if request.replace_unk and not model.translator.has_attention:
            raise HTTPException(
                422,
                f"model {model.name!r} has no attention, and replace_unk copies the most attended source token: "
                "leave replace_unk out for this model",
            )
        constraints = tuple(request.constraints or ())
        if constraints and request.strategy != "beam":
            raise HTTPException(422, f'lexical constraints need "strategy": "beam", not "{request.strategy}"')
        for index, phrase in enumerate(constraints):
            if problems := text_problems(phrase, limits):
                raise HTTPException(422, "; ".join(p.replace("text", f"constraints[{index}]", 1) for p in problems))
        try:
            options = decoding_options(request)
            chosen = model.translator.direction(to=request.to)
            direction = None if chosen is None else str(chosen)
            if prefix:
                model.check_prefix(texts, prefix, options, direction)
            if constraints:
                model.check_constraints(texts, constraints, prefix, options)
        except ValueError as error:
            raise HTTPException(422, str(error).replace("--direction/--to", "the to field")) from error
        # Only what the request asks for: also what the response echoes under "options".
        extra: dict[str, Any] = {
            **({"prefix": prefix} if prefix else {}),
            **({"replace_unk": True} if request.replace_unk else {}),
            **({"direction": direction} if direction else {}),
            **({"constraints": list(constraints)} if constraints else {}),
        }
        key = ("translate", model.name, options, request.attention, prefix, request.replace_unk, direction, constraints)
        runner = partial(model.run, options=(options, request.attention), **extra)
        translations = await run(key, runner, texts)
        return {
            "model": model.name,
            "options": {**options.describe(), **extra},
            "translations": [_translation(t, request.attention) for t in translations],
        }

    @app.post("/classify", response_model=ClassifyResponse)
    async def classify(request: ClassifyRequest) -> dict[str, Any]:
        """Label, probability of every label, and the attention weight of every token."""
        model: ServedClassifier = pick(request.model, ServedClassifier, "classification")
        texts = check_texts(request.text)
        predictions = await run(("classify", model.name), model.run, texts)
        return {
            "model": model.name,
            "results": [
                {
                    "text": normalize_text(text),
                    "label": p.label,
                    "probability": round(p.probability, 6),
                    "probabilities": {label: round(q, 6) for label, q in zip(model.labels, p.probabilities)},
                    "tokens": p.tokens,
                    "attention": [round(w, 4) for w in p.weights],
                    "truncated": p.truncated,
                }
                for text, p in zip(texts, predictions)
            ],
        }

    return app


_RELEVANT = {
    "greedy": (),
    "beam": ("beam_size", "length_penalty", "coverage_penalty"),
    "sample": ("temperature", "top_k", "top_p", "seed"),
}


def decoding_options(request: TranslateRequest) -> DecodingOptions:
    """The request's decoding options, with the fields its strategy ignores left at their
    defaults, so that requests which decode alike share a batch key.

    :raises ValueError: options that do not go together (n-best with greedy search, ...).
    """
    fields = (
        "strategy",
        "n_best",
        "max_len_ratio",
        "no_repeat_ngram_size",
        "repetition_penalty",
        *_RELEVANT[request.strategy],
    )
    return DecodingOptions(**{name: getattr(request, name) for name in fields})


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None


def _translation(translation, attention: bool) -> dict[str, Any]:
    hypotheses = []
    for hyp in translation.hypotheses:
        item = {"text": hyp.text, "score": _finite(round(hyp.score, 4)), "log_prob": _finite(round(hyp.log_prob, 4))}
        if attention and hyp.attention is not None:
            item["tokens"] = hyp.pieces
            item["attention"] = [[round(w, 4) for w in row] for row in hyp.attention.tolist()]
        hypotheses.append(item)
    result = {
        "source": translation.source,
        "text": translation.text,
        "truncated": translation.truncated,
        "hypotheses": hypotheses,
    }
    if attention:
        result["source_tokens"] = translation.source_pieces
    return result
