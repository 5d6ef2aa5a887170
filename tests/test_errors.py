"""Bad input and interruptions: one clear line, a non-zero exit, and no lost work."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import data
import mnist_99_4
import runs
import use
from model import Net

ROOT = Path(__file__).resolve().parent.parent

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


def assert_one_line_error_in_process(code, capsys, *fragments):
    """As assert_one_line_error, for main() called in this process."""
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "two"], "--epochs"),
    (["--batch-size", "-5"], "--batch-size"),
    (["--max-lr", "0"], "--max-lr"),
    (["--device", "tpu"], "--device"),
    (["--device", "cuda"], "no CUDA GPU"),
    (["--val", "60000"], "--val"),
    (["--dropout", "1"], "--dropout"),
    (["--ema", "1"], "--ema"),
    (["--plain-epochs", "5", "--epochs", "3"], "--plain-epochs"),
    (["--threads", "0"], "--threads"),
    (["--teacher-weights", "no-such-model.pt"], "no such checkpoint file"),
    (["--teacher-weights", "mnist_net.pt,no-such-model.pt"], "no such checkpoint file"),
    (["--channels", "4,4,4,8,8,8,8,8,8"], "--channels"),
    (["--channels", "8,10,16,16"], "--channels"),
    (["--stem", "stride"], "--stem"),
    (["--elastic", "1"], "unrecognized arguments: --elastic"),
    (["--out", "/proc/cannot-write-here"], "cannot write"),
    (["--resume", "no-such-checkpoint.pt"], "no such file"),
])
def test_bad_training_arguments_are_refused_before_any_work(args, fragment, tmp_path, capsys):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    code = mnist_99_4.main([*args, "--data-dir", str(tmp_path / "untouched")])
    assert_one_line_error_in_process(code, capsys, fragment)
    assert not (tmp_path / "untouched").exists()  # no data fetched: refused first


@pytest.mark.slow
def test_a_bad_flag_from_the_shell_is_one_line_too():
    assert_one_line_error(run_cli("--epochs", "0"), 2, "--epochs")


def test_data_that_cannot_be_verified_names_the_file(tmp_path, monkeypatch, capsys):
    def broken_mirror(data_dir, log):
        data.write_atomically(data.raw_dir(data_dir) / "train-labels-idx1-ubyte", b"not mnist")
    monkeypatch.setattr(data, "SOURCES", {"torchvision": broken_mirror, "pypi": broken_mirror})

    code = mnist_99_4.main(["--dry-run", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and "train-labels-idx1-ubyte" in error


@pytest.mark.parametrize("average", [["--ema", "0"], [], ["--teacher-weights", str(use.SHIPPED_WEIGHTS)]],
                         ids=["weights", "weight-average", "teacher"])
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


def test_a_run_stopped_between_an_epochs_line_and_the_next_save_logs_each_epoch_once(tmp_path, mnist_dir,
                                                                                     monkeypatch):
    real_save, saves = runs.save_checkpoint, []

    def stopped_in_second_save(*args):
        saves.append(1)
        if len(saves) == 2:  # epoch 1 is logged; the checkpoint on disk is still the one before it
            raise KeyboardInterrupt
        return real_save(*args)

    monkeypatch.setattr(runs, "save_checkpoint", stopped_in_second_save)
    out = tmp_path / "run"
    common = ["--dry-run", "--epochs", "2", "--device", "cpu", "--data-dir", mnist_dir, "--out", str(out)]
    assert mnist_99_4.main(common) == 130
    monkeypatch.setattr(runs, "save_checkpoint", real_save)
    assert mnist_99_4.main(["--resume", str(out / "checkpoint.pt")]) == 0
    epoch_lines = [line.split()[0] for line in (out / "train.log").read_text().splitlines()
                   if len(line.split()) == 6 and line.split()[0].isdigit()]
    assert epoch_lines == ["1", "2"]


@pytest.mark.slow
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


@pytest.mark.slow
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
    cut_short = tmp_path / "upload.jpg"  # a photo whose upload broke off halfway
    Image.fromarray(images[0].numpy()).convert("RGB").resize((600, 600)).save(cut_short, "JPEG")
    cut_short.write_bytes(cut_short.read_bytes()[:cut_short.stat().st_size // 2])

    result = run_cli("predict", str(missing), str(not_image), str(blank), str(cut_short), str(good))

    assert result.returncode == 1
    assert result.stdout.strip().startswith(f"{good}: 7 (")
    errors = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(errors) == 4
    assert errors[0].startswith(f"{missing}: error: No such file")
    assert errors[1].startswith(f"{not_image}: error: not an image")
    assert errors[2].startswith(f"{blank}: error: no ink")
    assert errors[3].startswith(f"{cut_short}: error: a damaged or cut-short image file")


def test_evaluate_explains_what_is_wrong_with_a_checkpoint(tmp_path, capsys):
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(os.urandom(2000))
    other_model = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(784, 10).state_dict(), other_model)
    altered = tmp_path / "altered.pt"
    state = Net().state_dict()
    state["classifier.weight"] = torch.zeros(10, 3, 1, 1)
    torch.save(state, altered)

    for checkpoint, fragment in ((random_bytes, "not a PyTorch checkpoint"), (other_model, "not the weights of"),
                                 (altered, "different architecture"), (tmp_path / "none.pt", "no such")):
        assert_one_line_error_in_process(mnist_99_4.main(["evaluate", "--checkpoint", str(checkpoint)]), capsys,
                                         fragment)


def test_damaged_weights_are_refused_in_one_line(tmp_path, capsys):
    not_finite = tmp_path / "nan.pt"
    state = Net().state_dict()
    state["classifier.weight"][0] = float("nan")
    torch.save(state, not_finite)
    flipped = tmp_path / "mnist_net.pt"  # the shipped weights and their checksum, 64 bytes flipped
    weights = bytearray(use.SHIPPED_WEIGHTS.read_bytes())
    weights[20000:20064] = bytes(255 - b for b in weights[20000:20064])
    flipped.write_bytes(bytes(weights))
    (tmp_path / "mnist_net.pt.sha256").write_text(
        use.SHIPPED_WEIGHTS.with_name("mnist_net.pt.sha256").read_text())
    run = tmp_path / "run"  # a run's model.pt against the SHA-256 its metrics.json recorded
    run.mkdir()
    (run / "model.pt").write_bytes(bytes(weights))
    (run / "metrics.json").write_text(json.dumps({"model_sha256": hashlib.sha256(
        use.SHIPPED_WEIGHTS.read_bytes()).hexdigest()}))

    for checkpoint, fragment in ((not_finite, "not finite"), (flipped, "SHA-256 differs"),
                                 (run / "model.pt", "recorded in")):
        assert_one_line_error_in_process(mnist_99_4.main(["predict", "--checkpoint", str(checkpoint),
                                                          "images/samples/typed-3.png"]), capsys, "damaged", fragment)


def test_the_shipped_weights_match_their_recorded_sha256():
    recorded = use.SHIPPED_WEIGHTS.with_name("mnist_net.pt.sha256").read_text().split()
    assert recorded == [hashlib.sha256(use.SHIPPED_WEIGHTS.read_bytes()).hexdigest(), "mnist_net.pt"]


@pytest.mark.slow
def test_predict_on_a_pipe_or_a_folder_says_so_and_reads_the_rest(tmp_path):
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    result = run_cli("predict", str(pipe), str(tmp_path), "images/samples/typed-3.png")
    assert result.returncode == 1 and result.stdout.startswith("images/samples/typed-3.png: 3 (")
    assert [line.split(": error: ")[1] for line in result.stderr.splitlines()] == [
        "not a regular file (a folder, a pipe or a device)"] * 2


@pytest.mark.parametrize("code", [28, 30], ids=["full disk", "read-only disk"])  # ENOSPC, EROFS
def test_show_crop_on_a_failing_disk_is_said_on_that_files_line(tmp_path, monkeypatch, capsys, code):
    import shutil

    shutil.copy("images/samples/typed-3.png", tmp_path / "a.png")
    shutil.copy("images/samples/typed-4.png", tmp_path / "b.png")

    def failing_disk(path, payload):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(data, "write_atomically", failing_disk)
    assert mnist_99_4.main(["predict", "--show-crop", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(os.strerror(code) in line for line in lines)
    assert lines[1].startswith(f"{tmp_path / 'b.png'}: 4 (")


@pytest.mark.slow
def test_a_negative_error_count_is_refused():
    assert_one_line_error(run_cli("evaluate", "--max-errors", "-1"), 2, "--max-errors", "at least 0")


def test_weights_of_another_width_load_at_their_width(tmp_path):
    path = tmp_path / "narrow.pt"
    torch.save(Net(width=5).state_dict(), path)
    assert use.load_trained_model(path, torch.device("cpu")).width == 5


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    runs.save_atomically({"version": 1}, path)

    def crash_half_way(obj, f):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(OSError):
        runs.save_atomically({"version": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert list(tmp_path.iterdir()) == [path]


class RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.slow
def test_resume_refuses_a_file_that_would_run_code(tmp_path):
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"args": {}, "epoch": 1, "model": {}, "rng": RunsCodeWhenUnpickled(marker)}, checkpoint)

    assert_one_line_error(run_cli("--resume", str(checkpoint)), 2, "not a checkpoint written by this program")
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
def test_resume_refuses_a_flag_that_would_change_the_run(interrupted_run, flags, fragment, capsys):
    capsys.readouterr()
    assert_one_line_error_in_process(mnist_99_4.main(["--resume", str(interrupted_run), *flags]), capsys, fragment)


@pytest.mark.parametrize("damage, fragment", [
    (lambda state: state.pop("optimizer"), "not a whole checkpoint: it has no 'optimizer'"),
    (lambda state: state["model"].update({"classifier.weight": torch.zeros(3)}), "does not fit this run (size mismatch"),
], ids=["a part missing", "a part of the wrong shape"])
def test_resume_refuses_a_damaged_checkpoint_in_one_line_and_keeps_it(interrupted_run, damage, fragment, capsys):
    state = torch.load(interrupted_run, weights_only=False)
    damage(state)
    torch.save(state, interrupted_run)
    saved = interrupted_run.read_bytes()
    capsys.readouterr()
    assert_one_line_error_in_process(mnist_99_4.main(["--resume", str(interrupted_run)]), capsys, fragment)
    assert interrupted_run.read_bytes() == saved


@pytest.mark.slow
def test_resume_applies_the_device_and_says_so(interrupted_run):
    result = run_cli("--resume", str(interrupted_run), "--device", "cpu", timeout=300)
    assert result.returncode == 0, result.stderr
    log = (interrupted_run.parent / "train.log").read_text()
    assert "Resuming with --device cpu as asked" in log and "Resumed from" in log
    assert "numbers may differ slightly" in log  # another device or thread count sums in another order


@pytest.mark.slow
def test_resume_on_the_cpu_continues_a_run_begun_on_a_gpu(interrupted_run):
    """A CUDA generator's state (16 bytes) does not fit a CPU generator: the batches are drawn afresh."""
    checkpoint = torch.load(interrupted_run, weights_only=True)
    checkpoint["rng"]["generator"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA generator's state
    checkpoint["rng"]["device"] = "cuda"
    checkpoint["args"]["device"] = "cuda"
    torch.save(checkpoint, interrupted_run)
    result = run_cli("--resume", str(interrupted_run), "--device", "cpu", timeout=300)
    assert result.returncode == 0, result.stderr
    log = (interrupted_run.parent / "train.log").read_text()
    assert "began on cuda and goes on on cpu" in log and "Dry run done" in log
    assert len(json.loads((interrupted_run.parent / "metrics.json").read_text())["history"]) == 2


def test_export_to_a_folder_or_nowhere_is_one_line(tmp_path, capsys):
    assert_one_line_error_in_process(mnist_99_4.main(["export", "--onnx", f"{tmp_path}/"]), capsys, "a folder")
    assert_one_line_error_in_process(mnist_99_4.main(["export", "--onnx", str(tmp_path)]), capsys, "a folder")
    assert_one_line_error_in_process(mnist_99_4.main(["export", "--onnx", str(tmp_path / "no" / "m.onnx")]), capsys,
                                     "no folder")


def test_a_data_dir_that_cannot_be_written_is_refused_before_any_download(monkeypatch, capsys, tmp_path):
    def must_not_run(data_dir, log):
        raise AssertionError("a download was started")
    monkeypatch.setattr(data, "SOURCES", {"torchvision": must_not_run, "pypi": must_not_run})
    code = mnist_99_4.main(["--dry-run", "--data-dir", "/proc/no-such-place", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: cannot write MNIST into /proc/no-such-place")


def test_a_folder_holding_an_interrupted_run_is_refused_with_the_way_on(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"the interrupted run's state")
    code = mnist_99_4.main(["--out", str(out), "--dry-run"])
    assert_one_line_error_in_process(code, capsys, "interrupted run", f"--resume {out / 'checkpoint.pt'}",
                                     "another --out")
    assert (out / "checkpoint.pt").read_bytes() == b"the interrupted run's state"


def test_two_runs_cannot_share_a_folder_but_a_dead_runs_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / runs.LOCK_NAME).write_text(str(other.pid))
        code = mnist_99_4.main(["--out", str(out), "--dry-run"])
        assert_one_line_error_in_process(code, capsys, f"another run (process {other.pid})", "another --out")
    finally:
        other.kill()
        other.wait()
    assert runs.output_folder(str(out)) == out  # the lock of a process that has ended is stale
    assert (out / runs.LOCK_NAME).read_text() == str(os.getpid())


def test_a_full_disk_is_found_before_training_not_after(tmp_path, monkeypatch, capsys):
    import errno

    def full_disk(descriptor):  # what a full disk says when written data has to reach it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    code = mnist_99_4.main(["--dry-run", "--out", str(tmp_path / "run")])
    assert_one_line_error_in_process(code, capsys, "cannot write to the output folder", "No space left")
    assert list((tmp_path / "run").iterdir()) == []  # the probe is gone, nothing was started


def test_a_failed_write_on_a_read_only_disk_reports_its_own_error(tmp_path, monkeypatch):
    import errno

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "fsync", lambda descriptor: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    monkeypatch.setattr(type(tmp_path), "unlink", read_only)  # the cleanup fails too
    with pytest.raises(OSError) as error:
        data.write_atomically(tmp_path / "model.pt", b"weights")
    assert error.value.errno == errno.ENOSPC  # the first error, not the cleanup's


def test_half_written_files_of_a_killed_run_are_cleared_when_the_folder_is_next_used(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    debris = out / f".checkpoint.pt.{ended.pid}.tmp"  # what kill -9 during a save leaves
    debris.write_bytes(b"half a checkpoint")
    keep = out / "notes.txt"
    keep.write_text("not the run's")
    runs.output_folder(str(out))
    assert not debris.exists() and keep.exists()


def test_ctrl_c_during_the_first_save_gives_no_resume_command_for_a_missing_file(tmp_path, mnist_dir, monkeypatch,
                                                                                  capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "save_checkpoint", interrupted)
    out = tmp_path / "run"
    assert mnist_99_4.main(["--dry-run", "--data-dir", mnist_dir, "--out", str(out)]) == 130
    said = capsys.readouterr().out
    assert "Nothing was saved yet." in said and "--resume" not in said


def test_ctrl_c_while_the_results_are_saved_says_how_to_resume_and_the_resume_finishes(tmp_path, mnist_dir,
                                                                                       monkeypatch, capsys):
    real_finish = runs.finish_run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "finish_run", interrupted)
    out = tmp_path / "run"
    assert mnist_99_4.main(["--dry-run", "--epochs", "2", "--data-dir", mnist_dir, "--out", str(out)]) == 130
    said = capsys.readouterr().out
    assert ("Interrupted while saving the results. The state before epoch 2 is saved; continue with:\n"
            f"  python mnist_99_4.py --resume {out / 'checkpoint.pt'}") in said
    monkeypatch.setattr(runs, "finish_run", real_finish)
    assert mnist_99_4.main(["--resume", str(out / "checkpoint.pt")]) == 0
    assert (out / "model.pt").is_file() and not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("delay", [0.2, 0.5, 1.0])
@pytest.mark.slow
def test_ctrl_c_while_the_program_starts_ends_quietly(delay):
    """Ctrl-C while torch is still loading, or just after: exit 130 and no traceback either way."""
    started = subprocess.Popen([sys.executable, "mnist_99_4.py", "evaluate"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,  # as from a terminal, where Ctrl-C is not ignored
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(delay)
    started.send_signal(signal.SIGINT)
    _, errors = started.communicate(timeout=60)
    assert started.returncode == 130 and "Traceback" not in errors


@pytest.fixture
def failing_disk(tmp_path, monkeypatch):
    """A folder whose disk refuses new writes, as a full or read-only one does: fail(errno) turns it on.
    Reads, and writes elsewhere, go on as usual."""
    import builtins
    import types

    disk, failure = tmp_path / "disk", []
    disk.mkdir()
    real_open, real_os_open = builtins.open, os.open

    def refused(path, writing):
        return failure and writing and str(path).startswith(str(disk))

    def checked_open(file, mode="r", *args, **kwargs):
        if refused(file, any(c in mode for c in "wax+")):
            raise OSError(failure[0], os.strerror(failure[0]), str(file))
        return real_open(file, mode, *args, **kwargs)

    def checked_os_open(path, flags, *args, **kwargs):
        if refused(path, flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            raise OSError(failure[0], os.strerror(failure[0]), str(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", checked_open)
    monkeypatch.setattr(os, "open", checked_os_open)
    return types.SimpleNamespace(path=disk, fail=failure.append)  # fail(errno.ENOSPC), fail(errno.EROFS)


DISK_ERRORS = pytest.mark.parametrize("code", [28, 30], ids=["full disk", "read-only disk"])  # ENOSPC, EROFS


def one_error_line(capsys, code, *fragments):
    captured = capsys.readouterr()
    lines = [line.rsplit("\r", 1)[-1].strip() for line in captured.err.split("\n")]  # after any progress bar
    lines = [line for line in lines if line]
    assert "Traceback" not in captured.err and all(line.startswith("error: ") for line in lines), captured.err
    assert all(fragment in captured.err for fragment in (os.strerror(code), *fragments)), captured.err
    return lines, captured.out


@DISK_ERRORS
def test_evaluate_on_a_failing_disk_prints_its_figures_then_one_line_a_picture(failing_disk, mnist_dir, code, capsys):
    failing_disk.fail(code)
    pictures = [str(failing_disk.path / "confusion.png"), str(failing_disk.path / "errors.png")]
    assert mnist_99_4.main(["evaluate", "--data-dir", mnist_dir, "--confusion-png", pictures[0],
                            "--errors-png", pictures[1]]) == 1
    lines, out = one_error_line(capsys, code, *pictures)
    assert len(lines) == 2 and "Test accuracy: " in out  # the figures computed are all printed


@DISK_ERRORS
@pytest.mark.slow
def test_export_on_a_failing_disk_is_one_line(failing_disk, code, capsys):
    failing_disk.fail(code)
    assert mnist_99_4.main(["export", "--onnx", str(failing_disk.path / "model.onnx")]) == 2
    lines, _ = one_error_line(capsys, code, "--onnx")
    assert len(lines) == 1


@DISK_ERRORS
def test_the_data_fetch_on_a_failing_disk_is_one_line(failing_disk, code, capsys, monkeypatch):
    failing_disk.fail(code)
    assert mnist_99_4.main(["evaluate", "--data-dir", str(failing_disk.path / "data")]) == 1
    lines, _ = one_error_line(capsys, code, "cannot write MNIST into")
    assert len(lines) == 1


@DISK_ERRORS
def test_a_disk_that_fails_mid_run_keeps_the_last_checkpoint_and_says_how_to_go_on(failing_disk, mnist_dir, code,
                                                                                    capsys, monkeypatch):
    out, real_save, saves = failing_disk.path / "run", runs.save_checkpoint, []

    def save_then_fail(*args):
        saves.append(1)
        if len(saves) == 2:  # the checkpoint before epoch 1 is written; the disk fills before epoch 2's
            failing_disk.fail(code)
        return real_save(*args)

    monkeypatch.setattr(runs, "save_checkpoint", save_then_fail)
    assert mnist_99_4.main(["--dry-run", "--epochs", "2", "--data-dir", mnist_dir, "--out", str(out)]) == 1
    lines, _ = one_error_line(capsys, code, f"cannot write {out / 'checkpoint.pt'} (",
                              "in epoch 2. The state before epoch 1 is saved",
                              f"continue with: python mnist_99_4.py --resume {out / 'checkpoint.pt'}")
    assert len(lines) == 1
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 1


@pytest.mark.parametrize("args, said", [
    (["predcit", "x.png"], "error: no command 'predcit'; did you mean predict?"),
    (["evalute"], "error: no command 'evalute'; did you mean evaluate?"),
    (["--epoch", "3"], "error: unrecognized arguments: --epoch 3; did you mean --epochs?"),
    (["predict", "--topk", "3", "x.png"], "error: unrecognized arguments: --topk; did you mean --top-k?"),
])
def test_a_typo_is_answered_with_the_nearest_command_or_flag(args, said, capsys):
    assert mnist_99_4.main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(said)
