"""The folded integer network of a trained model: the numbers a .bnn file
holds (docs/model-format.md), derived once from the layers.

A binary block  BinaryDense | BinaryConv2d, [MaxPool2d], BatchNorm, Sign
becomes one record whose batch norm + sign is an integer threshold and a
direction per output (bnn_fold_threshold); a max-pool after a conv pools
that conv's sign bits; the last block  BinaryDense, BatchNorm  keeps its
batch norm as a float scale/offset (the scores).  The first layer reads
the uint8 image: training sees x/128 - 1, so s/128 with the integer
s = sum (x - 128) w, and the fold scales accordingly.

Layers are told apart by their `family` (see pybnn.nn.base.Layer), so this
module needs nothing of pybnn.nn.
"""
from __future__ import annotations

import numpy as np

from ..ops import fold_threshold, pack

__all__ = ["fold_plan", "FoldError"]


class FoldError(ValueError):
    """The model cannot be folded into the .bnn format; `layer` names where."""

    def __init__(self, msg, layer=None):
        super().__init__(msg)
        self.layer = layer


def _record(kind, name, input_u8=False, scores=False, pad_one=False, **fields):
    rec = dict(type=kind, name=name, input_u8=bool(input_u8), scores=bool(scores),
               pad_one=bool(pad_one))
    rec.update((k, v if isinstance(v, np.ndarray) else int(v)) for k, v in fields.items())
    return rec


def fold_plan(layers):
    """The records of the folded network of `layers` (a Sequential's), in
    file order.  Dropout layers are skipped (identity in evaluation).

    Each record is a dict with "type" ("dense", "conv", "maxpool",
    "flatten"), "name" (the layer it comes from), the flags "input_u8"
    (reads the uint8 image), "scores" (the last layer: float scale/offset)
    and "pad_one" (conv padding is +1), and:
      dense:   k, m; weights uint64 [m, words(k)]
      conv:    c, o, kh, kw, stride_h, stride_w, dilation_h, dilation_w,
               pad_top, pad_bottom, pad_left, pad_right;
               weights uint64 [o, kh, kw, words(c)]
      maxpool: kh, kw, stride_h, stride_w
      flatten: nothing more
    and, for dense and conv, either thresh int32 [m] and flip uint8 [m] or
    (with "scores") scale and offset float32 [m].  Weights are the words of
    pack(W): bit = weight < 0, pad bits zero.  Raises FoldError naming the
    layer for a model the format cannot hold."""
    layers = [l for l in layers if l.family != "dropout"]
    plan, i, first = [], 0, True
    while i < len(layers):
        layer = layers[i]
        if layer.family == "flatten":
            plan.append(_record("flatten", layer.name))
            i += 1
            continue
        if layer.family not in ("dense", "conv"):
            raise FoldError("%s is not where a dense or conv layer was expected" % layer.name,
                            layer.name)
        if not layer.binary:
            raise FoldError("the .bnn format needs binary weights in %s" % layer.name,
                            layer.name)
        j = i + 1
        pool = None
        if j < len(layers) and layers[j].family == "pool":
            pool = layers[j]
            j += 1
        bn = layers[j] if j < len(layers) else None
        if bn is None or bn.family != "norm":
            raise FoldError("the .bnn format needs a BatchNorm after %s" % layer.name, layer.name)
        last = j + 1 >= len(layers)
        if not last and not (layers[j + 1].family == "activation" and layers[j + 1].binary):
            raise FoldError("the .bnn format needs a Sign after %s" % bn.name, bn.name)
        words = pack(layer.W.value).words
        sc, off = bn.affine()
        conv = layer.family == "conv"
        k = layer.fan_in()
        if first:
            sc = sc / 128.0      # training sees s/128, s = sum (x - 128) w exactly
            k *= 128
            if conv and layer.pad_value != 0:
                raise FoldError("the first (8-bit) layer must use zero padding: %s"
                                % layer.name, layer.name)
        if last:
            if conv or pool is not None:
                raise FoldError("the last block must be BinaryDense, BatchNorm", layer.name)
            plan.append(_record(
                "dense", layer.name, input_u8=first, scores=True,
                k=layer.in_features, m=layer.out_features, weights=words,
                scale=sc.astype(np.float32), offset=off.astype(np.float32)))
            i = j + 1
            break
        t, f = fold_threshold(sc, off, k)
        t = np.ascontiguousarray(t, dtype=np.int32)
        f = np.ascontiguousarray(f, dtype=np.uint8)
        if conv:
            pt, pb, pl, pr = layer.padding
            plan.append(_record(
                "conv", layer.name, input_u8=first, pad_one=layer.pad_value == 1,
                c=layer.in_channels, o=layer.out_channels, kh=layer.kh, kw=layer.kw,
                stride_h=layer.stride[0], stride_w=layer.stride[1],
                dilation_h=layer.dilation[0], dilation_w=layer.dilation[1],
                pad_top=pt, pad_bottom=pb, pad_left=pl, pad_right=pr,
                weights=words, thresh=t, flip=f))
        else:
            plan.append(_record(
                "dense", layer.name, input_u8=first, k=layer.in_features,
                m=layer.out_features, weights=words, thresh=t, flip=f))
        if pool is not None:
            plan.append(_record("maxpool", pool.name, kh=pool.kernel[0], kw=pool.kernel[1],
                                stride_h=pool.stride[0], stride_w=pool.stride[1]))
        first = False
        i = j + 2
    if i < len(layers):
        raise FoldError("layers after the last BatchNorm (%s)" % layers[i].name, layers[i].name)
    return plan
