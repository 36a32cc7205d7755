"""The Cortex-M4 firmware (examples/firmware) checks its classes against
the ones stored with its test images; here the host runtime must give
exactly those classes for the same model and images, with every kernel
table, so the firmware and the host agree through one file."""
import os

import numpy as np
import pytest

import pybnn

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                    "firmware", "data")


def test_firmware_classes_are_the_host_runtime_s(each_isa):
    model_path = os.path.join(DATA, "mnist_mlp256.bnn")
    if not os.path.exists(model_path):
        pytest.skip("examples/firmware/data is not in this checkout")
    ref = np.load(os.path.join(DATA, "mnist_mlp256_expected.npz"))
    x, classes = ref["x"], ref["classes"]
    assert x.shape == (100, 28, 28, 1) and x.dtype == np.uint8
    _, got = pybnn.load(model_path).predict(x)
    np.testing.assert_array_equal(got, classes)
    # a trained digit classifier, not a constant: the first 100 MNIST
    # test images get all ten classes
    assert len(np.unique(classes)) == 10
