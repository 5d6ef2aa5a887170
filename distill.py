"""Learning from a trained teacher (--teacher-weights): the taught points of the size-against-accuracy table.

Offline distillation (Hinton et al., 2015): a wider network, trained before and
never changed, gives its finished judgement on every training batch, and the
small network learns from it as well as from the labels. The softened
prediction tells the small network how alike the digit classes look, not only
which one is right. The teacher predicts in evaluation mode (its BatchNorm's
running statistics, no dropout). Its training is a run of its own, and its time
is not in this run's; for a --val run it must have been trained with the same
--val, or it has seen the validation images (its accuracy on them, in the log,
shows it: near 100%).
"""
import math

import torch
import torch.nn.functional as F

from cli import UsageError


def teacher_files(teacher_weights):
    """The model.pt files --teacher-weights names, separated by commas; none when it is not given."""
    return [name.strip() for name in teacher_weights.split(",")] if teacher_weights else []


class Ensemble(torch.nn.Module):
    """Several trained networks as one: the log of the mean of their predicted probabilities.

    Networks trained from other seeds or at other widths err on different
    images, so their mean prediction is better than each one's.
    """

    def __init__(self, members):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x):
        log_probs = torch.stack([member(x).float() for member in self.members])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))


def load_teacher(teacher_weights, load_model):
    """The frozen teacher of --teacher-weights A.pt[,B.pt...], in evaluation mode: one network, or
    several as one Ensemble; None without. `load_model(path)` loads one file (use.load_trained_model),
    and a file it refuses is refused here with the flag's name."""
    try:
        members = [load_model(path) for path in teacher_files(teacher_weights)]
    except UsageError as error:
        raise UsageError(f"--teacher-weights {error}") from None
    if not members:
        return None
    return members[0] if len(members) == 1 else Ensemble(members).eval()


def distillation_loss(log_probs, teacher_log_probs, weight, temperature):
    """KL divergence from the teacher's prediction to the network's, both softened by `temperature`.

    Dividing log-probabilities by T softens them as dividing the logits would
    (they differ by a constant per row); the T^2 keeps the gradient's scale
    as T changes, as in Hinton et al. (2015).
    """
    soft = F.log_softmax(log_probs / temperature, dim=1)
    soft_teacher = F.log_softmax(teacher_log_probs / temperature, dim=1)
    return weight * temperature ** 2 * F.kl_div(soft, soft_teacher, log_target=True, reduction="batchmean")
