"""Structural re-parameterization (benchmarks/reparam.py): trained with branches, saved as a plain Net."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import reparam  # noqa: E402
import use  # noqa: E402
from model import Net, count_parameters  # noqa: E402


@pytest.mark.parametrize("kind", sorted(reparam.KINDS))
@pytest.mark.parametrize("layout", [dict(), dict(channels=[8, 10, 12, 12, 14], activation="gelu", dropout=0.0)])
def test_the_folded_net_computes_what_the_branched_one_does_in_evaluation_mode(kind, layout):
    torch.manual_seed(0)
    branched = reparam.ReparamNet(kind, **layout)
    with torch.no_grad():  # statistics and scales far from their start, as after training
        for module in branched.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    branched.eval()
    plain = branched.fold()
    assert type(plain) is Net and count_parameters(plain) == count_parameters(Net(**layout))
    assert count_parameters(branched) > count_parameters(plain)
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), branched(x), rtol=1e-4, atol=1e-5)


def test_a_branch_changes_the_function_it_trains():
    """The same network with its branch kernels zeroed computes something else: the branches are used.
    (Comparing with a fresh Net, as this test once did, passes whatever the branches do.)"""
    torch.manual_seed(0)
    branched = reparam.ReparamNet("acnet").eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        with_branches = branched(x)
        for conv in (m for m in branched.modules() if isinstance(m, reparam.BranchedConv)):
            for kernel in conv.branches:
                kernel.zero_()
        assert not torch.allclose(branched(x), with_branches)


@pytest.mark.slow
def test_a_run_saves_the_folded_weights_that_evaluate_loads(tmp_path, mnist_dir):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "benchmarks/reparam.py", "--reparam", "acnet", "--dry-run",
                             "--data-dir", mnist_dir, "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Folded into a plain Net: 7,142 parameters" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"] == 7142 and metrics["trained_params"] > 7142
    assert metrics["layout"]["reparam"] == "acnet"
    assert metrics["fingerprint"] == reparam.fingerprint(["--reparam", "acnet", "--dry-run", "--data-dir", mnist_dir])
    assert use.load_trained_model(out / "model.pt", torch.device("cpu")).channels == [8, 10, 16, 16, 16]


@pytest.mark.slow
def test_a_missing_kind_is_one_line():
    result = subprocess.run([sys.executable, "benchmarks/reparam.py", "--dry-run"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0 and result.stderr.strip().startswith("error: --reparam")
