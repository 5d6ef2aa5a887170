"""The figures draw their data, not just a file: each is read back from the matplotlib figure it saves."""
import pytest
import torch

import plots


@pytest.fixture
def drawn(monkeypatch):
    """The figures that plots.save_figure was handed, instead of files."""
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    return figures


def test_the_curves_draw_each_epochs_losses_and_accuracies_in_their_panels(drawn):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 2 / e, "train_accuracy": 97 + e / 10,
                "val_accuracy": 98 + e / 10} for e in (1, 2, 3)]
    plots.plot_training_curves(history, "curves.png", eval_name="val")
    loss, accuracy = drawn[0].axes
    lines = {(ax.get_title(), line.get_label()): list(line.get_ydata()) for ax in (loss, accuracy)
             for line in ax.get_lines()}
    assert lines[("Loss", "train (augmented)")] == [1, 1 / 2, 1 / 3]
    assert lines[("Loss", "val")] == [2, 1, 2 / 3]
    assert lines[("Accuracy", "train (augmented)")] == [97.1, 97.2, 97.3]
    assert lines[("Accuracy", "val")] == [98.1, 98.2, 98.3]
    assert list(loss.get_lines()[0].get_xdata()) == [1, 2, 3]


def test_the_confusion_figure_puts_each_count_at_its_true_row_and_predicted_column(drawn):
    confusion = torch.zeros(10, 10, dtype=torch.long)
    confusion[3, 5] = 7  # seven 3s read as 5
    confusion[4, 4] = 90
    plots.plot_confusion_matrix(confusion, "confusion.png")
    (ax,) = drawn[0].axes
    counts = {(text.get_position()[1], text.get_position()[0]): text.get_text() for text in ax.texts}
    assert counts == {(3, 5): "7", (4, 4): "90"}  # (row, column) = (true, predicted)
    assert ax.get_images()[0].get_array()[3, 5] == 7 and ax.get_images()[0].get_array()[4, 4] == 0


def test_the_misclassified_figure_titles_each_digit_true_to_predicted(drawn):
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    plots.plot_misclassified(images, torch.tensor([4, 9, 7]), torch.tensor([9, 4, 1]), torch.tensor([0.9, 0.5, 0.75]),
                             "errors.png", columns=2)
    titles = [ax.get_title() for ax in drawn[0].axes if ax.get_title()]
    assert titles == ["4→9 (90%)", "9→4 (50%)", "7→1 (75%)"]
