"""The training command end to end, as a user runs it."""
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cli
import distill
import mnist_99_4
import use
from model import Net


@pytest.mark.slow
def test_dry_run_trains_and_writes_its_outputs(tmp_path, mnist_dir):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "mnist_99_4.py", "--dry-run", "--data-dir", mnist_dir,
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Total params" in result.stdout and "Device: cpu" in result.stdout
    assert "test accuracy" in result.stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["params"] == sum(p.numel() for p in Net().parameters())
    # The figure reported is the final epoch's, of the model saved (the weight average), not a best epoch.
    assert metrics["test_accuracy"] == metrics["history"][-1]["test_accuracy"] and metrics["seconds"] > 0
    assert metrics["args"]["dry_run"] is True and len(metrics["history"]) == 1
    Net().load_state_dict(torch.load(out / "model.pt", weights_only=True))
    assert "Total params" in (out / "train.log").read_text()
    from PIL import Image
    with Image.open(out / "curves.png") as curves:  # a drawn figure, not an empty or blank file
        assert curves.width > 300 and curves.height > 200
        assert len(np.unique(np.asarray(curves.convert("L")))) > 10
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.slow
def test_same_seed_gives_the_same_numbers_on_cpu(tmp_path, mnist_dir):
    def history(name, seed):
        args = ["--dry-run", "--epochs", "2", "--device", "cpu", "--seed", str(seed),
                "--data-dir", mnist_dir, "--out", str(tmp_path / name)]
        assert mnist_99_4.main(args) == 0
        rows = json.loads((tmp_path / name / "metrics.json").read_text())["history"]
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    first, again, other = history("a", 3), history("b", 3), history("c", 4)
    assert first == again
    assert first != other


def test_weight_average_follows_each_step_with_its_decay():
    model = Net()
    average = mnist_99_4.WeightAverage(model, decay=0.75)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with torch.no_grad():  # a "step" that moves every weight and BatchNorm statistic by 1
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(1.0)
    average.update()
    for name, tensor in average.model.state_dict().items():
        expected = before[name] + 0.25 if tensor.is_floating_point() else before[name]
        assert torch.allclose(tensor, expected), name


def momentum_over_the_cycle():
    """SGD's momentum at each step of a 10-step OneCycle schedule of the recipe."""
    args = mnist_99_4.build_parser().parse_args(["train", "--epochs", "1"])
    optimizer, scheduler = mnist_99_4.sgd_one_cycle(Net(), args, steps_per_epoch=10)
    momenta = []
    for _ in range(10):
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    return momenta


def test_momentum_swings_as_onecycles_own_default():
    usual = momentum_over_the_cycle()
    # OneCycleLR's own 0.95 at the ends and 0.85 at the learning rate's peak
    assert usual[0] == 0.95 and min(usual) == pytest.approx(0.85)


def two_epoch_run(tmp_path, mnist_dir, name, *flags):
    """A two-epoch --dry-run on CPU with these flags: its metrics.json and saved weights."""
    out = tmp_path / name
    args = ["--dry-run", "--epochs", "2", "--device", "cpu", "--data-dir", mnist_dir, "--out", str(out)]
    assert mnist_99_4.main([*args, *flags]) == 0
    return json.loads((out / "metrics.json").read_text()), torch.load(out / "model.pt", weights_only=True)


def test_ema_changes_what_is_evaluated_and_saved_not_the_training(tmp_path, mnist_dir):
    run = functools.partial(two_epoch_run, tmp_path, mnist_dir)
    (plain, plain_weights), (averaged, averaged_weights) = run("plain", "--ema", "0"), run("averaged", "--ema", "0.9")
    assert [row["train_loss"] for row in plain["history"]] == [row["train_loss"] for row in averaged["history"]]
    assert not torch.equal(plain_weights["classifier.weight"], averaged_weights["classifier.weight"])
    assert plain["fingerprint"] != averaged["fingerprint"]
    assert "a moving average of the weights (--ema 0.9)" in (tmp_path / "averaged" / "train.log").read_text()
    assert "moving average" not in (tmp_path / "plain" / "train.log").read_text()
    saved = Net()
    saved.load_state_dict(averaged_weights)  # the test accuracy recorded is the saved weights'
    images, labels = (t[:use.EVAL_BATCH] for t in mnist_99_4.data.load_mnist(mnist_dir, train=False))
    _, accuracy = use.evaluate(saved, images, labels, torch.device("cpu"))
    assert accuracy == averaged["test_accuracy"]


def test_an_activation_trains_another_network_that_evaluate_loads_as_it_was(tmp_path, mnist_dir, capsys):
    run = functools.partial(two_epoch_run, tmp_path, mnist_dir)
    (relu, _), (silu, _) = run("relu"), run("silu", "--activation", "silu")
    assert [row["train_loss"] for row in relu["history"]] != [row["train_loss"] for row in silu["history"]]
    assert relu["fingerprint"] != silu["fingerprint"] and silu["layout"]["activation"] == "silu"
    assert silu["params"] == relu["params"]  # an activation has no weights
    loaded = use.load_trained_model(tmp_path / "silu" / "model.pt", torch.device("cpu"))
    assert loaded.activation == "silu"
    images, labels = (t[:use.EVAL_BATCH] for t in mnist_99_4.data.load_mnist(mnist_dir, train=False))
    _, accuracy = use.evaluate(loaded, images, labels, torch.device("cpu"))
    assert accuracy == silu["test_accuracy"]
    capsys.readouterr()
    assert mnist_99_4.main(["evaluate", "--checkpoint", str(tmp_path / "silu" / "model.pt"), "--device", "cpu",
                            "--data-dir", mnist_dir]) == 0
    assert "channels [8, 10, 16, 16, 16], activation silu" in capsys.readouterr().out


def test_distillation_loss_is_zero_when_the_predictions_agree_and_grows_with_its_weight():
    log_probs = torch.log_softmax(torch.randn(8, 10), dim=1)
    teacher = torch.log_softmax(torch.randn(8, 10), dim=1)
    assert distill.distillation_loss(log_probs, log_probs, 0.5, 4.0).abs() < 1e-6
    half = distill.distillation_loss(log_probs, teacher, 0.5, 4.0)
    assert half > 0
    assert torch.isclose(distill.distillation_loss(log_probs, teacher, 1.0, 4.0), 2 * half)


@pytest.mark.slow
def test_a_frozen_teacher_changes_the_training_and_stays_as_it_was(tmp_path, mnist_dir):
    def run(name, *flags):
        return two_epoch_run(tmp_path, mnist_dir, name, "--val", "1000", "--width", "4", *flags)

    (alone, _), (teacher, _) = run("alone"), run("teacher", "--width", "6")
    teacher_file = tmp_path / "teacher" / "model.pt"
    teacher_bytes = teacher_file.read_bytes()
    taught, taught_weights = run("taught", "--teacher-weights", str(teacher_file))
    assert [row["train_loss"] for row in alone["history"]] != [row["train_loss"] for row in taught["history"]]
    assert teacher_file.read_bytes() == teacher_bytes
    assert taught["teacher_val_accuracy"] == teacher["val_accuracy"]  # frozen: as it was when saved
    Net(width=4).load_state_dict(taught_weights)
    other_teacher = tmp_path / "other.pt"  # other weights: another recipe, whatever the file is called
    torch.save(Net(width=6).state_dict(), other_teacher)
    taught_by_other, _ = run("taught-by-other", "--teacher-weights", str(other_teacher))
    assert len({alone["fingerprint"], taught["fingerprint"], taught_by_other["fingerprint"]}) == 3


@pytest.mark.slow
def test_several_teacher_files_teach_as_one_ensemble_of_their_mean_prediction(tmp_path, mnist_dir):
    def run(name, *flags):  # fp32 and no dropout: a second teacher's loading draws random numbers
        return two_epoch_run(tmp_path, mnist_dir, name, "--val", "1000", "--width", "4", "--precision", "fp32",
                             "--dropout", "0", *flags)[0]

    run("a", "--width", "6")
    run("b", "--width", "5", "--seed", "1")
    a, b = str(tmp_path / "a" / "model.pt"), str(tmp_path / "b" / "model.pt")
    by_a = run("by-a", "--teacher-weights", a)
    by_a_twice = run("by-a-twice", "--teacher-weights", f"{a},{a}")
    by_both = run("by-both", "--teacher-weights", f"{a}, {b}")

    def losses(metrics):
        return torch.tensor([row["train_loss"] for row in metrics["history"]])

    assert torch.allclose(losses(by_a_twice), losses(by_a))  # the mean of one prediction twice is that prediction
    assert not torch.allclose(losses(by_both), losses(by_a))
    assert len({by_a["fingerprint"], by_a_twice["fingerprint"], by_both["fingerprint"]}) == 3

    device = torch.device("cpu")
    _, (images, labels) = mnist_99_4.data.split_validation(*mnist_99_4.data.load_mnist(mnist_dir, train=True), 1000)
    images, labels = images[:use.EVAL_BATCH], labels[:use.EVAL_BATCH]
    mean_probabilities = sum(use.predict_batches(use.load_trained_model(path, device), images, device)
                             .exp() for path in (a, b)) / 2
    ensemble_accuracy = 100 * (mean_probabilities.argmax(1) == labels).float().mean().item()
    assert by_both["teacher_val_accuracy"] == pytest.approx(ensemble_accuracy)


def test_a_validation_split_is_held_out_of_the_training_images(tmp_path, mnist_dir):
    out = tmp_path / "run"
    assert mnist_99_4.main(["--dry-run", "--val", "5000", "--data-dir", mnist_dir, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "val_accuracy" in metrics["history"][0] and "test_accuracy" not in metrics["history"][0]
    assert "Training on 55,000 images" in (out / "train.log").read_text()


def test_a_validation_run_never_loads_the_test_set(tmp_path, mnist_dir, monkeypatch):
    real_load = mnist_99_4.data.load_mnist
    loaded = []

    def spy(data_dir, train):
        loaded.append(train)
        return real_load(data_dir, train)

    monkeypatch.setattr(mnist_99_4.data, "load_mnist", spy)
    out = tmp_path / "run"
    assert mnist_99_4.main(["--dry-run", "--val", "5000", "--data-dir", mnist_dir, "--out", str(out)]) == 0
    assert loaded == [True]  # the training images only: the validation split is cut from them
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_accuracy"] == metrics["history"][-1]["val_accuracy"]
    assert not any(key.startswith("test") for key in metrics)
    log = (out / "train.log").read_text()
    assert "validation accuracy" in log and "test accuracy" not in log
    assert f"evaluate --checkpoint {out / 'model.pt'}" in log

    loaded.clear()  # without --val, the test set is what each epoch is measured on
    assert mnist_99_4.main(["--dry-run", "--data-dir", mnist_dir, "--out", str(tmp_path / "plain")]) == 0
    assert loaded == [True, False]


def test_a_new_run_in_a_used_folder_starts_a_fresh_log(tmp_path, mnist_dir):
    out = tmp_path / "run"
    for _ in range(2):
        assert mnist_99_4.main(["--dry-run", "--data-dir", mnist_dir, "--out", str(out)]) == 0
    assert (out / "train.log").read_text().count("Training on") == 1


@pytest.mark.slow
def test_a_relative_out_is_recorded_as_given(tmp_path, mnist_dir):
    # Run from another folder, so the absolute form of the relative --out is distinctive.
    data_dir = os.path.abspath(mnist_dir)
    result = subprocess.run([sys.executable, os.path.abspath("mnist_99_4.py"), "--dry-run",
                             "--data-dir", data_dir, "--out", "runs/relative"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "runs" / "relative"
    for name in ("train.log", "metrics.json"):
        text = (out / name).read_text()
        assert "runs/relative" in text
        assert str(out) not in text, f"{name} holds the absolute path of --out"
    assert json.loads((out / "metrics.json").read_text())["args"]["out"] == "runs/relative"


@pytest.mark.slow
def test_top_level_help_lists_the_training_flags():
    result = subprocess.run([sys.executable, "mnist_99_4.py", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for flag in ("--epochs", "--batch-size", "--width", "--val", "--resume", "--data-dir", "--device"):
        assert flag in result.stdout
    assert "evaluate" in result.stdout and "predict" in result.stdout


@pytest.mark.slow
def test_step_profile_times_the_programs_step_and_each_batchnorm(mnist_dir):
    result = subprocess.run([sys.executable, "benchmarks/step_profile.py", "--steps", "3", "--rows", "5",
                             "--batchnorm-layouts", "--data-dir", mnist_dir, "--channels", "8,10,12,12,12"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^[\d.]+ ms a training step", result.stdout, re.MULTILINE)
    # The profiler's table of ops. Which five cost the most changes with the machine's load
    # (a busy CI machine once put no convolution among them, and another put a row that is
    # not an aten op there), so only its shape is checked: five rows, each a name and its
    # share of the time.
    assert re.search(r"^\s*Name\s+Self CPU %", result.stdout, re.MULTILINE)
    assert len(re.findall(r"^\s*\S.*?\s[\d.]+%\s", result.stdout, re.MULTILINE)) == 5
    batch = mnist_99_4.DEFAULTS["batch_size"]
    shapes = re.findall(rf"^\| \[{batch}, (\d+), (\d+), \d+\] \| [\d.]+ \| [\d.]+ \|$", result.stdout, re.MULTILINE)
    assert shapes == [("8", "13"), ("10", "11"), ("12", "9"), ("12", "7"), ("12", "5")]  # the flags' layout


@pytest.mark.slow
def test_number_speed_reads_the_same_pictures_with_each_commit_in_turn(tmp_path, mnist_dir):
    if subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True).returncode != 0:
        pytest.skip("number_speed.py reads commits: it needs a git checkout (a mutant's copy is not one)")
    worktrees = subprocess.run(["git", "worktree", "list"], capture_output=True, text=True).stdout
    result = subprocess.run([sys.executable, "benchmarks/number_speed.py", "HEAD", "HEAD", "--kinds", "photos",
                             "--count", "3", "--turns", "2", "--data-dir", mnist_dir, "--out",
                             str(tmp_path / "speed.md")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    # each turn reads with each commit given, here one reader against itself (a clone may hold no other commit)
    assert re.findall(r"^turn (\d), (\w+): photos [\d.]+ ms$", result.stdout, re.MULTILINE) == \
        [("1", head), ("1", head), ("2", head), ("2", head)]
    rows = re.findall(rf"^\| photos \| (\d) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                      (tmp_path / "speed.md").read_text(), re.MULTILINE)
    assert [turn for turn, *_ in rows] == ["1", "2"]
    for _, first, second, ratio in rows:
        assert float(ratio) == pytest.approx(float(second) / float(first), abs=0.01)
    assert subprocess.run(["git", "worktree", "list"], capture_output=True, text=True).stdout == worktrees

    wrong = subprocess.run([sys.executable, "benchmarks/number_speed.py", "HEAD", "no-such-commit"],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0 and wrong.stderr.strip() == "error: no-such-commit: not a commit of this repository"


@pytest.mark.slow
def test_paired_compares_two_configurations_seed_by_seed_across_tables(tmp_path):
    def table(name, default_runs, rotate_runs):
        """A seeds.py JSON with the default's and --rotate 5's runs, each {seed: accuracy}."""
        summaries = [{"fingerprint": mnist_99_4.fingerprint(flags), "seeds": list(runs), "measure": "val_accuracy",
                      "val_accuracy": list(runs.values())}
                     for flags, runs in ((["--stem", "pool-first"], default_runs), (["--rotate", "5"], rotate_runs))]
        (tmp_path / name).write_text(json.dumps({"summaries": summaries}))
        return str(tmp_path / name)

    tables = [table("a.json", {0: 99.30, 1: 99.20}, {0: 99.40, 1: 99.25}),
              table("b.json", {2: 99.10}, {2: 99.10, 3: 99.31}),
              table("c.json", {3: 99.30}, {})]  # seed 3's default ran in another round than its --rotate 5
    result = subprocess.run([sys.executable, "benchmarks/paired.py", *tables, "--config", "--rotate 5",
                             "--against", ""], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "| 1 | 99.25 (a) | 99.20 (a) | +0.05 |" in result.stdout  # '' is the default, found by fingerprint
    assert "| 3 | 99.31 (b) | 99.30 (c) | +0.01 |" in result.stdout  # a pair across two tables
    assert "4 seeds: A 99.265, B 99.225; paired difference +0.040, standard error 0.023" in result.stdout

    alone = subprocess.run([sys.executable, "benchmarks/paired.py", tables[1], "--config", "--rotate 5",
                            "--against", ""], capture_output=True, text=True, timeout=120)
    assert alone.returncode != 0 and alone.stderr.strip().startswith("error: 1 seed(s)")


@pytest.mark.slow
def test_seeds_keeps_a_finished_run_of_another_recipe_and_trains_beside_it(tmp_path, mnist_dir):
    """An older default's run in the folder a new default's run would use stays as it was (the tables
    of its day name it); the new run goes beside it, and the next table reuses that one."""
    # (any commit: this checkout may have changes; the commit rule has its own test, in a repository of its own)
    command = [sys.executable, "benchmarks/seeds.py", "--seeds", "0", "--out", str(tmp_path), "--name", "t",
               "--reuse-any-commit", "--dry-run", "--data-dir", str(mnist_dir)]
    assert subprocess.run(command, capture_output=True, text=True, timeout=300).returncode == 0
    (older_run,) = (tmp_path / "runs").iterdir()  # the run's own folder, now an older default's
    older = {"fingerprint": "0123456789abcdef", "args": {"seed": 0, "val": 0}, "test_accuracy": 99.0}
    (older_run / "metrics.json").write_text(json.dumps(older))

    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert json.loads((older_run / "metrics.json").read_text()) == older
    (row,) = json.loads((tmp_path / "t.json").read_text())["summaries"]
    new_metrics = older_run.with_name(f"{older_run.name}_{row['fingerprint']}") / "metrics.json"
    trained = new_metrics.read_text()
    assert json.loads(trained)["fingerprint"] == row["fingerprint"] != older["fingerprint"]

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert new_metrics.read_text() == trained  # reused, not trained again


@pytest.mark.slow
def test_seeds_reuses_a_finished_run_of_the_same_recipe_under_other_flags(tmp_path, mnist_dir):
    """The default spelled out names another folder than the default, but it is the same run."""
    command = [sys.executable, "benchmarks/seeds.py", "--seeds", "0", "--out", str(tmp_path), "--reuse-any-commit",
               "--dry-run", "--data-dir", str(mnist_dir)]
    first = subprocess.run([*command, "--name", "plain"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    folders = sorted((tmp_path / "runs").iterdir())
    batch = str(mnist_99_4.DEFAULTS["batch_size"])
    spelled = subprocess.run([*command, "--name", "spelled", "--config", f"--batch-size {batch}"],
                             capture_output=True, text=True, timeout=300)
    assert spelled.returncode == 0, spelled.stderr
    assert sorted((tmp_path / "runs").iterdir()) == folders  # nothing trained
    (plain,), (again,) = (json.loads((tmp_path / f"{name}.json").read_text())["summaries"]
                          for name in ("plain", "spelled"))
    assert again["train_args"] == ["--batch-size", batch, *plain["train_args"]]
    assert again["fingerprint"] == plain["fingerprint"] and again["test_accuracy"] == plain["test_accuracy"]


@pytest.mark.slow
def test_training_learns_one_epoch_on_a_subset_reaches_97_percent(mnist_dir):
    """The recipe's own pieces, end to end: a bug that put labels out of step with images, broke the
    augmentation or the schedule, would leave this near 10%."""
    torch.manual_seed(0)
    args = mnist_99_4.with_schedule(mnist_99_4.build_parser().parse_args(["train", "--epochs", "1", "--ema", "0"]))
    args.precision = "fp32"
    images, labels = (t[:30_000] for t in mnist_99_4.data.load_mnist(mnist_dir, train=True))
    test_images, test_labels = (t[:2_000] for t in mnist_99_4.data.load_mnist(mnist_dir, train=False))
    model = mnist_99_4.build_model(args)
    optimizer, scheduler = mnist_99_4.sgd_one_cycle(model, args, steps_per_epoch=-(-30_000 // args.batch_size))
    with mnist_99_4.tqdm(disable=True) as bar:  # (a weight average of 235 steps still holds the start's)
        mnist_99_4.train_one_epoch(model, (images, labels), optimizer, scheduler, args,
                                   torch.Generator().manual_seed(0), bar)
    _, accuracy = use.evaluate(model, test_images, test_labels, torch.device("cpu"))
    assert accuracy >= 97.0, f"{accuracy:.2f}% after one epoch on 30,000 images"


def test_the_last_plain_epochs_train_on_the_images_as_they_are(tmp_path, mnist_dir, monkeypatch):
    augment_by_epoch, real_batches = [], mnist_99_4.data.training_batches

    def spy(images, labels, batch_size, generator, augment=None, limit=None):
        augment_by_epoch.append(augment)
        return real_batches(images, labels, batch_size, generator, augment, limit)

    monkeypatch.setattr(mnist_99_4.data, "training_batches", spy)
    assert mnist_99_4.main(["--dry-run", "--epochs", "4", "--plain-epochs", "2", "--data-dir", mnist_dir,
                            "--out", str(tmp_path / "run")]) == 0
    moved = dict(rotate=mnist_99_4.DEFAULTS["rotate"], translate=mnist_99_4.DEFAULTS["translate"],
                 scale=mnist_99_4.DEFAULTS["scale"])
    assert augment_by_epoch == [moved, moved, None, None]  # tests/test_data.py: None means the images as they are


def test_help_lists_the_training_flags_the_readme_counts():
    flags = [action for action in mnist_99_4.build_parser().commands["train"]._actions if action.option_strings]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (counted,) = re.findall(r"lists the (\d+) training flags", readme)
    assert len(flags) == int(counted) + 1  # and --help


@pytest.mark.slow
def test_a_dry_run_says_it_is_a_check_and_its_folder_says_so(tmp_path, mnist_dir):
    program = Path(mnist_99_4.__file__).resolve()  # run from tmp_path: the default folder is runs/<date>_dry-run
    result = subprocess.run([sys.executable, str(program), "--dry-run", "--data-dir", str(Path(mnist_dir).resolve())],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Dry run done: the pipeline works end to end" in result.stdout and "measures nothing" in result.stdout
    assert "Final model after" not in result.stdout
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.endswith("_dry-run")


@pytest.mark.slow
def test_seeds_refuses_a_seed_named_twice(tmp_path):
    """Two jobs of one seed would train one folder at once and count the seed twice."""
    result = subprocess.run([sys.executable, "benchmarks/seeds.py", "--seeds", "1", "1", "--jobs", "2",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.splitlines()[-1].endswith("--seeds 1 1: each seed once")
    assert list(tmp_path.iterdir()) == []


def test_a_fingerprint_draws_no_random_number_and_builds_no_network(monkeypatch):
    """Computing what is recorded about a run leaves every generator as it was: moving the call moves no
    dropout mask. A network built to read its layout would draw its initial weights."""
    import random
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    monkeypatch.setattr(mnist_99_4, "Net", lambda *a, **k: pytest.fail("a fingerprint built a network"))
    fingerprints = {mnist_99_4.fingerprint(flags) for flags in ([], ["--width", "6"], ["--channels", "8,10,16,16,16"])}
    assert torch.equal(torch.get_rng_state(), states[0]) and random.getstate() == states[1]
    assert (np.random.get_state()[1] == states[2]).all()
    assert len(fingerprints) == 2  # --channels spelling out the default's widths is the same network


PROBE = '''"""A research program for a test: it trains through mnist_99_4 and stamps its VERSION on the run."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mnist_99_4  # noqa: E402

VERSION = {version}
PLAIN = mnist_99_4.recipe_fingerprint


def fingerprint(train_args):
    return f"probe{{VERSION}}-" + mnist_99_4.fingerprint(train_args)


if __name__ == "__main__":
    mnist_99_4.recipe_fingerprint = lambda settings: f"probe{{VERSION}}-" + PLAIN(settings)
    code = mnist_99_4.main(sys.argv[1:])
    metrics_file = Path(sys.argv[sys.argv.index("--out") + 1]) / "metrics.json"
    metrics_file.write_text(json.dumps({{**json.loads(metrics_file.read_text()), "probe_version": VERSION}}))
    sys.exit(code)
'''


@pytest.mark.slow
def test_seeds_at_a_commit_runs_the_research_program_as_it_was_there_and_records_the_commit(tmp_path, mnist_dir):
    """seeds.py --commit REV --program P: P as it was at REV, not as it is now, and its runs say REV. A
    finished run is reused only at the commit that made it."""
    root, repo = Path(__file__).resolve().parent.parent, tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    for module in [*root.glob("*.py"), root / "benchmarks" / "seeds.py"]:
        (repo / module.relative_to(root)).write_bytes(module.read_bytes())

    def git(*words):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *words], cwd=repo,
                              capture_output=True, text=True, check=True).stdout.strip()

    commits = []
    git("init", "-q")
    for version in (1, 2):
        (repo / "benchmarks" / "probe.py").write_text(PROBE.format(version=version))
        git("add", "-A")
        git("commit", "-qm", f"probe {version}")
        commits.append(git("rev-parse", "--short=12", "HEAD"))

    def seeds(*flags):
        result = subprocess.run([sys.executable, "benchmarks/seeds.py", "--seeds", "0", "--out", "results",
                                 "--dry-run", "--data-dir", str(mnist_dir), *flags], cwd=repo,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        (row,) = json.loads((repo / "results" / "seeds.json").read_text())["summaries"]
        return row

    at_first = seeds("--commit", commits[0], "--program", "benchmarks/probe.py")
    (metrics_file,) = (repo / "results" / "runs").glob("*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["probe_version"] == 1 and metrics["commit"] == commits[0] == at_first["commits"][0]
    assert metrics["fingerprint"].startswith("probe1-")
    assert seeds("--commit", commits[0], "--program", "benchmarks/probe.py") == at_first  # reused
    assert json.loads(metrics_file.read_text()) == metrics

    plain_at_first = seeds("--commit", commits[0])
    plain_now = seeds()  # the same recipe at another commit: trained again, beside the first one's run
    assert plain_now["fingerprint"] == plain_at_first["fingerprint"]
    assert (plain_at_first["commits"], plain_now["commits"]) == ([commits[0]], [commits[1]])
    assert seeds("--reuse-any-commit")["commits"] in ([commits[0]], [commits[1]])
    for precision in ("fp32", "bf16"):  # a precision named in the flags is matched at another commit too
        seeds("--commit", commits[0], "--precision", precision)
        assert json.loads((repo / "results" / "seeds.json").read_text())["precision"] == precision
    assert len(git("worktree", "list").splitlines()) == 1  # the commit's checkout is gone


def test_set_bounds_gives_a_research_scripts_bounds_values_of_their_own_type(tmp_path):
    import types

    module = types.ModuleType("bounds")
    module.__file__ = str(tmp_path / "bounds.py")
    module.WIDTH, module.STEPS, module.SHARE, module.lowercase = 1.5, 3, (0.85, 0.15), 2.0
    cli.set_bounds(module, ["WIDTH=0.2", "STEPS=5", "SHARE=0.9,0.1"])
    assert (module.WIDTH, module.STEPS, module.SHARE) == (0.2, 5, (0.9, 0.1))
    with pytest.raises(cli.UsageError, match=r"^--set lowercase=1: bounds\.py has no bound lowercase$"):
        cli.set_bounds(module, ["lowercase=1"])
    with pytest.raises(cli.UsageError, match=r"^--set STEPS=2\.5: not a value of STEPS, which is 5$"):
        cli.set_bounds(module, ["STEPS=2.5"])
