"""The decoders' log-softmax: PyTorch's kernel with flush-to-zero, equal to the clamped one."""

import pytest
import torch

from nmt.ops.softmax import flushed_log_softmax, log_softmax


def _logits_with_far_tails(rows: int = 6, vocab: int = 500) -> torch.Tensor:
    """Logits whose rows hold values far below the row maximum (exp would be subnormal)."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(rows, vocab, generator=generator) * 40
    logits[0, :10] = 200.0  # a confident row: almost everything below max - 87
    logits[1] = 0.0  # a uniform row
    logits[2, 1:] = float("-inf")  # masked tokens, one left
    return logits


def test_flushed_log_softmax_equals_the_clamped_one_and_pytorch():
    logits = _logits_with_far_tails()
    expected = torch.log_softmax(logits.double(), dim=-1)
    for result in (flushed_log_softmax(logits), log_softmax(logits)):
        assert result.dtype == torch.float32
        finite = torch.isfinite(expected)
        assert torch.equal(torch.isfinite(result), finite)
        torch.testing.assert_close(result[finite].double(), expected[finite], rtol=0, atol=2e-5)
    assert flushed_log_softmax(logits)[2, 0] == 0.0


def test_flushed_log_softmax_promotes_half_precision_and_clears_the_flag_after():
    logits = _logits_with_far_tails().to(torch.bfloat16)
    result = flushed_log_softmax(logits)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, torch.log_softmax(logits.float(), dim=-1), rtol=0, atol=1e-5)
    # flush-to-zero is off again afterwards: the smallest subnormal survives a multiplication
    tiny = torch.tensor([torch.finfo(torch.float32).tiny], dtype=torch.float32)
    assert float(tiny * 0.5) > 0.0


@pytest.mark.parametrize("vocab", [7, 4000])
def test_flushed_log_softmax_rows_sum_to_one(vocab):
    logits = torch.randn(3, vocab) * 30
    assert torch.allclose(flushed_log_softmax(logits).exp().sum(-1), torch.ones(3), atol=1e-5)


def smallest_subnormal_survives() -> bool:
    return bool((torch.tensor([1e-45]) * 1.0).item() > 0.0)


def test_kept_flushing_outlives_the_decoders_block_until_stopped():
    from nmt.ops.softmax import keep_flushing_subnormals, stop_flushing_subnormals

    if not keep_flushing_subnormals():
        pytest.skip("this CPU has no flush-to-zero flags")
    flushed_log_softmax(torch.randn(2, 5))  # its block would clear the flags
    assert not smallest_subnormal_survives()
    stop_flushing_subnormals()
    assert smallest_subnormal_survives()


def test_training_leaves_subnormals_flushed_on_its_thread(tiny_corpus, tmp_path):
    """Validation decodes with the decoders' flushed softmax in between: the flags survive it."""
    from conftest import compose_config, tiny_overrides
    from nmt.cli.train import train

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero flags")
    assert smallest_subnormal_survives()
    overrides = ["trainer.max_steps=4", "trainer.val_check_interval=2", "test_after_training=false"]
    train(compose_config(tiny_overrides(tiny_corpus, tmp_path / "run", *overrides)))
    assert not smallest_subnormal_survives()


@pytest.mark.parametrize(("pool_first", "missed"), [(False, 0), (True, 1)])
def test_intra_op_threads_started_before_the_flags_are_counted_and_named(pool_first, missed):
    """Threads inherit the flags when they start after them; older ones do not, and are reported."""
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from nmt.ops.softmax import keep_flushing_subnormals, threads_not_flushing\n"
        "torch.set_num_threads(2)\n"
        f"if {pool_first}: (torch.ones(1_000_000) * 2.0).sum()  # a parallel op starts the thread pool\n"
        "if not keep_flushing_subnormals(): print('no flags'); raise SystemExit\n"
        "print(threads_not_flushing())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    if result.stdout.strip() == "no flags":
        pytest.skip("this CPU has no flush-to-zero flags")
    assert int(result.stdout) == missed
    warned = "1 of 2 intra-op threads started before flush-to-zero was set" in result.stderr
    assert warned == bool(missed) and ("threads=1" in result.stderr) == bool(missed)
