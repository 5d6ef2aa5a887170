"""Every figure on the front page (README.md) is the one its file holds: change either and this fails."""
import json
import re
from pathlib import Path

import torch

from model import Net, count_parameters, multiply_adds_per_image

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = re.sub(r"\s+", " ", (ROOT / "README.md").read_text())  # one line: figures wrap anywhere


def stated(pattern):
    """The groups of the one place the README says `pattern` (whitespace-insensitive)."""
    found = re.findall(pattern, README)
    assert len(found) >= 1, f"the README no longer says {pattern!r}"
    return found[0]


def table_figure(text, pattern):
    found = re.search(pattern, text)
    assert found, f"no {pattern!r} in the results file"
    return found.groups()


def test_the_size_is_the_networks():
    params, mult_adds = stated(r"\| parameters \| ([\d,]+) \(([\d,]+) multiply-adds per image\)")
    net = Net()
    assert int(params.replace(",", "")) == count_parameters(net)
    assert int(mult_adds.replace(",", "")) == multiply_adds_per_image(net)


def test_the_ten_seed_figures_are_the_tables():
    (row,) = json.loads((RESULTS / "default_seeds.json").read_text())["summaries"]
    mean, lowest, at, count = stated(r"mean \*\*([\d.]+)%\*\*, lowest ([\d.]+)%, (\d+) of (\d+) at 99\.4% or more")
    assert (mean, lowest) == (f"{row['mean']:.2f}", f"{row['min']:.2f}")
    assert (int(at), int(count)) == (row["runs_at_or_above_99_4"], len(row["seeds"]))
    seeds, mean2, std, seconds = stated(r"\*\*Ten seeds, fp32\*\* \([^)]*\): ([\d. ]+); mean ([\d.]+)%, std ([\d.]+), "
                                        r"(\d+) s a run")
    assert seeds.split() == [f"{a:.2f}" for a in row["test_accuracy"]]
    assert (mean2, std, int(seconds)) == (f"{row['mean']:.2f}", f"{row['std']:.2f}", round(row["seconds_per_run"]))


def test_the_bf16_ten_seed_row_is_its_table():
    table = json.loads((RESULTS / "default_seeds_bf16.json").read_text())
    (row,) = table["summaries"]
    assert table["precision"] == "bf16" and row["train_args"] == ["--precision", "bf16"]
    mean, lowest, at, seconds = stated(r"\| the same in bf16 [^|]*\| mean ([\d.]+)%, lowest ([\d.]+)%, (\d+) of 10; "
                                       r"(\d+) s a run \|")
    assert (mean, lowest, int(at)) == (f"{row['mean']:.2f}", f"{row['min']:.2f}", row["runs_at_or_above_99_4"])
    assert int(seconds) == round(row["seconds_per_run"]) and len(row["seeds"]) == 10


def test_the_frontier_table_is_the_frontiers_with_todays_default():
    """As benchmarks/frontier.py draws it: the ten-seed table's default replaces the frontier's own point."""
    points = {p["params"]: p for name in ("frontier", "default_seeds")
              for p in json.loads((RESULTS / f"{name}.json").read_text())["summaries"]}
    rows = re.findall(r"\| \**([\d,]+)\** \| [^|]+ \| \**([\d.]+)\** \| \**([\d.]+)\** \| \**(\d+)/(\d+)\** \|", README)
    assert len(rows) == len(points) == 7
    for params, mean, lowest, at, count in rows:
        point = points[int(params.replace(",", ""))]
        assert (mean, lowest) == (f"{point['mean']:.2f}", f"{point['min']:.2f}")
        assert (int(at), int(count)) == (point["runs_at_or_above_99_4"], len(point["seeds"]))


def test_the_front_page_and_the_trainer_stay_short():
    assert len((ROOT / "README.md").read_bytes()) <= 12_000
    assert len((ROOT / "mnist_99_4.py").read_text().splitlines()) <= 450


def test_the_speed_figures_are_the_speed_benchmarks():
    speed = json.loads((RESULTS / "speed" / "speed.json").read_text())
    new = speed["new_default"]["median"]
    old = speed["old_default"]["median"]["wall_clock_seconds"]
    at_1313ca1 = speed["compared_commits"]["1313ca1"]["median"]["wall_clock_seconds"]
    fp32 = speed["compared"]["--precision fp32"]["median"]
    assert new["precision"] == "bf16" and fp32["precision"] == "fp32"
    assert stated(r"median \*\*(\d+) s\*\* start to exit in bf16 \(3 runs\); fp32 (\d+) s") == \
        (f"{new['wall_clock_seconds']:.0f}", f"{fp32['wall_clock_seconds']:.0f}")
    seconds, ratio, old_seconds, ratio_1313, seconds_1313, fp32_seconds = stated(
        r"interleaved\): (\d+) s, (\d\.\d\d)x c766afa's default \((\d+) s\), (\d\.\d\d)x 751054e's \((\d+) s\).*?"
        r"In fp32: (\d+) s\.")
    assert (seconds, fp32_seconds) == (f"{new['wall_clock_seconds']:.0f}", f"{fp32['wall_clock_seconds']:.0f}")
    assert (ratio, old_seconds) == (f"{speed['speedup_over_old_default']:.2f}", f"{old:.0f}")
    assert (ratio_1313, seconds_1313) == (f"{at_1313ca1 / new['wall_clock_seconds']:.2f}", f"{at_1313ca1:.0f}")


def test_the_readers_figures_are_their_benchmarks():
    photos = (RESULTS / "photos.md").read_text()
    assert stated(r"(\d+) of 40 right with the shipped weights") == table_figure(photos, r"\*\*(\d+)/40\*\*")[0]
    drawn = (RESULTS / "drawn_digits.md").read_text()
    assert stated(r"reads (\d+ of 20) drawn eights, (\d+ of 50) digits and (\d+ of 10) four-digit numbers") == \
        table_figure(drawn, r"(\d+ of 20) eights read as 8, (\d+ of 50) digits read right, (\d+ of 10) four-digit")
    numbers = (RESULTS / "read_numbers.md").read_text()
    *read, count = stated(r"(\d+), (\d+) and (\d+) of (\d+) held-out separated, touching and overlapping four-digit")
    wholly_right = (table_figure(numbers, rf"\| {kind}, 4 digits \| {count} \| [^|]* \| \*\*(\d+)/{count}")[0]
                    for kind in ("separated", "touching", "overlapping"))
    assert tuple(read) == tuple(wholly_right)
    pens = (RESULTS / "pens.md").read_text()
    thin, non_digits, mnist, median = stated(r"(\d+) of 100 thin-pen digits .*?(\d+) of 200 non-digits and (\d+) "
                                             r"of MNIST's 10,000 test images flagged `unsure`; a read takes a "
                                             r"median (\d+) ms")
    assert thin == table_figure(pens, r"thin pens: [^|]*\| \*\*(\d+)/100")[0]
    assert non_digits == table_figure(pens, r"\*\*all\*\* \| \*\*(\d+)/200")[0]
    assert mnist == table_figure(pens, r"read right \([\d.]+%\), (\d+) flagged unsure")[0]
    assert median == table_figure(pens, r"median (\d+) ms")[0]


def test_the_serving_latencies_are_the_benchmarks():
    latency = (RESULTS / "serve_latency.md").read_text()
    one, two = stated(r"a median ([\d.]+) ms a canvas against ([\d.]+) ms with two")
    assert (one, two) == (table_figure(latency, r"\| 1 \| ([\d.]+) \|")[0], table_figure(latency, r"\| 2 \| ([\d.]+) \|")[0])


def test_the_shipped_weights_accuracy_is_what_they_score(mnist_dir):
    import data
    import use

    images, labels = data.load_mnist(mnist_dir, train=False)
    model = use.load_trained_model(use.SHIPPED_WEIGHTS, torch.device("cpu"))
    accuracy = 100 * (use.predict_batches(model, images, torch.device("cpu")).argmax(1) == labels).float().mean()
    assert stated(r"`mnist_net\.pt` is the run shown in the log above: ([\d.]+)% on the test set") == \
        f"{accuracy.item():.2f}"


def test_the_opening_paragraph_is_the_tables():
    tables = {name: json.loads((RESULTS / f"{name}.json").read_text())["summaries"][0]
              for name in ("default_seeds", "default_seeds_bf16")}
    mean, minute, bf16_lowest, fp32_at, fp32_lowest = stated(
        r"reaches ([\d.]+)% on the real MNIST test set, the mean of ten seeds, in under a (minute) on a 2-core CPU "
        r"with AMX\. In bf16 \(`auto` on a CPU with AMX\) every seed scores ([\d.]+)% or more; in fp32 (\w+) of ten "
        r"reach 99\.4%, one ([\d.]+)%\.")
    assert {f"{row['mean']:.2f}" for row in tables.values()} == {mean}
    assert (bf16_lowest, tables["default_seeds_bf16"]["runs_at_or_above_99_4"]) == \
        (f"{tables['default_seeds_bf16']['min']:.2f}", 10)
    assert (fp32_at, fp32_lowest) == ("nine", f"{tables['default_seeds']['min']:.2f}")
    assert tables["default_seeds"]["runs_at_or_above_99_4"] == 9
    speed = json.loads((RESULTS / "speed" / "speed.json").read_text())
    assert minute and max(speed["new_default"]["median"]["wall_clock_seconds"],
                          speed["compared"]["--precision fp32"]["median"]["wall_clock_seconds"]) < 60


def test_the_training_log_is_the_shipped_runs():
    """The log excerpt is the shipped run's own lines, and the shipped file is that run's model."""
    folder = stated(r"`(benchmarks/results/runs/[\w.-]+)/`")
    log = (ROOT / folder / "train.log").read_text().splitlines()
    excerpt = (ROOT / "README.md").read_text().split("## The training log")[1].split("```")[1].strip().splitlines()
    assert [line for line in excerpt if line.strip() != "..."] == [line for line in log if line in excerpt]
    assert len([line for line in excerpt if line.strip() != "..."]) >= 6
    metrics = json.loads((ROOT / folder / "metrics.json").read_text())
    assert (ROOT / "mnist_net.pt.sha256").read_text().split()[0] == metrics["model_sha256"]
