"""Plot final test accuracy (mean and range over seeds) against parameter count.

    python benchmarks/frontier.py benchmarks/results/frontier.json

Reads the JSON that `benchmarks/seeds.py --name frontier --config ... --config ...`
writes (one point per configuration) and draws images/frontier.png (or --out).
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import plots  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="JSON files written by benchmarks/seeds.py")
    parser.add_argument("--out", default="images/frontier.png",
                        help="PNG to write (default: images/frontier.png)")
    args = parser.parse_args()
    summaries = [s for path in args.results for s in json.loads(Path(path).read_text())["summaries"]]
    summaries.sort(key=lambda s: s["params"])

    fig, ax = plots.plt.subplots(figsize=(7, 4.2))
    params = [s["params"] for s in summaries]
    means = [s["mean"] for s in summaries]
    ax.vlines(params, [s["min"] for s in summaries], [s["max"] for s in summaries], color="tab:blue",
              linewidth=2, label="range over seeds")
    ax.plot(params, means, "o-", color="tab:blue", label="mean over seeds")
    for i, s in enumerate(summaries):  # labels in four rows along the bottom, so that neighbours' do not overlap
        ax.annotate(f"{s['params']:,} params\n{s['runs_at_or_above_99_4']}/{len(s['seeds'])} ≥ 99.4%",
                    (s["params"], 0.03 + 0.11 * (i % 4)), xycoords=("data", "axes fraction"),
                    ha="center", fontsize=8)
    ax.axhline(99.4, color="gray", linestyle="--", linewidth=1, label="99.4%")
    seeds = len(summaries[0]["seeds"])
    ax.set(xlabel="parameters", ylabel="final test accuracy (%)",
           title=f"Accuracy against size ({seeds} seeds per point, at most {max(s['epochs'] for s in summaries)} epochs)")
    ax.set_ylim(min(s["min"] for s in summaries) - 0.3, max(s["max"] for s in summaries) + 0.1)
    ax.set_xlim(min(params) - 800, max(params) + 800)  # room for the end labels
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    plots.save_figure(fig, args.out)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
