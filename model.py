"""The network: a small CNN for 28x28 MNIST digits, with no fully connected layer.

Input: (N, 1, 28, 28) float images, pixels scaled to 0-1, then normalized with
the MNIST mean 0.1307 and std 0.3081 (`data.normalize` does both).
Output: (N, 10) log-probabilities (`classes` of them: the number reader's judge has an eleventh,
"not one digit").

Layout of the default, width 8 (spatial size after each step):

    conv 3x3   1 -> 8    26x26   no BatchNorm yet: the pool comes first
    max-pool 2x2         13x13   then BatchNorm, ReLU
    conv 3x3   8 -> 10   11x11   \
    conv 3x3  10 -> 16    9x9     | each conv: Conv (no bias) -> BatchNorm -> ReLU
    conv 3x3  16 -> 16    7x7     |
    conv 3x3  16 -> 16    5x5    /
    dropout 0.1             5x5
    global average pooling  1x1
    conv 1x1  16 -> 10, log-softmax

Pooling right after the first conv is the main design choice: only one
narrow conv sees the full 26x26 map, and everything else works at 13x13 or
less, where a convolution costs a quarter as much. The pool-first stem goes
one step further and normalizes and rectifies the 13x13 map, not the 26x26
one (see stem_layers). Dropout sits once, on the last 5x5 map, just before
the global average: each pooled feature is then the mean of 25 values of
which about a tenth are dropped, a mild noise that a network this small can
afford.

`stem="pool"` normalizes and rectifies before the pool, as most small nets
do (two points of the size-against-accuracy table use it).
`activation="gelu"` (or `"silu"`) puts a smooth activation in place of every
ReLU (see ACTIVATIONS); such a net names it in its saved weights.

Layouts that lost on validation (separable convs, a stride-2 stem, the
two-pool, three-stage and late-pool bodies) are in the research record
(benchmarks/RESEARCH.md), with the commit at which each still runs.

The stem was chosen on the validation split (benchmarks/seeds.py --val 10000);
the width first on the test table, then checked on validation. The research
record has the tables.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_WIDTH = 8
DEFAULT_DROPOUT = 0.1
DEFAULT_STEM = "pool-first"
STEMS = ("pool", "pool-first")
# What follows each BatchNorm. ReLU is the default; SiLU (x * sigmoid(x)) and GELU are smooth,
# and pass a little of a negative input on, where ReLU passes none. Only this tuple's order is
# saved (see Net), so names are added at its end, never between.
ACTIVATIONS = ("relu", "silu", "gelu")
DEFAULT_ACTIVATION = "relu"


class LayoutBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d that hands a channels_last CPU batch to the kernel that is fast for its width.

    PyTorch's CPU BatchNorm for channels_last tensors vectorises across the
    channels and is fast when their count is a multiple of 16; with 8 or 10
    it took 3-4x as long, forward and backward, on a 2-core x86 CPU as on
    the same batch in the default layout (`python benchmarks/step_profile.py
    --batchnorm-layouts`), and those narrow layers are where this network's
    maps are largest. Two layout copies cost far less than the difference.
    The weights, the numbers and the state_dict are nn.BatchNorm2d's.
    """

    def forward(self, x):
        if (x.device.type == "cpu" and self.num_features % 16 and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last)):
            y = super().forward(Relayout.apply(x, torch.contiguous_format, torch.channels_last))
            return Relayout.apply(y, torch.channels_last, torch.contiguous_format)
        return super().forward(x)


class Relayout(torch.autograd.Function):
    """x in another memory layout, and its gradient back in x's: .contiguous(memory_format=...)
    passes the gradient on in whatever layout it comes, and a max-pool's backward given the
    default layout for its channels_last input took half as long again."""

    @staticmethod
    def forward(ctx, x, layout, gradient_layout):
        ctx.gradient_layout = gradient_layout
        return x.contiguous(memory_format=layout)

    @staticmethod
    def backward(ctx, gradient):
        return gradient.contiguous(memory_format=ctx.gradient_layout), None, None


def activation_layer(activation):
    if activation == "silu":
        return nn.SiLU(inplace=True)
    if activation == "gelu":
        return nn.GELU()
    return nn.ReLU(inplace=True)


def conv_bn_act(in_channels, out_channels, activation):
    """A 3x3 conv (no bias: the BatchNorm after it makes one redundant), BatchNorm, the activation."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, bias=False),
                         LayoutBatchNorm2d(out_channels), activation_layer(activation))


def conv_pool_bn_act(in_channels, out_channels, activation):
    """A 3x3 conv, a 2x2 max-pool, then BatchNorm and the activation: the pooled map's element-wise
    work is a quarter of the conv's map's (see stem_layers)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, bias=False), nn.MaxPool2d(2),
                         LayoutBatchNorm2d(out_channels), activation_layer(activation))


def stem_layers(stem, channels, activation=DEFAULT_ACTIVATION):
    """28x28 to 13x13, two ways.

    pool:       conv 3x3, BatchNorm, ReLU on 26x26, then a 2x2 max-pool
    pool-first: conv 3x3, then the max-pool, then BatchNorm and ReLU on 13x13: the same kind of
                features (a max commutes with ReLU, and with BatchNorm's scaling when it is
                positive) for a quarter of the element-wise work, which dominates on a CPU
    """
    if stem == "pool":
        return [conv_bn_act(1, channels, activation), nn.MaxPool2d(2)]
    return [conv_pool_bn_act(1, channels, activation)]


def channel_widths(width):
    """Channels of the five 3x3 convs for a given base width."""
    return [width, round(1.25 * width), 2 * width, 2 * width, 2 * width]


class Net(nn.Module):
    def __init__(self, width=DEFAULT_WIDTH, dropout=DEFAULT_DROPOUT, channels=None, stem=DEFAULT_STEM,
                 activation=DEFAULT_ACTIVATION, classes=10):
        super().__init__()
        if stem not in STEMS or activation not in ACTIVATIONS:
            raise ValueError(f"Net needs a stem in {STEMS} and an activation in {ACTIVATIONS}")
        self.channels = list(channels or channel_widths(width))
        if len(self.channels) != 5:
            raise ValueError(f"Net takes 5 channel counts, not {len(self.channels)}")
        self.width, self.stem, self.activation = self.channels[0], stem, activation
        if activation != DEFAULT_ACTIVATION:
            # An activation has no weights, so a saved model names it here for layout_of; a
            # ReLU net saves none, as every model saved before this option existed.
            self.register_buffer("activation_index", torch.tensor(ACTIVATIONS.index(activation)))
        # The four convs after the stem are unpadded: 13x13 -> 11, 9, 7, 5.
        self.features = nn.Sequential(*stem_layers(stem, self.channels[0], activation),
                                      *(conv_bn_act(c_in, c_out, activation)
                                        for c_in, c_out in zip(self.channels, self.channels[1:])))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(self.channels[-1], classes, kernel_size=1)

    def forward(self, x):
        return F.log_softmax(self.logits(x), dim=1)

    def logits(self, x):
        """The ten scores before the softmax: their size, not only their spread, tells how much the
        features look like a digit the net learned (use.read_digit's evidence)."""
        x = self.gap(self.dropout(self.features(x)))
        return self.classifier(x).flatten(1)

    def layout(self):
        """The keyword arguments that rebuild this layout: what a fingerprint and a checkpoint need."""
        classes = self.classifier.out_channels
        return {"channels": self.channels, "stem": self.stem, "activation": self.activation,
                **({"classes": classes} if classes != 10 else {})}


def layout_of(state_dict):
    """Net's keyword arguments for a saved state_dict, read off the weights' names and shapes.

    Each block ends in a BatchNorm, whose weight has one entry per output
    channel. A max-pool is the one module without weights, so a BatchNorm
    right after the first conv marks the pool-first stem. The activation is
    the one thing saved by name (Net's activation_index); without it, ReLU.
    """
    def in_order(key):
        return [int(part) if part.isdigit() else part for part in key.split(".")]

    features = {key: value for key, value in state_dict.items() if key.startswith("features.")}
    norms = sorted((key for key, value in features.items() if key.endswith(".weight") and value.dim() == 1),
                   key=in_order)
    channels = [features[key].shape[0] for key in norms]
    stem = "pool-first" if "features.0.2.weight" in features else "pool"
    classes = state_dict["classifier.weight"].shape[0] if "classifier.weight" in state_dict else 10
    return {"channels": channels, "stem": stem, "activation": saved_activation(state_dict),
            **({"classes": classes} if classes != 10 else {})}


def saved_activation(state_dict):
    if "activation_index" not in state_dict:
        return DEFAULT_ACTIVATION
    index = int(state_dict["activation_index"])
    if not 0 <= index < len(ACTIVATIONS):
        raise ValueError(f"activation number {index} is not one of {ACTIVATIONS}")
    return ACTIVATIONS[index]


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def multiply_adds_per_image(model):
    """Multiply-adds of every convolution for one 28x28 image, counted with forward hooks.

    Training time follows this figure more than the parameter count, so the
    log prints both and test_model.py pins both.
    """
    total = 0

    def count(conv, inputs, output):
        nonlocal total
        kernel_size = conv.kernel_size[0] * conv.kernel_size[1]
        total += output.numel() * kernel_size * conv.in_channels // conv.groups

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28, device=next(model.parameters()).device))
    model.train(was_training)
    for hook in hooks:
        hook.remove()
    return total
