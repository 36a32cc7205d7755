"""`pybnn info FILE`: check a .bnn file and describe it, through libbnn's
own strict pass (bnn_model_check) and loader -- the code pybnn.load() and
a C program run, so `info` and `load` accept and refuse the same files."""
from __future__ import annotations

from .. import _core
from .runtime import DeployedModel, read_source

__all__ = ["check", "describe"]


def check(path_or_bytes):
    """bnn_model_check's report on a file (a dict: status 0 when valid,
    offset, record, field, expected, found, message)."""
    data, _ = read_source(path_or_bytes)
    return _core.model_check(data)


def describe(path_or_bytes):
    """Lines describing a valid .bnn file: header, one line per record
    (parameters, output shape, flags), binary weights.  A file the loader
    refuses raises BnnFormatError with the checker's offset and reason."""
    data, src = read_source(path_or_bytes)
    model = DeployedModel(data, src)
    info = model.info
    lines = ["format %d, layout %d, %d bytes, checksum %#018x"
             % (info["format_version"], info["layout_version"], info["file_bytes"],
                _core.model_checksum(data)),
             "input: uint8 %dx%dx%d (H x W x C); %d classes; %d records"
             % (tuple(info["input_shape"]) + (info["classes"], info["layers"]))]
    for i, rec in enumerate(model.layers()):
        kind = rec["type"]
        p = rec["named"]
        if kind == "dense":
            what = "k=%(k)d m=%(m)d" % p
        elif kind == "conv":
            what = ("c=%(c)d o=%(o)d kernel %(kh)dx%(kw)d stride %(stride_h)dx%(stride_w)d "
                    "dilation %(dilation_h)dx%(dilation_w)d pad %(pad_top)d,%(pad_bottom)d,"
                    "%(pad_left)d,%(pad_right)d" % p)
        elif kind == "maxpool":
            what = "window %(kh)dx%(kw)d stride %(stride_h)dx%(stride_w)d" % p
        else:
            what = ""
        oh, ow, oc = rec["out_shape"]
        out = "%d" % oc if kind in ("dense", "flatten") else "%dx%dx%d" % (oh, ow, oc)
        flags = [f for f in _core.RECORD_FLAGS if f in rec["flags"]]
        lines.append(("  %2d %-8s %-52s -> %-12s %s" % (i, kind, what, out,
                                                       " ".join(flags).upper())).rstrip())
    bits = info["binary_weights"]
    lines.append("%d binary weights (%.1f KiB of packed bits)" % (bits, bits / 8192))
    return lines
