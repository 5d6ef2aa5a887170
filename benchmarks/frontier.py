"""Plot final test accuracy (mean and range over seeds) against parameter count.

    python benchmarks/frontier.py benchmarks/results/frontier.json benchmarks/results/default_seeds.json

Reads the JSON that `benchmarks/seeds.py --name frontier --config ... --config ...`
writes (one point per configuration) and draws images/frontier.png (or --out).
A point from a later file replaces one of the same size from an earlier file:
above, today's ten-seed table of the default replaces the frontier's own.
The points were made with different recipes, so no line joins them: each
point's marker says its recipe (taught by a teacher or not; batch and weight
average), and its label gives its epochs.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import mnist_99_4  # noqa: E402
import plots  # noqa: E402


def recipe_of(summary):
    """A point's recipe in words, from its flags: what the marker shows."""
    args = mnist_99_4.build_parser().parse_args(["train", *summary["train_args"]])
    taught = "taught" if args.teacher_weights else "untaught"
    average = f"weight average {args.ema}" if args.ema else "no average"
    return f"{taught}, batch {args.batch_size}, {average}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="JSON files written by benchmarks/seeds.py")
    parser.add_argument("--out", default="images/frontier.png",
                        help="PNG to write (default: images/frontier.png)")
    args = parser.parse_args()
    by_size = {s["params"]: s for path in args.results for s in json.loads(Path(path).read_text())["summaries"]}
    summaries = [by_size[params] for params in sorted(by_size)]

    fig, ax = plots.plt.subplots(figsize=(7.5, 4.6))
    recipes = [recipe_of(s) for s in summaries]
    markers, colours = "o^sDv", ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    for k, recipe in enumerate(dict.fromkeys(recipes)):
        points = [s for s, r in zip(summaries, recipes) if r == recipe]
        params = [s["params"] for s in points]
        ax.vlines(params, [s["min"] for s in points], [s["max"] for s in points], color=colours[k % 5],
                  linewidth=2, alpha=0.5)
        ax.plot(params, [s["mean"] for s in points], markers[k % 5], color=colours[k % 5],
                label=f"{recipe} (mean; bar: range)")
    for i, s in enumerate(summaries):  # labels in four rows along the bottom, so that neighbours' do not overlap
        ax.annotate(f"{s['params']:,}, {s['epochs']} ep\n{s['runs_at_or_above_99_4']}/{len(s['seeds'])} ≥ 99.4%",
                    (s["params"], 0.03 + 0.11 * (i % 4)), xycoords=("data", "axes fraction"),
                    ha="center", fontsize=8)
    params = [s["params"] for s in summaries]
    ax.axhline(99.4, color="gray", linestyle="--", linewidth=1, label="99.4%")
    seeds = " or ".join(str(n) for n in sorted({len(s["seeds"]) for s in summaries}))
    ax.set(xlabel="parameters", ylabel="final test accuracy (%)",
           title=f"Accuracy against size ({seeds} seeds a point; each point's recipe by its marker)")
    ax.set_ylim(min(s["min"] for s in summaries) - 0.3, max(s["max"] for s in summaries) + 0.1)
    ax.set_xlim(min(params) - 800, max(params) + 800)  # room for the end labels
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    plots.save_figure(fig, args.out)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
