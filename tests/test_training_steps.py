"""Per-step bookkeeping (each optimizer step moves the learning rate and the weight average once, the
schedule lasts a full run), the distillation loss, and the augmentation's ranges."""
import warnings

import pytest
import torch

import mnist_99_4
from model import Net


def default_args(*flags):
    return mnist_99_4.with_schedule(mnist_99_4.build_parser().parse_args(["train", *flags]))


def test_one_step_moves_the_rate_once_and_the_weight_average_once():
    torch.manual_seed(0)
    args = default_args("--precision", "fp32")
    model = Net()
    optimizer, scheduler = mnist_99_4.sgd_one_cycle(model, args, steps_per_epoch=10)
    average = mnist_99_4.WeightAverage(model, args.ema)
    before = [averaged.clone() for averaged, _ in average.pairs]
    rates = [scheduler.get_last_lr()[0]]
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    mnist_99_4.train_step(model, x, y, optimizer, scheduler, args, average)
    rates.append(scheduler.get_last_lr()[0])

    assert scheduler.last_epoch == 1 and rates[1] > rates[0]  # one step of the warm-up
    for old, (averaged, current) in zip(before, average.pairs):  # exactly one blend towards the new weights
        torch.testing.assert_close(averaged, old * args.ema + current * (1 - args.ema))


@pytest.mark.slow
def test_the_schedule_lasts_exactly_a_full_run(tmp_path, mnist_dir, monkeypatch):
    """The real loop over the real training set, every epoch, with each step reduced to the scheduler's:
    OneCycle raises if stepped past its end, and its rate must have reached its floor at the last step."""
    steps = []

    def scheduler_only(model, x, y, optimizer, scheduler, args, average=None, teacher=None):
        scheduler.step()
        steps.append(scheduler.get_last_lr()[0])
        return torch.zeros(len(y), 10), torch.zeros(())

    monkeypatch.setattr(mnist_99_4, "train_step", scheduler_only)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the scheduler steps without the optimizer here, on purpose
        assert mnist_99_4.main(["--data-dir", mnist_dir, "--out", str(tmp_path / "run")]) == 0
    args = default_args()
    assert len(steps) == args.epochs * -(-60_000 // args.batch_size)
    assert steps[-1] < args.max_lr * 1e-4  # annealed to (almost) nothing exactly at the end


def test_the_distillation_loss_is_the_softened_kl_divergence_computed_by_hand():
    import math

    import distill

    student = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    teacher = torch.log(torch.tensor([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]))
    weight, temperature = 0.5, 2.0

    def softened(row):  # p^(1/T), renormalized: the same as dividing the logits by T
        powered = [p ** (1 / temperature) for p in row]
        return [p / sum(powered) for p in powered]

    by_hand = 0.0
    for s_row, t_row in zip(student.exp().tolist(), teacher.exp().tolist()):
        s, t = softened(s_row), softened(t_row)
        by_hand += sum(ti * math.log(ti / si) for si, ti in zip(s, t))  # KL(teacher || student)
    by_hand = weight * temperature ** 2 * by_hand / 2  # T^2 keeps the gradient's scale; mean over the batch

    assert distill.distillation_loss(student, teacher, weight, temperature).item() == \
        pytest.approx(by_hand, rel=1e-5)


def test_the_augmentation_stays_within_its_stated_ranges_and_reaches_them():
    """Two dots 16 px apart: their line's angle, length and midpoint show each image's rotation, zoom and shift."""
    import data

    n = 4000
    dots = torch.zeros(n, 1, 28, 28)
    dots[:, :, 12:15, 4:7] = 1.0   # centred at (13, 5) and (13, 21): the field's middle row
    dots[:, :, 12:15, 20:23] = 1.0
    args = default_args()
    moved = data.random_affine(dots, args.rotate, args.translate, args.scale, torch.Generator().manual_seed(0))
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")

    def centre(mask):
        mass = (moved[:, 0] * mask).sum((1, 2))
        return (moved[:, 0] * mask * ys).sum((1, 2)) / mass, (moved[:, 0] * mask * xs).sum((1, 2)) / mass

    (left_y, left_x), (right_y, right_x) = centre(xs < 14), centre(xs >= 14)
    angle = torch.rad2deg(torch.atan2(right_y - left_y, right_x - left_x)).abs()
    zoom = torch.hypot(right_y - left_y, right_x - left_x) / 16
    shift = torch.stack([(left_y + right_y) / 2 - 13, (left_x + right_x) / 2 - 13], 1).abs()

    assert angle.max() <= args.rotate * 1.1 and angle.max() >= args.rotate * 0.8   # degrees, not radians
    assert zoom.min() >= 1 / (1 + args.scale) - 0.02 and zoom.max() <= 1 / (1 - args.scale) + 0.02
    assert zoom.min() <= 0.95 and zoom.max() >= 1.05
    assert shift.max() <= args.translate + 0.5 and shift.max() >= args.translate * 0.75   # pixels
