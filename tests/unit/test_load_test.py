"""``scripts/load_test.py``: its percentiles, its refusal of other hosts, and one level of
clients run against the app in-process (counts and fields, not speed)."""

from __future__ import annotations

import asyncio
import sys

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from conftest import REPO  # noqa: E402
from nmt.serve.app import create_app  # noqa: E402
from nmt.serve.batcher import Batcher  # noqa: E402
from nmt.serve.models import ModelSpec, load_models  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
import load_test  # noqa: E402


def test_percentiles_interpolate_between_order_statistics():
    values = [4.0, 1.0, 3.0, 2.0]
    assert load_test.percentile(values, 50) == 2.5
    assert load_test.percentile(values, 0) == 1.0 and load_test.percentile(values, 100) == 4.0
    assert load_test.percentile(values, 99) == pytest.approx(3.97)
    assert load_test.percentile([7.0], 99) == 7.0


def test_only_this_machine_is_load_tested():
    assert load_test.check_loopback("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert load_test.check_loopback("http://localhost:8000") == "http://localhost:8000"
    with pytest.raises(ValueError, match="not on this machine"):
        load_test.check_loopback("http://10.1.2.3:8000")
    with pytest.raises(ValueError, match="not an http:// URL"):
        load_test.check_loopback("ftp://127.0.0.1")


def test_a_level_sends_the_requests_it_is_asked_for_and_reports_every_field(tiny_classification_checkpoint):
    models = load_models([ModelSpec.parse(f"spam={tiny_classification_checkpoint}")])
    app = create_app(models, batcher=Batcher(max_batch=8, max_wait=0.002))
    bodies = [{"text": text, "model": "spam"} for text in load_test.CLASSIFY_TEXTS]
    row = asyncio.run(
        load_test.run_level(
            "http://test",
            "/classify",
            bodies,
            clients=4,
            total=20,
            max_seconds=120,
            transport=httpx.ASGITransport(app=app),
        )
    )
    assert row["clients"] == 4 and row["requests"] == row["ok"] == 20
    assert row["rejected_503"] == 0 and row["errors"] == 0
    assert 0 < row["p50_ms"] <= row["p99_ms"] and row["requests_per_second"] > 0
    assert 1 <= row["mean_batch"] <= 8 and row["server_cpu_ms_per_request"] >= 0
