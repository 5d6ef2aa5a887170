"""The model's constraints: size, building blocks, and that it computes and learns."""
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from model import LayoutBatchNorm2d, Net, count_parameters, layout_of, multiply_adds_per_image

MAX_PARAMETERS = 20_000      # the assignment's hard limit
PARAMETER_BUDGET = 7_142     # the default model's own budget: growing it must be a decision
COMPUTE_BUDGET = 430_000     # multiply-adds per image; training time follows it, so it is pinned too


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Net()


def test_parameter_count_is_within_limit_and_budget(net):
    params = count_parameters(net)
    assert params < MAX_PARAMETERS
    assert params <= PARAMETER_BUDGET, f"the default model grew to {params:,} parameters"


def test_compute_per_image_is_within_budget(net):
    # Pooling after the first conv keeps the default at about half the
    # compute of the same channels pooled after the second conv.
    assert multiply_adds_per_image(net) <= COMPUTE_BUDGET


def test_uses_batch_norm(net):
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_uses_dropout(net):
    dropouts = [m for m in net.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]
    assert dropouts and all(0 < m.p < 1 for m in dropouts)


def test_uses_global_average_pooling(net):
    pools = [m for m in net.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    assert pools and all(m.output_size in (1, (1, 1)) for m in pools)


def test_has_no_fully_connected_layer(net):
    assert not any(isinstance(m, nn.Linear) for m in net.modules())


def test_output_is_log_probabilities_for_each_image(net):
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(5), atol=1e-5)


def test_backward_pass_reaches_every_parameter():
    torch.manual_seed(0)
    model = Net().train()
    loss = nn.functional.nll_loss(model(torch.randn(8, 1, 28, 28)), torch.arange(8))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_width_trades_parameters():
    sizes = [count_parameters(Net(width=w)) for w in (4, 6, 8, 12)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4


@pytest.mark.parametrize("layout", [dict(width=5), dict(stem="pool"), dict(channels=[6, 8, 12, 14, 14], stem="pool"),
                                    dict(channels=[8, 10, 12, 12, 14], activation="gelu"),
                                    dict(activation="silu", stem="pool"), dict(classes=11)])
def test_layout_is_read_back_from_the_weights(layout):
    net = Net(**layout)
    rebuilt = Net(**layout_of(net.state_dict()))
    rebuilt.load_state_dict(net.state_dict())  # raises if any shape differs
    assert rebuilt.layout() == net.layout()


@pytest.mark.parametrize("activation", ["silu", "gelu"])
def test_a_smooth_activation_changes_the_outputs_and_is_read_back_from_the_weights(activation):
    smooth = Net(width=4, activation=activation).eval()
    relu = Net(width=4).eval()
    relu.load_state_dict({key: value for key, value in smooth.state_dict().items() if key != "activation_index"})
    images = torch.randn(4, 1, 28, 28)
    assert not torch.allclose(smooth(images), relu(images))
    rebuilt = Net(**layout_of(smooth.state_dict())).eval()
    rebuilt.load_state_dict(smooth.state_dict())
    assert torch.equal(rebuilt(images), smooth(images))


def test_a_relu_net_saves_no_activation_as_models_saved_before_the_option():
    assert all("activation" not in key for key in Net().state_dict())
    assert layout_of(torch.load(Path(__file__).parent / "mnist_net.pt", weights_only=True))["activation"] == "relu"


def test_the_pool_first_stem_has_the_same_parameters_for_a_quarter_of_the_elementwise_work():
    first, late = Net(), Net(stem="pool")
    assert count_parameters(first) == count_parameters(late)
    assert first.features[0](torch.zeros(1, 1, 28, 28)).shape == late.features[:2](torch.zeros(1, 1, 28, 28)).shape


@pytest.mark.parametrize("channels", [10, 16])
def test_layout_batchnorm_matches_batchnorm_on_channels_last_batches(channels):
    torch.manual_seed(0)
    plain, routed = nn.BatchNorm2d(channels), LayoutBatchNorm2d(channels)
    x = torch.randn(32, channels, 11, 11).contiguous(memory_format=torch.channels_last)
    x_plain, x_routed = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_plain, y_routed = plain(x_plain), routed(x_routed)
    assert y_routed.is_contiguous(memory_format=torch.channels_last)  # the next conv keeps its fast layout
    torch.testing.assert_close(y_routed, y_plain)
    (y_plain * torch.arange(11.0)).sum().backward()
    (y_routed * torch.arange(11.0)).sum().backward()
    # the two kernels sum in different orders: equal to float32 rounding over 32 * 11 * 11 terms
    torch.testing.assert_close(x_routed.grad, x_plain.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(routed.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(routed.running_mean, plain.running_mean)


@pytest.mark.parametrize("layout", [{}, {"stem": "pool"}, {"activation": "gelu", "dropout": 0.0}])
def test_every_layer_the_network_declares_is_used_in_its_forward_pass(layout):
    model = Net(**layout)
    called = set()
    leaves = {name: module for name, module in model.named_modules() if not list(module.children())}
    for name, module in leaves.items():
        module.register_forward_hook(lambda module, inputs, output, name=name: called.add(name))
    model.train()(torch.randn(2, 1, 28, 28))
    assert called == set(leaves), f"declared but never run: {sorted(set(leaves) - called)}"
