"""PNG figures of a run: training curves, confusion matrix, misclassified digits.

    python plots.py RUN/metrics.json     draws RUN/curves.png again from a run's record
"""
import io
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window: works on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from data import write_atomically  # noqa: E402


def save_figure(fig, path):
    """Save as PNG, written whole or not at all, and free the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_atomically(path, buffer.getvalue())


def plot_training_curves(history, path, eval_name="test"):
    """Loss and accuracy per epoch, train and the evaluation set, side by side."""
    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_ax.plot(epochs, [row["train_loss"] for row in history], "o-", label="train (augmented)")
    loss_ax.plot(epochs, [row[f"{eval_name}_loss"] for row in history], "s-", label=eval_name)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss", yscale="log")
    acc_ax.plot(epochs, [row["train_accuracy"] for row in history], "o-", label="train (augmented)")
    acc_ax.plot(epochs, [row[f"{eval_name}_accuracy"] for row in history], "s-", label=eval_name)
    acc_ax.axhline(99.4, color="gray", linestyle="--", linewidth=1, label="99.4%")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", ylim=(97, 100))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path)


def plot_confusion_matrix(confusion, path):
    """Counts of true (rows) against predicted (columns) digits; the diagonal dimmed."""
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    off_diagonal = confusion.clone()
    off_diagonal.fill_diagonal_(0)
    ax.imshow(off_diagonal, cmap="Reds")
    for true in range(10):
        for predicted in range(10):
            count = int(confusion[true, predicted])
            if count:
                color = "gray" if true == predicted else "black"
                ax.text(predicted, true, str(count), ha="center", va="center", fontsize=8, color=color)
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
           title="Confusion matrix (test set; colour: errors only)")
    save_figure(fig, path)


def plot_misclassified(images, true_labels, predicted, confidence, path, columns=8):
    """A grid of misclassified digits, each titled 'true -> predicted (confidence)'."""
    count = len(images)
    rows = max(1, -(-count // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            ax.imshow(images[i], cmap="gray_r")
            ax.set_title(f"{int(true_labels[i])}→{int(predicted[i])} ({confidence[i]:.0%})", fontsize=8)
    fig.suptitle("Misclassified test digits: true → predicted (confidence)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def main(paths):
    """curves.png beside each metrics.json: tracked runs keep their numbers, not their pictures."""
    for path in map(Path, paths):
        metrics = json.loads(path.read_text())
        eval_name = "val" if "val_accuracy" in metrics else "test"
        plot_training_curves(metrics["history"], path.with_name("curves.png"), eval_name)
        print(f"Wrote {path.with_name('curves.png')}")


if __name__ == "__main__":
    main(sys.argv[1:] or sys.exit("usage: python plots.py RUN/metrics.json [...]"))
