"""Train with structural re-parameterization, then save a plain Net (research: issue 'two levers').

    python benchmarks/reparam.py --reparam acnet [any training flag of mnist_99_4.py] --out DIR
    python benchmarks/seeds.py --program benchmarks/reparam.py --val 10000 --config "--reparam acnet ..."

Each 3x3 conv of the network trains with parallel branches, as in ACNet (Ding et al., 2019): a 1x3,
a 3x1 and (with `acnet-1x1`) a 1x1 conv beside it, all reading the same input. In the four body
blocks each branch has a BatchNorm of its own and the branches' outputs are summed; in the
pool-first stem, whose BatchNorm comes after the max-pool, the branches are summed before the pool
and share the one BatchNorm. In evaluation mode every branch is linear, and a 1x3, 3x1 or 1x1
kernel is a 3x3 kernel with zeros around it, so after training the branches fold exactly into one
3x3 conv: the network that is saved, counted and used is a plain model.Net with today's
parameters and compute. Only training sees the wider function.

The run is `mnist_99_4.py`'s own (its recipe, loop, log and records) with the network swapped;
at the end model.pt is replaced by the folded Net's weights, checked to give the same outputs, and
metrics.json gets the folded network's parameter and multiply-add counts. The fingerprint names the
branches (the layout says `reparam`), so seed tables keep these runs apart from plain ones.
"""
import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import data  # noqa: E402
import mnist_99_4  # noqa: E402
import runs  # noqa: E402
from model import Net, count_parameters, multiply_adds_per_image  # noqa: E402

KINDS = {"acnet": ((1, 3), (3, 1)), "acnet-1x1": ((1, 3), (3, 1), (1, 1))}


def as_3x3(kernel):
    """A (out, in, h, w) kernel of height and width 1 or 3, centred in a 3x3 one with zeros around it."""
    pad_w, pad_h = (3 - kernel.shape[3]) // 2, (3 - kernel.shape[2]) // 2
    return F.pad(kernel, (pad_w, pad_w, pad_h, pad_h))


def fused(kernel, norm):
    """A conv kernel and the BatchNorm after it (evaluation mode), as one kernel and a bias."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return kernel * scale.view(-1, 1, 1, 1), norm.bias - norm.running_mean * scale


class BranchedConv(nn.Module):
    """A 3x3 conv (no padding) with parallel branch kernels of other shapes, each padded into 3x3.

    With `norms` (the body blocks), each kernel has its own BatchNorm and their outputs are summed;
    without (the stem), the kernels are summed as they are. Weights of the main kernel are a plain
    nn.Conv2d's, initialised as Net's.
    """

    def __init__(self, in_channels, out_channels, shapes, norms):
        super().__init__()
        self.main = nn.Conv2d(in_channels, out_channels, 3, bias=False)
        self.branches = nn.ParameterList(
            nn.Parameter(torch.empty(out_channels, in_channels, *shape)) for shape in shapes)
        for kernel in self.branches:
            nn.init.kaiming_uniform_(kernel, a=5 ** 0.5)  # nn.Conv2d's own initialisation
        self.norms = nn.ModuleList(nn.BatchNorm2d(out_channels) for _ in range(1 + len(shapes))) if norms else None

    def kernels(self):
        return [self.main.weight, *(as_3x3(kernel) for kernel in self.branches)]

    def forward(self, x):
        if self.norms is None:
            return F.conv2d(x, sum(self.kernels()))
        return sum(norm(F.conv2d(x, kernel)) for kernel, norm in zip(self.kernels(), self.norms))


class ReparamNet(Net):
    """Net whose five 3x3 convs train with ACNet branches; `fold()` gives the plain Net."""

    def __init__(self, reparam, **layout):
        super().__init__(**layout)
        if self.stem != "pool-first":
            raise ValueError("benchmarks/reparam.py folds the pool-first stem only")
        self.reparam, shapes = reparam, KINDS[reparam]
        stem = self.features[0]  # conv, max-pool, BatchNorm, activation
        stem[0] = BranchedConv(1, self.channels[0], shapes, norms=False)
        for block, (c_in, c_out) in zip(self.features[1:], zip(self.channels, self.channels[1:])):
            block[0] = BranchedConv(c_in, c_out, shapes, norms=True)  # conv, BatchNorm, activation
            block[1] = nn.Identity()  # each branch has its BatchNorm now

    def layout(self):
        return {**super().layout(), "reparam": self.reparam}

    @torch.no_grad()
    def fold(self):
        """The plain Net computing what this one computes in evaluation mode."""
        plain = Net(**super().layout(), dropout=self.dropout.p)
        target = plain.state_dict()
        target.update({key: value for key, value in self.state_dict().items() if key in target})
        stem = self.features[0][0]
        target["features.0.0.weight"] = sum(stem.kernels())
        for i, block in enumerate(self.features[1:], start=1):
            kernels, biases = zip(*(fused(kernel, norm) for kernel, norm in zip(block[0].kernels(), block[0].norms)))
            # Net's block is conv (no bias) -> BatchNorm: a BatchNorm that adds the summed bias and
            # nothing else (mean 0, variance 1 - eps, scale 1) carries it exactly.
            norm_eps = plain.features[i][1].eps
            target[f"features.{i}.0.weight"] = sum(kernels)
            target[f"features.{i}.1.weight"] = torch.ones_like(biases[0])
            target[f"features.{i}.1.bias"] = sum(biases)
            target[f"features.{i}.1.running_mean"] = torch.zeros_like(biases[0])
            target[f"features.{i}.1.running_var"] = torch.full_like(biases[0], 1 - norm_eps)
        plain.load_state_dict(target)
        return plain.eval()


def reparam_model(reparam):
    """mnist_99_4.build_model for a ReparamNet with --reparam's branches."""
    def build(args):
        return ReparamNet(reparam, width=args.width, dropout=args.dropout, channels=args.channels, stem=args.stem,
                          activation=args.activation)
    return build


def fold_run(out, reparam):
    """Replace OUT/model.pt (a ReparamNet's weights) by the folded Net's, checked on real digits, and
    put the folded network's sizes in OUT/metrics.json."""
    metrics = json.loads((out / "metrics.json").read_text())
    branched = reparam_model(reparam)(argparse.Namespace(**metrics["args"]))
    branched.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    branched.eval()
    plain = branched.fold()
    images = data.load_mnist(metrics["args"]["data_dir"], train=False)[0][:500]
    x = data.normalize(images).unsqueeze(1)
    with torch.no_grad():
        difference = (plain(x) - branched(x)).abs().max().item()
    if difference > 1e-3:
        sys.exit(f"error: the folded network differs from the trained one by {difference:g}")
    runs.save_atomically(plain.state_dict(), out / "model.pt")
    metrics.update(params=count_parameters(plain), multiply_adds=multiply_adds_per_image(plain),
                   trained_params=metrics["params"], folded_max_difference=difference,
                   model_sha256=runs.file_sha256(out / "model.pt"))  # the folded file's
    runs.save_atomically(metrics, out / "metrics.json")
    print(f"Folded into a plain Net: {metrics['params']:,} parameters (trained with {metrics['trained_params']:,}), "
          f"outputs within {difference:.1e} of the trained network's; saved {out / 'model.pt'}")


def split_reparam(argv):
    """(the --reparam kind, the other flags); exits with a one-line error if it is missing or unknown."""
    argv = list(argv)
    if "--reparam" not in argv[:-1]:
        sys.exit(f"error: --reparam {{{','.join(KINDS)}}} is needed (see the module's docstring)")
    at = argv.index("--reparam")
    reparam = argv[at + 1]
    if reparam not in KINDS:
        sys.exit(f"error: --reparam {reparam}: one of {', '.join(KINDS)}")
    return reparam, argv[:at] + argv[at + 2:]


def reparam_fingerprint(reparam):
    """mnist_99_4.recipe_fingerprint for a run with --reparam's branches: the branches are part of the recipe."""
    def recipe_fingerprint(settings):
        return PLAIN_FINGERPRINT({**settings, "reparam": reparam})
    return recipe_fingerprint


PLAIN_FINGERPRINT = mnist_99_4.recipe_fingerprint


def fingerprint(train_args):
    """The fingerprint a run of this program with these flags records (benchmarks/seeds.py asks)."""
    reparam, flags = split_reparam(train_args)
    args = mnist_99_4.with_schedule(mnist_99_4.build_parser().parse_args(["train", *flags]))
    return reparam_fingerprint(reparam)(vars(args))


def main(argv):
    reparam, argv = split_reparam(argv)
    if "--out" not in argv[:-1]:
        sys.exit("error: --out DIR is needed: the folded weights replace DIR/model.pt")
    mnist_99_4.build_model = reparam_model(reparam)
    mnist_99_4.recipe_fingerprint = reparam_fingerprint(reparam)
    code = mnist_99_4.main(argv)
    if code == 0:
        fold_run(Path(argv[argv.index("--out") + 1]), reparam)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
