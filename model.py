"""The network: a small CNN for 28x28 MNIST digits, with no fully connected layer.

Input: (N, 1, 28, 28) float images, pixels scaled to 0-1, then normalized with
the MNIST mean 0.1307 and std 0.3081 (`data.normalize` does both).
Output: (N, 10) log-probabilities.

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

`body="two-pool"` is another arrangement of the four convs after the stem:
padded, two at 13x13, a second max-pool, two at 6x6 (see body_layers).
`body="three-stage"` replaces the stem and the body with nine padded convs,
three at each of 28x28, 14x14 and 7x7 (see three_stage_layers): the layout
of the smallest public 99.4% models, deeper and narrower than the default.
`body="late-pool"` keeps the five unpadded convs and their weights but pools
after the second conv, not the first (see late_pool_layers): the same
parameters spend about twice the multiply-adds at 24x24.
`activation="silu"` or `"gelu"` puts a smooth activation in place of every
ReLU (see ACTIVATIONS); such a net names it in its saved weights.

The stem, width and recipe were chosen on the validation split, over seeds
0-2, with benchmarks/seeds.py --val 10000; the tables are
benchmarks/results/val_round*.md and the README sums them up.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_WIDTH = 8
DEFAULT_DROPOUT = 0.1
DEFAULT_STEM = "pool-first"
STEMS = ("pool", "pool-first", "stride")
DEFAULT_BODY = "valid"
BODIES = ("valid", "two-pool", "three-stage", "late-pool")
THREE_STAGE = "three-stage"  # the one body with nine convs in all
LATE_POOL = "late-pool"
OWN_FIRST_CONV = (THREE_STAGE, LATE_POOL)  # bodies that take no stem: they start at 28x28 themselves
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


def conv_layers(in_channels, out_channels, separable=False, stride=1, padding=0):
    """A 3x3 conv, no bias (the BatchNorm after it makes one redundant).

    separable=True factorises the conv into a depthwise 3x3 and a pointwise 1x1:
    9*in + in*out weights instead of 9*in*out, so the same parameters buy
    much wider layers.
    """
    if separable and in_channels > 1:
        return [nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=padding, groups=in_channels,
                          bias=False),
                nn.Conv2d(in_channels, out_channels, 1, bias=False)]
    return [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=padding, bias=False)]


def conv_bn_act(in_channels, out_channels, activation, separable=False, stride=1, padding=0):
    """A 3x3 conv, BatchNorm, the activation (ReLU by default)."""
    return nn.Sequential(*conv_layers(in_channels, out_channels, separable, stride, padding),
                         LayoutBatchNorm2d(out_channels), activation_layer(activation))


def conv_pool_bn_act(in_channels, out_channels, activation, separable=False):
    """A 3x3 conv, a 2x2 max-pool, then BatchNorm and the activation: the pooled map's element-wise
    work is a quarter of the conv's map's (see stem_layers)."""
    return nn.Sequential(*conv_layers(in_channels, out_channels, separable), nn.MaxPool2d(2),
                         LayoutBatchNorm2d(out_channels), activation_layer(activation))


def stem_layers(stem, channels, activation=DEFAULT_ACTIVATION):
    """28x28 to 13x13, three ways.

    pool:       conv 3x3, BatchNorm, ReLU on 26x26, then a 2x2 max-pool
    pool-first: conv 3x3, then the max-pool, then BatchNorm and ReLU on 13x13: the same kind of
                features (a max commutes with ReLU, and with BatchNorm's scaling when it is
                positive) for a quarter of the element-wise work, which dominates on a CPU
    stride:     one stride-2 conv 3x3, BatchNorm, ReLU: cheapest, sees every other position
    """
    if stem == "pool":
        return [conv_bn_act(1, channels, activation), nn.MaxPool2d(2)]
    if stem == "pool-first":
        return [conv_pool_bn_act(1, channels, activation)]
    return [conv_bn_act(1, channels, activation, stride=2)]


def body_layers(body, channels, separable, activation=DEFAULT_ACTIVATION):
    """The four convs after the stem, from 13x13 to the map that is averaged, two ways.

    valid:    four unpadded convs, 13x13 -> 11, 9, 7, 5
    two-pool: two padded convs at 13x13, a 2x2 max-pool, two padded convs at 6x6: every conv
              sees a whole map with its borders, and the last two see the digit at half the
              resolution, where a 3x3 kernel covers twice the area
    """
    padding = 0 if body == "valid" else 1
    convs = [conv_bn_act(c_in, c_out, activation, separable, padding=padding)
             for c_in, c_out in zip(channels, channels[1:])]
    return convs if body == "valid" else [*convs[:2], nn.MaxPool2d(2), *convs[2:]]


def three_stage_layers(channels, separable, activation=DEFAULT_ACTIVATION):
    """Nine padded convs, three at each of 28x28, 14x14 and 7x7, with a 2x2 max-pool between stages.

    Every conv keeps its map's size, so the digit's borders are seen at every
    depth, and the full-resolution stage can stay narrow (half the width by
    default) because a conv at 28x28 costs four times one at 14x14.
    """
    layers, in_channels = [], 1
    for stage in range(3):
        if stage:
            layers.append(nn.MaxPool2d(2))
        for out_channels in channels[3 * stage:3 * stage + 3]:
            layers.append(conv_bn_act(in_channels, out_channels, activation, separable, padding=1))
            in_channels = out_channels
    return layers


def late_pool_layers(channels, separable, activation=DEFAULT_ACTIVATION):
    """The default's five unpadded convs with the max-pool after the second: 26, 24 -> 12, 10, 8, 6.

    Two convs, not one, see the full-resolution digit, so the second conv's
    features are built from strokes before the pool halves them; the three
    after it end on a 6x6 map. The second conv is pooled pool-first style
    (conv, max-pool, BatchNorm, ReLU), as the default's stem is.
    """
    c1, c2, c3, c4, c5 = channels
    return [conv_bn_act(1, c1, activation),
            conv_pool_bn_act(c1, c2, activation, separable),
            conv_bn_act(c2, c3, activation, separable), conv_bn_act(c3, c4, activation, separable),
            conv_bn_act(c4, c5, activation, separable)]


def channel_widths(width, body=DEFAULT_BODY):
    """Channels of the 3x3 convs for a given base width: five, or nine for the three-stage body."""
    if body == THREE_STAGE:
        return [max(1, width // 2)] * 3 + [width] * 6
    return [width, round(1.25 * width), 2 * width, 2 * width, 2 * width]


def conv_count(body):
    return 9 if body == THREE_STAGE else 5


class Net(nn.Module):
    def __init__(self, width=DEFAULT_WIDTH, dropout=DEFAULT_DROPOUT, channels=None, separable=False,
                 stem=DEFAULT_STEM, body=DEFAULT_BODY, activation=DEFAULT_ACTIVATION):
        super().__init__()
        if stem not in STEMS or body not in BODIES or activation not in ACTIVATIONS:
            raise ValueError(f"Net needs a stem in {STEMS}, a body in {BODIES} and an activation in {ACTIVATIONS}")
        self.channels = list(channels or channel_widths(width, body))
        if len(self.channels) != conv_count(body):
            raise ValueError(f"the {body} body takes {conv_count(body)} channel counts, not {len(self.channels)}")
        if body in OWN_FIRST_CONV and stem != DEFAULT_STEM:
            raise ValueError(f"the {body} body has its own first conv: it takes no other stem ({stem} was given)")
        self.width, self.separable, self.stem, self.body = self.channels[0], separable, stem, body
        self.activation = activation
        if activation != DEFAULT_ACTIVATION:
            # An activation has no weights, so a saved model names it here for layout_of; a
            # ReLU net saves none, as every model saved before this option existed.
            self.register_buffer("activation_index", torch.tensor(ACTIVATIONS.index(activation)))
        if body == THREE_STAGE:
            self.features = nn.Sequential(*three_stage_layers(self.channels, separable, activation))
        elif body == LATE_POOL:
            self.features = nn.Sequential(*late_pool_layers(self.channels, separable, activation))
        else:
            self.features = nn.Sequential(*stem_layers(stem, self.channels[0], activation),
                                          *body_layers(body, self.channels, separable, activation))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(self.channels[-1], 10, kernel_size=1)

    def forward(self, x):
        x = self.gap(self.dropout(self.features(x)))
        x = self.classifier(x).flatten(1)
        return F.log_softmax(x, dim=1)

    def layout(self):
        """The keyword arguments that rebuild this layout: what a fingerprint and a checkpoint need."""
        return {"channels": self.channels, "separable": self.separable, "stem": self.stem, "body": self.body,
                "activation": self.activation}


def layout_of(state_dict):
    """Net's keyword arguments for a saved state_dict, read off the weights' names and shapes.

    Each block ends in a BatchNorm, whose weight has one entry per output
    channel; a depthwise conv (one input channel per group) marks a separable
    net. A max-pool is the one module without weights, so a BatchNorm right
    after one marks a block pooled pool-first style: the first block of the
    pool-first stem, the second of the late-pool body. A stride-2 stem has a
    conv where the pool stem has its max-pool, and the body is the one whose
    layers, after that stem, add up to as many modules as the weights' last
    index shows (the two-pool body has one more, its pool). Nine BatchNorms
    mark the three-stage body, which has no separate stem. The activation is
    the one thing saved by name (Net's activation_index); without it, ReLU.
    """
    def in_order(key):
        return [int(part) if part.isdigit() else part for part in key.split(".")]

    features = {key: value for key, value in state_dict.items() if key.startswith("features.")}
    norms = sorted((key for key, value in features.items() if key.endswith(".weight") and value.dim() == 1),
                   key=in_order)
    separable = any(value.dim() == 4 and value.shape[1] == 1 and not key.startswith("features.0.")
                    for key, value in features.items())

    def norm_follows_pool(block):
        norm = next((key for key in norms if key.startswith(f"features.{block}.")), None)
        return norm is not None and f"features.{block}.{int(norm.split('.')[2]) - 1}.weight" not in features

    stem = ("pool-first" if norm_follows_pool(0)
            else "stride" if "features.1.0.weight" in features else "pool")
    channels = [features[key].shape[0] for key in norms]
    found = {"channels": channels, "separable": separable, "activation": saved_activation(state_dict)}
    if len(channels) == conv_count(THREE_STAGE):
        return {**found, "stem": DEFAULT_STEM, "body": THREE_STAGE}
    if norm_follows_pool(1):
        return {**found, "stem": DEFAULT_STEM, "body": LATE_POOL}
    module_count = 1 + max((int(key.split(".")[1]) for key in features), default=0)
    body = next((body for body in BODIES if len(channels) == 5 and module_count ==
                 len(stem_layers(stem, channels[0])) + len(body_layers(body, channels, separable))), DEFAULT_BODY)
    return {**found, "stem": stem, "body": body}


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
