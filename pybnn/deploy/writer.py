"""The `.bnn` model file (docs/model-format.md): the writer.

`model_bytes(model, input_shape)` gives the bytes of a file for a "bnn"
network, from its folded numbers (pybnn.deploy.fold); `export()` writes
them as a .bnn file or as a C byte array.  The byte layout -- header and
record headers, record sizes and where each array sits, the checksum --
comes from libbnn (bnn_model_write_header, bnn_model_record_layout_of,
bnn_model_seal), and every file is checked by the loaders' own strict
pass (bnn_model_check) before it is returned: there is no second copy of
the format in Python.  Reading a file is libbnn's: pybnn.load() and
pybnn.deploy.inspect.
"""
from __future__ import annotations

import os
import re
import tempfile

import numpy as np

from .. import _core
from .fold import FoldError, fold_plan

__all__ = ["model_bytes", "export", "write_bytes", "c_source", "PARAMS", "ARRAYS"]

# The parameters of each record type, in file order (docs/model-format.md).
PARAMS = {
    "dense": ("k", "m"),
    "conv": ("c", "o", "kh", "kw", "stride_h", "stride_w", "dilation_h", "dilation_w",
             "pad_top", "pad_bottom", "pad_left", "pad_right"),
    "maxpool": ("kh", "kw", "stride_h", "stride_w"),
    "flatten": (),
}
# What the arrays of a record hold and their little-endian types; where
# they are is bnn_model_record_layout_of's.
ARRAYS = {
    ("dense", False): (("weights", "<u8"), ("thresh", "<i4"), ("flip", "u1")),
    ("dense", True): (("weights", "<u8"), ("scale", "<f4"), ("offset", "<f4")),
    ("conv", False): (("weights", "<u8"), ("thresh", "<i4"), ("flip", "u1")),
}


def _input_shape(plan, input_shape):
    first = plan[0] if plan else None
    if input_shape is None:
        if first is not None and first["type"] == "dense":
            return (1, 1, first["k"])
        raise ValueError("export needs input_shape=(H, W, C) for a model whose first layer "
                         "is a convolution")
    try:
        dims = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError("input_shape must be (H, W, C) or (features,), got %r"
                         % (input_shape,)) from None
    if len(dims) == 1:
        dims = (1, 1) + dims
    if len(dims) != 3 or any(d < 1 or d > 0xFFFFFFFF for d in dims):
        raise ValueError("input_shape must be (H, W, C) (or (features,)) with positive "
                         "sizes, got %r" % (input_shape,))
    return dims


def model_plan(model, input_shape=None):
    """(records of fold_plan(model.layers), (H, W, C)) after checking the
    model can be written: a "bnn" network whose folded chain is valid."""
    if not hasattr(model, "layers") or not hasattr(model, "mode"):
        raise TypeError("export takes a pybnn.nn.Sequential, got %s" % type(model).__name__)
    if model.mode != "bnn":
        raise FoldError("cannot export a %r-mode model: the .bnn format holds binary "
                        "weights and binary activations (mode 'bnn')" % model.mode)
    try:
        plan = fold_plan(model.layers)
    except FoldError as e:
        layer = e.layer
        where = " (%s)" % layer if layer and layer not in str(e) else ""
        raise FoldError("cannot export this model: %s%s" % (e, where), layer) from e
    if not plan:
        raise ValueError("cannot export this model: it has no dense or conv layer")
    return plan, _input_shape(plan, input_shape)


def model_bytes(model, input_shape=None):
    """The bytes of the .bnn file of `model` (a "bnn" Sequential; its folded
    numbers).  input_shape: the uint8 input (H, W, C) the model was trained
    on, e.g. (28, 28, 1) for MNIST (also for a dense first layer over the
    flattened image); default (1, 1, k) for a dense first layer.  Raises
    ValueError naming the layer for a model the format cannot hold."""
    plan, (H, W, C) = model_plan(model, input_shape)
    chunks = [None]
    for rec in plan:
        kind = rec["type"]
        params = [rec[p] for p in PARAMS[kind]]
        flags = sum(bit for key, bit in _core.RECORD_FLAGS.items() if rec[key])
        try:
            size, layout = _core.model_record_layout(kind, flags, params)
            record = bytearray(_core.model_record_header(kind, flags, params))
        except ValueError as e:
            raise FoldError("cannot export this model: %s: %s" % (rec["name"], e),
                            rec["name"]) from e
        record += bytes(size - len(record))
        for (name, dt), (offset, nbytes) in zip(ARRAYS.get((kind, rec["scores"]), ()), layout):
            raw = np.ascontiguousarray(rec[name], dtype=dt).tobytes()
            if len(raw) != nbytes:
                raise FoldError("cannot export this model: %s: %s holds %d bytes, the record "
                                "needs %d" % (rec["name"], name, len(raw), nbytes), rec["name"])
            record[offset:offset + nbytes] = raw
        chunks.append(bytes(record))
    total = _core.MODEL_HEADER_BYTES + sum(len(c) for c in chunks[1:])
    chunks[0] = _core.model_header(total, len(plan), H, W, C, plan[-1]["m"])
    data = bytearray(b"".join(chunks))
    _core.model_seal(data)
    report = _core.model_check(data)
    if report["status"] != 0:
        where = plan[report["record"]]["name"] + ": " if report["record"] >= 0 else ""
        raise FoldError("cannot export this model: %s%s" % (where, report["message"]),
                        plan[report["record"]]["name"] if report["record"] >= 0 else None)
    return bytes(data)


def _write_atomic(path, data):
    """Write through a temporary file in the same folder, then os.replace."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file private (0600): give it the mode a plain
        # open() would (that of the file it replaces, else 0666 less umask)
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mask = os.umask(0)
            os.umask(mask)
            mode = 0o666 & ~mask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


_C_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _c_name(stem, name):
    if name is None:
        name = re.sub(r"[^A-Za-z0-9_]", "_", stem) or "bnn_model"
        if name[0].isdigit():
            name = "bnn_" + name
    if not _C_IDENT.match(name):
        raise ValueError("the C array name must be an identifier (letters, digits, _), "
                         "got %r" % (name,))
    return name


def c_source(data, name, header_name):
    """(.h text, .c text) holding `data` as a 64-byte-aligned C array."""
    n = len(data)
    guard = re.sub(r"[^A-Za-z0-9]", "_", header_name).upper()
    if guard[0].isdigit():
        guard = "BNN_" + guard
    usage = (
        "/* The .bnn model %(name)s (%(n)d bytes; see docs/model-format.md), written by\n"
        " * `pybnn export`.  Open it in place, without malloc or a file system:\n"
        " *\n"
        " *     #include <bnn.h>\n"
        " *     #include \"%(h)s\"\n"
        " *\n"
        " *     size_t bytes;\n"
        " *     bnn_model *model;\n"
        " *     bnn_model_arena_size(%(name)s, %(name)s_size, &bytes);\n"
        " *     ... provide arena_bytes >= bytes of memory at arena ...\n"
        " *     bnn_model_init(arena, arena_bytes, %(name)s, %(name)s_size, &model);\n"
        " *\n"
        " * (or bnn_model_open_memory(%(name)s, %(name)s_size, &model) with malloc).\n"
        " * The array is 64-byte aligned, so the weights are used where they are. */\n"
        % dict(name=name, n=n, h=header_name))
    h = (usage + "#ifndef %(g)s\n#define %(g)s\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
         "extern const unsigned char %(name)s[%(n)d];\n"
         "extern const unsigned long %(name)s_size;\n\n"
         "#ifdef __cplusplus\n}\n#endif\n\n#endif /* %(g)s */\n"
         % dict(g=guard, name=name, n=n))
    lines = []
    for i in range(0, n, 16):
        lines.append("    " + " ".join("0x%02x," % b for b in data[i:i + 16]))
    c = (usage + "#include \"%(h)s\"\n\n"
         "#if defined(__GNUC__) || defined(__clang__)\n"
         "__attribute__((aligned(64))) const unsigned char %(name)s[%(n)d] = {\n"
         "#else\n"
         "_Alignas(64) const unsigned char %(name)s[%(n)d] = {\n"
         "#endif\n%(body)s\n};\n\n"
         "const unsigned long %(name)s_size = %(n)dUL;\n"
         % dict(h=header_name, name=name, n=n, body="\n".join(lines)))
    return h, c


def export(model, path, input_shape=None, format="bnn", name=None):
    """Write `model` (an eval "bnn"-mode Sequential) for the C runtime.

    format="bnn": the .bnn file at `path` (written atomically).
    format="c": `<stem>.h` and `<stem>.c` next to `path` (an extension
    .c, .h or .bnn is dropped), the file's bytes as `const unsigned char
    NAME[]` aligned to 64 bytes and `const unsigned long NAME_size`; NAME
    defaults to the stem made a C identifier.  Returns the list of paths
    written."""
    if format not in ("bnn", "c"):
        raise ValueError("format must be 'bnn' or 'c', got %r" % (format,))
    if name is not None and format != "c":
        raise ValueError("a name applies to the C format only")
    return write_bytes(model_bytes(model, input_shape), path, format, name)


def write_bytes(data, path, format="bnn", name=None):
    """Write the bytes of a .bnn file as export() does."""
    path = os.fspath(path)
    if format == "bnn":
        _write_atomic(path, data)
        return [path]
    if format != "c":
        raise ValueError("format must be 'bnn' or 'c', got %r" % (format,))
    root, ext = os.path.splitext(path)
    if ext not in (".c", ".h", ".bnn"):
        root = path
    stem = os.path.basename(root)
    if not stem:
        raise ValueError("export: %r has no file name" % path)
    cname = _c_name(stem, name)
    htext, ctext = c_source(data, cname, stem + ".h")
    _write_atomic(root + ".h", htext.encode("ascii"))
    _write_atomic(root + ".c", ctext.encode("ascii"))
    return [root + ".h", root + ".c"]
