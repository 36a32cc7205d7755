"""Datasets: MNIST / Fashion-MNIST (IDX) and CIFAR-10 (binary batches)
readers, the verified, resumable download, the MNIST sample bundled
with the package (the offline default of `pybnn train`), and the
training-time augmentation of image batches."""
from .augment import random_crop_flip
from .datasets import (DOWNLOADS, MNIST_FILES, DatasetError, default_data_dir, download,
                       load_cifar10, load_mnist, read_idx, sample_dir)

__all__ = ["DatasetError", "read_idx", "load_mnist", "load_cifar10", "sample_dir", "download",
           "default_data_dir", "DOWNLOADS", "MNIST_FILES", "random_crop_flip"]
