"""pybnn.data.random_crop_flip, the augmentation of `pybnn train --augment`:
shapes and dtypes kept, the same crops for the same generator, every image
a window of the padded image (mirrored or not) at the offsets drawn in the
documented order, and the errors."""
import numpy as np
import pytest

from pybnn.data import random_crop_flip


def _images(n, h=32, w=32, c=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    # 1..255: no pixel equals the padding's 0, so a window is recognisable
    return rng.integers(1, 256, (n, h, w, c)).astype(dtype)


@pytest.mark.parametrize("shape,dtype", [((5, 32, 32, 3), np.uint8), ((4, 7, 5, 2), np.float32),
                                         ((0, 8, 8, 1), np.uint8)])
def test_shape_and_dtype_kept(shape, dtype):
    x = _images(*shape, dtype=dtype)
    y = random_crop_flip(x, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == x.dtype


def test_same_generator_same_crops():
    x = _images(16)
    a = random_crop_flip(x, np.random.default_rng(7))
    b = random_crop_flip(x, np.random.default_rng(7))
    c = random_crop_flip(x, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("pad,h,w", [(4, 32, 32), (2, 7, 5), (1, 3, 9)])
def test_each_image_is_a_window_of_the_padded_image(pad, h, w):
    """Image i is the window at (dy_i, dx_i) of x[i] padded with zeros,
    mirrored where flip_i, with dy, dx and flip drawn in that order."""
    n, seed = 40, 3
    x = _images(n, h, w, 2)
    y = random_crop_flip(x, np.random.default_rng(seed), pad=pad)
    rng = np.random.default_rng(seed)
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    flip = rng.random(n) < 0.5
    padded = np.zeros((n, h + 2 * pad, w + 2 * pad, 2), np.uint8)
    padded[:, pad:pad + h, pad:pad + w] = x
    for i in range(n):
        want = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        if flip[i]:
            want = want[:, ::-1]
        assert np.array_equal(y[i], want), i
        # and no other window fits: the draws are the only explanation
        fits = [(a, b, f) for a in range(2 * pad + 1) for b in range(2 * pad + 1)
                for f in (False, True)
                if np.array_equal(y[i], padded[i, a:a + h, b:b + w][:, ::-1 if f else 1])]
        assert fits == [(dy[i], dx[i], bool(flip[i]))], i


def test_offsets_and_flips_cover_their_range():
    n, pad = 600, 4
    x = _images(n, 12, 12, 1)
    y = random_crop_flip(x, np.random.default_rng(11), pad=pad)
    rng = np.random.default_rng(11)
    dy, dx = rng.integers(0, 9, n), rng.integers(0, 9, n)
    assert set(dy) == set(range(9)) and set(dx) == set(range(9))
    # the centre crop without a flip is the image itself; with it, its mirror
    centre = (dy == pad) & (dx == pad)
    same = np.array([np.array_equal(y[i], x[i]) for i in range(n)])
    mirrored = np.array([np.array_equal(y[i], x[i][:, ::-1]) for i in range(n)])
    assert (same | mirrored)[centre].all()
    assert same[centre].any() and mirrored[centre].any()
    assert not (same | mirrored)[~centre].any()


def test_no_pad_flips_only_and_no_flip_is_identity():
    x = _images(64, 6, 6, 3)
    y = random_crop_flip(x, np.random.default_rng(0), pad=0)
    same = [np.array_equal(a, b) for a, b in zip(y, x)]
    mirrored = [np.array_equal(a, b[:, ::-1]) for a, b in zip(y, x)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 10 < sum(mirrored) < 54                  # about half: 32 expected
    assert np.array_equal(random_crop_flip(x, np.random.default_rng(0), pad=0, flip=False), x)


def test_fill_value_pads():
    x = np.full((30, 4, 4, 1), 9, np.uint8)
    y = random_crop_flip(x, np.random.default_rng(2), pad=3, fill=128)
    assert set(np.unique(y)) <= {9, 128} and (y == 128).any()


def test_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\].*\(10, 784\)"):
        random_crop_flip(np.zeros((10, 784), np.uint8), rng)     # flat MNIST rows
    with pytest.raises(ValueError, match="pad.*-1"):
        random_crop_flip(_images(2), rng, pad=-1)
    with pytest.raises(ValueError, match="pad.*1.5"):
        random_crop_flip(_images(2), rng, pad=1.5)
