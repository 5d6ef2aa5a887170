"""Bad input and interruptions: one clear line, a non-zero exit, and no lost work."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

import data
import mnist_99_4
from model import Net


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "mnist_99_4.py", *args], capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(result, code, *fragments):
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-5"], "--batch-size"),
    (["--device", "tpu"], "--device"),
    (["--device", "cuda"], "no CUDA GPU"),
    (["--val", "60000"], "--val"),
    (["--dropout", "1"], "--dropout"),
    (["--teacher-width", "-2"], "--teacher-width"),
    (["--teacher-width", "4", "--distill-temperature", "0"], "--distill-temperature"),
    (["--teacher-weights", "no-such-model.pt"], "no such checkpoint file"),
    (["--teacher-weights", "mnist_net.pt,no-such-model.pt"], "no such checkpoint file"),
    (["--teacher-width", "4", "--teacher-weights", "mnist_net.pt"], "one teacher at a time"),
    (["--bn-momentum", "1.5"], "--bn-momentum"),
    (["--momentum", "0.99"], "--momentum"),
    (["--elastic", "-1"], "--elastic"),
    (["--thickness", "1.5"], "--thickness"),
    (["--channels", "4,4,4,8,8,8,8,8,8"], "takes 5 channel counts"),
    (["--channels", "8,10,16,16,16", "--body", "three-stage"], "takes 9 channel counts"),
    (["--channels", "8,10,16,16"], "--channels"),
    (["--body", "three-stage", "--stem", "pool"], "own first conv"),
    (["--body", "late-pool", "--stem", "stride"], "own first conv"),
    (["--out", "/proc/cannot-write-here"], "cannot write"),
    (["--resume", "no-such-checkpoint.pt"], "no such file"),
])
def test_bad_training_arguments_are_refused_before_any_work(args, fragment, tmp_path):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = run_cli(*args, "--data-dir", str(tmp_path / "untouched"))
    assert_one_line_error(result, 2, fragment)
    assert not (tmp_path / "untouched").exists()  # no data fetched: refused first


def test_data_that_cannot_be_verified_names_the_file(tmp_path, monkeypatch, capsys):
    def broken_mirror(data_dir, log):
        data.write_atomically(data.raw_dir(data_dir) / "train-labels-idx1-ubyte", b"not mnist")
    monkeypatch.setattr(data, "SOURCES", {"torchvision": broken_mirror, "pypi": broken_mirror})

    code = mnist_99_4.main(["--dry-run", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and "train-labels-idx1-ubyte" in error


@pytest.mark.parametrize("average", [[], ["--ema", "0.9"], ["--teacher-width", "4"],
                                     ["--teacher-weights", str(mnist_99_4.SHIPPED_WEIGHTS)]],
                         ids=["weights", "weight-average", "teacher", "frozen-teacher"])
def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(average, tmp_path, mnist_dir, monkeypatch):
    common = ["--dry-run", "--epochs", "3", "--device", "cpu", "--seed", "5", "--data-dir", mnist_dir, *average]
    assert mnist_99_4.main(common + ["--out", str(tmp_path / "straight")]) == 0

    real_epoch, calls = mnist_99_4.train_one_epoch, []

    def interrupted_in_second_epoch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(mnist_99_4, "train_one_epoch", interrupted_in_second_epoch)
    assert mnist_99_4.main(common + ["--out", str(tmp_path / "stopped")]) == 130
    checkpoint = tmp_path / "stopped" / "checkpoint.pt"
    assert torch.load(checkpoint, weights_only=False)["epoch"] == 2
    monkeypatch.setattr(mnist_99_4, "train_one_epoch", real_epoch)

    assert mnist_99_4.main(["--resume", str(checkpoint)]) == 0

    def final(name):
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        return metrics["test_accuracy"], [row["test_loss"] for row in metrics["history"]]

    assert final("stopped") == final("straight")
    assert not checkpoint.exists()


def test_ctrl_c_saves_a_checkpoint_and_prints_how_to_resume(tmp_path, mnist_dir):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "mnist_99_4.py", "--dry-run", "--epochs", "1000", "--device", "cpu",
         "--data-dir", mnist_dir, "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell starts background jobs with SIGINT ignored, and Python keeps
        # it ignored; a user's Ctrl-C reaches a foreground program, so restore that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in process.stdout:  # wait until training is under way
        if line.strip().startswith("2 "):
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert f"--resume {out / 'checkpoint.pt'}" in stdout
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] >= 2


def test_predict_reports_each_bad_file_and_still_reads_the_good_ones(tmp_path, mnist_dir):
    from PIL import Image
    images, _ = data.load_mnist(mnist_dir, train=False)
    good = tmp_path / "seven.png"
    Image.fromarray(images[0].numpy()).save(good)
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is text")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    missing = tmp_path / "missing.png"

    result = run_cli("predict", str(missing), str(not_image), str(blank), str(good))

    assert result.returncode == 1
    assert result.stdout.strip().startswith(f"{good}: 7 (")
    errors = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(errors) == 3
    assert errors[0].startswith(f"{missing}: error: No such file")
    assert errors[1].startswith(f"{not_image}: error: not an image")
    assert errors[2].startswith(f"{blank}: error: no ink")


def test_evaluate_explains_what_is_wrong_with_a_checkpoint(tmp_path):
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(os.urandom(2000))
    other_model = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(784, 10).state_dict(), other_model)
    altered = tmp_path / "altered.pt"
    state = Net().state_dict()
    state["classifier.weight"] = torch.zeros(10, 3, 1, 1)
    torch.save(state, altered)

    assert_one_line_error(run_cli("evaluate", "--checkpoint", str(random_bytes)), 2, "not a PyTorch checkpoint")
    assert_one_line_error(run_cli("evaluate", "--checkpoint", str(other_model)), 2, "not the weights of")
    assert_one_line_error(run_cli("evaluate", "--checkpoint", str(altered)), 2, "different architecture")
    assert_one_line_error(run_cli("evaluate", "--checkpoint", str(tmp_path / "none.pt")), 2, "no such")


def test_weights_of_another_width_load_at_their_width(tmp_path):
    path = tmp_path / "narrow.pt"
    torch.save(Net(width=5).state_dict(), path)
    assert mnist_99_4.load_trained_model(path, torch.device("cpu")).width == 5


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    mnist_99_4.save_atomically({"version": 1}, path)

    def crash_half_way(obj, f):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(OSError):
        mnist_99_4.save_atomically({"version": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert list(tmp_path.iterdir()) == [path]


class RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_refuses_a_file_that_would_run_code(tmp_path):
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"args": {}, "epoch": 1, "model": {}, "rng": RunsCodeWhenUnpickled(marker)}, checkpoint)

    result = run_cli("--resume", str(checkpoint))

    assert_one_line_error(result, 2, "not a checkpoint written by this program")
    assert not marker.exists()


@pytest.fixture
def interrupted_run(tmp_path, mnist_dir, monkeypatch):
    """The checkpoint of a dry run stopped by Ctrl-C in its first epoch."""
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(mnist_99_4, "train_one_epoch", interrupted)
    out = tmp_path / "run"
    assert mnist_99_4.main(["--dry-run", "--epochs", "2", "--data-dir", mnist_dir, "--out", str(out)]) == 130
    monkeypatch.undo()
    return out / "checkpoint.pt"


@pytest.mark.parametrize("flags, fragment", [
    (["--batch-size", "64"], "--batch-size 64 would change the run"),
    (["--seed", "9"], "--seed 9 would change the run"),
    (["--out", "elsewhere"], "leave out --out"),
])
def test_resume_refuses_a_flag_that_would_change_the_run(interrupted_run, flags, fragment):
    assert_one_line_error(run_cli("--resume", str(interrupted_run), *flags), 2, fragment)


def test_resume_applies_the_device_and_says_so(interrupted_run):
    result = run_cli("--resume", str(interrupted_run), "--device", "cpu", timeout=300)
    assert result.returncode == 0, result.stderr
    log = (interrupted_run.parent / "train.log").read_text()
    assert "Resuming with --device cpu as asked" in log and "Resumed from" in log


def test_a_failed_compile_is_one_line_and_keeps_the_checkpoint(tmp_path, mnist_dir, monkeypatch, capsys):
    from torch._dynamo.exc import TorchDynamoException

    class FailsToCompile(torch.nn.Module):  # what torch.compile gives where it cannot build kernels
        def forward(self, x):
            raise TorchDynamoException("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: FailsToCompile())
    out = tmp_path / "run"

    code = mnist_99_4.main(["--dry-run", "--compile", "--data-dir", mnist_dir, "--out", str(out)])

    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: --compile: torch.compile failed") and "--resume" in error
    assert (out / "checkpoint.pt").exists()
