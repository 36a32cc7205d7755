"""The training recipes of `pybnn train` and the networks they build."""
from __future__ import annotations

import numpy as np

from .data import load_cifar10, load_mnist
from .nn import (MODES, BatchNorm, BinaryConv2d, BinaryDense, Dropout, Flatten, HardTanh,
                 MaxPool2d, Sequential, Sign)

__all__ = ["RECIPES", "AUGMENTED_DATASETS", "build_model", "check_config", "load_data",
           "recipe_config"]

# Each recipe: architecture, data, optimizer and schedule.  Sources for the
# paper's: PAPER.md §8 (Theano MNIST MLP, CIFAR-10 VGG-like network).
RECIPES = {
    "mnist-mlp": dict(arch="mlp", width=4096, layers=3, dataset="mnist", epochs=1000,
                      batch_size=100, optimizer="adam", lr_start=0.003, lr_end=3e-7,
                      bn="standard", dropout_in=0.2, dropout=0.5, loss="squared_hinge",
                      val_size=10000, recompute=False,
                      help="784-4096x3-10, the paper's Theano MNIST setup (dropout 0.2 on "
                           "the input, 0.5 after each hidden sign; the last 10,000 training "
                           "images validate)"),
    "mnist-mlp-fast": dict(arch="mlp", width=1024, layers=3, dataset="mnist", epochs=20,
                           batch_size=100, optimizer="adam", lr_start=0.003, lr_end=3e-5,
                           bn="standard", dropout_in=0.0, dropout=0.0, loss="squared_hinge",
                           help="our recipe for a good error in few epochs (the default)"),
    "mnist-cnn": dict(arch="vgg", width=16, dataset="mnist", epochs=20, batch_size=100,
                      optimizer="adam", lr_start=0.003, lr_end=3e-5, bn="standard",
                      dropout_in=0.0, dropout=0.0, loss="squared_hinge",
                      help="(2x16C3)-MP2-(2x32C3)-MP2-(2x64C3)-MP2-(2x128FC)-10 on the "
                           "digits: cifar10-vgg's shape at 1/8 of its width, a conv net "
                           "small enough for a microcontroller"),
    "cifar10-vgg": dict(arch="vgg", width=128, dataset="cifar10", epochs=500, batch_size=50,
                        optimizer="adam", lr_start=0.001, lr_end=3e-7, bn="standard",
                        dropout_in=0.0, dropout=0.0, loss="squared_hinge",
                        help="(2x128C3)-MP2-(2x256C3)-MP2-(2x512C3)-MP2-(2x1024FC)-10"),
}


# The datasets whose training images --augment may crop and mirror
# (pybnn.data.random_crop_flip): natural images, not digits, whose mirror
# image is no digit.
AUGMENTED_DATASETS = ("cifar10",)


def recipe_config(recipe):
    """A new dict of the named recipe's settings (its help text left out);
    ValueError listing the recipes for an unknown name."""
    if recipe not in RECIPES:
        raise ValueError("unknown recipe %r; choose from %s" % (recipe, ", ".join(RECIPES)))
    return {k: v for k, v in RECIPES[recipe].items() if k != "help"}


def check_config(cfg):
    """ValueError naming the setting for a run configuration that cannot be
    built: an unknown mode, a stochastic sign without binary activations,
    augmentation of a dataset that has none."""
    mode = cfg.get("mode", "bnn")
    if mode not in MODES:
        raise ValueError("mode must be one of %s, got %r" % (", ".join(MODES), mode))
    if cfg.get("stochastic") and mode != "bnn":
        raise ValueError("stochastic binarization is of the activations' sign: it needs mode "
                         "'bnn', got mode %r (weights stay deterministic in every mode)" % mode)
    if cfg.get("augment") and cfg["dataset"] not in AUGMENTED_DATASETS:
        raise ValueError("augment (random crops and horizontal flips) is defined for %s "
                         "images, not for dataset %r" % (", ".join(AUGMENTED_DATASETS),
                                                         cfg["dataset"]))


def build_model(cfg, input_shape, seed):
    """The Sequential of a recipe config (width scaled by cfg['width']);
    cfg['stochastic']: the binary activations draw their signs in training
    (each layer its own seed)."""
    check_config(cfg)
    rng = np.random.default_rng(seed)
    bn = cfg["bn"]
    mode = cfg.get("mode", "bnn")
    binary = mode != "fp"               # "bc" and "bnn": binary weights
    stochastic = bool(cfg.get("stochastic", False))
    act_seed = iter(range(seed + 400, seed + 500))

    def act():                          # "bnn": binary activations
        if mode != "bnn":
            return HardTanh()
        return Sign(stochastic=stochastic, seed=next(act_seed))

    dense_seed = iter(range(seed + 200, seed + 300))

    def dense(k, m):                    # the input gradient's arithmetic: cfg["backward"]
        return BinaryDense(k, m, binary=binary, rng=rng, backward=cfg.get("backward", "float"),
                           seed=next(dense_seed))

    conv_seed = iter(range(seed + 300, seed + 400))

    def conv(cin, cout):               # the backward products' arithmetic, too
        return BinaryConv2d(cin, cout, 3, padding=1, binary=binary, rng=rng,
                            backward=cfg.get("backward", "float"), seed=next(conv_seed))

    layers = []
    if cfg.get("dropout_in"):
        layers.append(Dropout(cfg["dropout_in"], seed=seed + 100))
    if cfg["arch"] == "mlp":
        width = int(cfg["width"])
        k = int(np.prod(input_shape))
        for i in range(int(cfg["layers"])):
            layers += [dense(k, width), BatchNorm(width, bn), act()]
            if cfg.get("dropout"):
                layers.append(Dropout(cfg["dropout"], seed=seed + 101 + i))
            k = width
        layers += [dense(k, 10), BatchNorm(10, bn)]
    elif cfg["arch"] == "vgg":
        w = int(cfg["width"])
        c = input_shape[-1]
        hw = input_shape[0]
        for j, ch in enumerate((w, 2 * w, 4 * w)):
            layers += [conv(c, ch), BatchNorm(ch, bn), act(), conv(ch, ch), MaxPool2d(2),
                       BatchNorm(ch, bn), act()]
            c, hw = ch, hw // 2
        layers.append(Flatten())
        k = hw * hw * c
        for _ in range(2):
            layers += [dense(k, 8 * w), BatchNorm(8 * w, bn), act()]
            k = 8 * w
        layers += [dense(k, 10), BatchNorm(10, bn)]
    else:
        raise ValueError("unknown architecture %r" % (cfg["arch"],))
    return Sequential(layers, recompute=cfg.get("recompute", True))


def load_data(cfg, data_dir):
    """(x, y, x_test, y_test) of a recipe's dataset from data_dir (MNIST:
    default the bundled sample)."""
    if cfg["dataset"] == "mnist":
        return load_mnist(data_dir)
    if data_dir is None:
        raise ValueError("the cifar10 recipe needs --data DIR (CIFAR-10 binary batches)")
    return load_cifar10(data_dir)
