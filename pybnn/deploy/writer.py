"""The `.bnn` model file (docs/model-format.md): writer and strict reader.

`model_bytes(model, input_shape)` gives the bytes of a file for an eval
"bnn"-mode Sequential, from the same folded numbers its predict() uses
(Sequential._fold_plan); `export()` writes them as a .bnn file or as a C
byte array; `read_bnn()` parses and checks a file in pure Python and
returns its header and records.
"""
from __future__ import annotations

import collections
import os
import re
import struct
import tempfile

import numpy as np

from .fold import FoldError, fold_plan

__all__ = ["FORMAT_VERSION", "model_bytes", "export", "write_bytes", "read_bnn", "describe",
           "fnv1a64", "BnnFile"]

MAGIC = b"BNNMODEL"
FORMAT_VERSION = 1
HEADER_BYTES = 64
RECORD_HEADER_BYTES = 64
MAX_RECORDS = 4096
MAX_PARAM = (1 << 31) - 1          # largest parameter value this writer/reader accepts

TYPE_CODES = {"dense": 1, "conv": 2, "maxpool": 3, "flatten": 4}
TYPE_NAMES = {v: k for k, v in TYPE_CODES.items()}
FLAG_INPUT_U8, FLAG_SCORES, FLAG_PAD_ONE = 1, 2, 4
_FLAG_BITS = (("input_u8", FLAG_INPUT_U8), ("scores", FLAG_SCORES), ("pad_one", FLAG_PAD_ONE))
_ALL_FLAGS = FLAG_INPUT_U8 | FLAG_SCORES | FLAG_PAD_ONE

PARAMS = {
    "dense": ("k", "m"),
    "conv": ("c", "o", "kh", "kw", "stride_h", "stride_w", "dilation_h", "dilation_w",
             "pad_top", "pad_bottom", "pad_left", "pad_right"),
    "maxpool": ("kh", "kw", "stride_h", "stride_w"),
    "flatten": (),
}
# parameters that may be zero (everything else is >= 1)
_MAY_BE_ZERO = {"pad_top", "pad_bottom", "pad_left", "pad_right"}

_HEADER = struct.Struct("<8sIIQQIIIII12x")
_RECORD = struct.Struct("<IIQ12I")

_FNV_OFFSET = 0xcbf29ce484222325
_FNV_PRIME = 0x100000001b3
_MASK64 = (1 << 64) - 1

BnnFile = collections.namedtuple("BnnFile", ["header", "records"])
BnnFile.__doc__ = """What read_bnn() returns: `header` (a dict) and `records` (a list of dicts
with the keys of Sequential._fold_plan() records except "name", plus
"file_offset" and "record_size")."""


def _words(k):
    return (k + 63) // 64


def _a64(n):
    return (n + 63) & ~63


def fnv1a64(data, skip=(24, 32)):
    """FNV-1a 64 of `data`, the bytes in [skip[0], skip[1]) read as zero
    (the checksum field of a .bnn header)."""
    buf = bytearray(data)
    a, b = skip
    buf[a:b] = bytes(len(buf[a:b]))
    h, prime, mask = _FNV_OFFSET, _FNV_PRIME, _MASK64
    for byte in buf:
        h = ((h ^ byte) * prime) & mask
    return h


def _array_specs(kind, scores, p):
    """(name, dtype, shape) of a record's arrays, in file order."""
    if kind == "dense":
        m = p["m"]
        tail = [("scale", "<f4", (m,)), ("offset", "<f4", (m,))] if scores else \
            [("thresh", "<i4", (m,)), ("flip", "u1", (m,))]
        return [("weights", "<u8", (m, _words(p["k"])))] + tail
    if kind == "conv":
        o = p["o"]
        return [("weights", "<u8", (o, p["kh"], p["kw"], _words(p["c"]))),
                ("thresh", "<i4", (o,)), ("flip", "u1", (o,))]
    return []


def _record_size(kind, scores, p):
    size = RECORD_HEADER_BYTES
    for _, dt, shape in _array_specs(kind, scores, p):
        n = np.dtype(dt).itemsize
        for s in shape:
            n *= s
        size += _a64(n)
    return size


# ---- the chain rules, shared by the writer and the reader -----------------

def _conv_out(h, w, p):
    span_h = (p["kh"] - 1) * p["dilation_h"] + 1
    span_w = (p["kw"] - 1) * p["dilation_w"] + 1
    in_h = h + p["pad_top"] + p["pad_bottom"]
    in_w = w + p["pad_left"] + p["pad_right"]
    if span_h > in_h or span_w > in_w:
        return None
    return (in_h - span_h) // p["stride_h"] + 1, (in_w - span_w) // p["stride_w"] + 1


def _check_chain(recs, input_shape, classes, label):
    """Check the rules of "The chain" on records (dicts with type, flags and
    parameters); label(i) names record i in messages.  Returns the output
    shape of every record: ("flat", features) or ("nhwc", H, W, C)."""
    H, W, C = input_shape
    last = len(recs) - 1
    shape = ("image", H, W, C)
    out = []
    for i, r in enumerate(recs):
        kind = r["type"]
        name = label(i)
        if i == 0 and not (kind in ("dense", "conv") and r["input_u8"]):
            raise ValueError("%s: the first record must be a dense or conv layer reading the "
                             "uint8 image (INPUT_U8)" % name)
        if i > 0 and r["input_u8"]:
            raise ValueError("%s: only the first record may read the uint8 image (INPUT_U8)"
                             % name)
        if r["scores"] and i != last:
            raise ValueError("%s: only the last record may carry SCORES" % name)
        if i == last and not (kind == "dense" and r["scores"]):
            raise ValueError("%s: the last record must be a dense layer with SCORES "
                             "(a model ends in BinaryDense, BatchNorm)" % name)
        if r["pad_one"] and kind != "conv":
            raise ValueError("%s: PAD_ONE is only for conv layers" % name)
        if kind == "dense":
            if shape[0] == "image":
                feats = H * W * C
                if r["k"] != feats:
                    raise ValueError("%s: reads k=%d features but the input image %dx%dx%d "
                                     "has %d" % (name, r["k"], H, W, C, feats))
            elif shape[0] != "flat":
                raise ValueError("%s: a dense layer reads a flat input, but the previous "
                                 "record gives [%d, %d, %d] (a flatten is missing)"
                                 % ((name,) + shape[1:]))
            elif r["k"] != shape[1]:
                raise ValueError("%s: reads k=%d features but the previous record gives %d"
                                 % (name, r["k"], shape[1]))
            if r["scores"] and r["m"] != classes:
                raise ValueError("%s: the last layer has m=%d outputs but the header says "
                                 "%d classes" % (name, r["m"], classes))
            shape = ("flat", r["m"])
        elif kind == "conv":
            if r["scores"]:
                raise ValueError("%s: a conv layer cannot carry SCORES" % name)
            if r["input_u8"] and r["pad_one"]:
                raise ValueError("%s: the 8-bit first layer cannot pad with +1 (PAD_ONE)"
                                 % name)
            if shape[0] == "flat":
                raise ValueError("%s: a conv layer reads an NHWC input, but the previous "
                                 "record gives a flat one" % name)
            if r["c"] != shape[3]:
                raise ValueError("%s: reads c=%d channels but its input has %d"
                                 % (name, r["c"], shape[3]))
            ohw = _conv_out(shape[1], shape[2], r)
            if ohw is None:
                raise ValueError("%s: the kernel does not fit the padded %dx%d input"
                                 % (name, shape[1], shape[2]))
            shape = ("nhwc", ohw[0], ohw[1], r["o"])
        elif kind == "maxpool":
            if i == 0 or recs[i - 1]["type"] != "conv":
                raise ValueError("%s: a max-pool must follow a conv layer (it pools that "
                                 "layer's sign bits with its flip)" % name)
            h, w = shape[1], shape[2]
            if h < r["kh"] or w < r["kw"]:
                raise ValueError("%s: window %dx%d larger than its %dx%d input"
                                 % (name, r["kh"], r["kw"], h, w))
            shape = ("nhwc", (h - r["kh"]) // r["stride_h"] + 1,
                     (w - r["kw"]) // r["stride_w"] + 1, shape[3])
        elif kind == "flatten":
            if shape[0] != "nhwc":
                raise ValueError("%s: a flatten reads the NHWC output of a conv or max-pool"
                                 % name)
            shape = ("flat", shape[1] * shape[2] * shape[3])
        else:  # pragma: no cover - callers check the type first
            raise ValueError("%s: unknown record type %r" % (name, kind))
        out.append(shape)
    return out


# ---- writer ------------------------------------------------------------------

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
    if len(dims) != 3 or any(d < 1 or d > MAX_PARAM for d in dims):
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
    if len(plan) > MAX_RECORDS:
        raise ValueError("cannot export this model: %d records, the format allows %d"
                         % (len(plan), MAX_RECORDS))
    hwc = _input_shape(plan, input_shape)
    for rec in plan:
        for p in PARAMS[rec["type"]]:
            lo = 0 if p in _MAY_BE_ZERO else 1
            if not lo <= rec[p] <= MAX_PARAM:
                raise ValueError("cannot export this model: %s has %s=%d, out of range"
                                 % (rec["name"], p, rec[p]))
    _check_chain(plan, hwc, plan[-1]["m"], lambda i: "cannot export this model: %s"
                 % plan[i]["name"])
    return plan, hwc


def model_bytes(model, input_shape=None):
    """The bytes of the .bnn file of `model` (an eval "bnn"-mode Sequential;
    its folded numbers, the ones predict() uses).  input_shape: the uint8
    input (H, W, C) the model was trained on, e.g. (28, 28, 1) for MNIST
    (also for a dense first layer over the flattened image); default
    (1, 1, k) for a dense first layer.  Raises ValueError naming the layer
    for a model the format cannot hold."""
    plan, (H, W, C) = model_plan(model, input_shape)
    chunks = [bytearray(HEADER_BYTES)]
    for rec in plan:
        kind = rec["type"]
        params = [rec[p] for p in PARAMS[kind]]
        flags = sum(bit for key, bit in _FLAG_BITS if rec[key])
        size = _record_size(kind, rec["scores"], rec)
        chunks.append(_RECORD.pack(TYPE_CODES[kind], flags, size,
                                   *(params + [0] * (12 - len(params)))))
        for name, dt, shape in _array_specs(kind, rec["scores"], rec):
            arr = np.asarray(rec[name])
            if arr.shape != shape:
                raise ValueError("cannot export this model: %s: %s has shape %r, expected %r"
                                 % (rec["name"], name, arr.shape, shape))
            raw = np.ascontiguousarray(arr, dtype=dt).tobytes()
            chunks.append(raw + bytes(_a64(len(raw)) - len(raw)))
    data = bytearray(b"".join(chunks))
    from .. import _core
    data[:HEADER_BYTES] = _HEADER.pack(MAGIC, FORMAT_VERSION, _core.LAYOUT_VERSION, len(data),
                                       0, len(plan), H, W, C, plan[-1]["m"])
    data[24:32] = struct.pack("<Q", fnv1a64(data))
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


# ---- reader ------------------------------------------------------------------

def _read_source(path_or_bytes):
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "the data"
    path = os.fspath(path_or_bytes)
    with open(path, "rb") as f:
        return f.read(), path


def read_bnn(path_or_bytes):
    """Parse and check a .bnn file (a path or its bytes) against every rule
    of docs/model-format.md.  Returns BnnFile(header, records): header a
    dict (format_version, layout_version, size, checksum, records,
    input_shape (H, W, C), classes); records dicts with "type", the flags
    "input_u8", "scores", "pad_one", the parameters, the arrays (numpy,
    native byte order), "file_offset" and "record_size" (where the record
    is and its bytes).  Raises ValueError saying
    what is wrong."""
    from .. import _core
    data, src = _read_source(path_or_bytes)
    n = len(data)

    def bad(msg):
        return ValueError("%s is not a valid .bnn file: %s" % (src, msg))

    if n < HEADER_BYTES:
        raise bad("%d bytes, shorter than the %d-byte header (truncated?)" % (n, HEADER_BYTES))
    magic, ver, layout, size, checksum, count, H, W, C, classes = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise bad("wrong magic %r (expected %r)" % (magic, MAGIC))
    if ver != FORMAT_VERSION:
        raise bad("format version %d is not supported (this reader knows %d)"
                  % (ver, FORMAT_VERSION))
    if layout != _core.LAYOUT_VERSION:
        raise bad("layout version %d is not supported (this library uses %d)"
                  % (layout, _core.LAYOUT_VERSION))
    if size != n:
        raise bad("the header says %d bytes but there are %d (%s)"
                  % (size, n, "truncated" if n < size else "extra bytes"))
    got = fnv1a64(data)
    if got != checksum:
        raise bad("checksum mismatch (header %#018x, data %#018x): the file is corrupt"
                  % (checksum, got))
    if not 1 <= count <= MAX_RECORDS:
        raise bad("%d layer records (allowed: 1 .. %d)" % (count, MAX_RECORDS))
    for field, v in (("input height", H), ("input width", W), ("input channels", C),
                     ("number of classes", classes)):
        if not 1 <= v <= MAX_PARAM:
            raise bad("%s is %d" % (field, v))
    if any(data[52:HEADER_BYTES]):
        raise bad("reserved header bytes 52..63 are not zero")

    records, off = [], HEADER_BYTES
    for i in range(count):
        where = "record %d at offset %d" % (i, off)
        if n - off < RECORD_HEADER_BYTES:
            raise bad("%s: the file ends inside the record header (%d records announced)"
                      % (where, count))
        code, flags, rsize, *prm = _RECORD.unpack_from(data, off)
        if code not in TYPE_NAMES:
            raise bad("%s: unknown record type %d" % (where, code))
        kind = TYPE_NAMES[code]
        where = "record %d (%s) at offset %d" % (i, kind, off)
        if flags & ~_ALL_FLAGS:
            raise bad("%s: unknown flag bits %#x" % (where, flags & ~_ALL_FLAGS))
        rec = dict(type=kind, file_offset=off, record_size=rsize)
        for key, bit in _FLAG_BITS:
            rec[key] = bool(flags & bit)
        if kind in ("maxpool", "flatten") and flags:
            raise bad("%s: a %s record takes no flags (flags %#x)" % (where, kind, flags))
        if kind == "dense" and rec["pad_one"]:
            raise bad("%s: PAD_ONE is only for conv layers" % where)
        if kind == "conv" and rec["scores"]:
            raise bad("%s: a conv layer cannot carry SCORES" % where)
        names = PARAMS[kind]
        for j, v in enumerate(prm):
            if j >= len(names):
                if v:
                    raise bad("%s: unused parameter %d is %d, not zero" % (where, j, v))
                continue
            lo = 0 if names[j] in _MAY_BE_ZERO else 1
            if not lo <= v <= MAX_PARAM:
                raise bad("%s: parameter %s = %d is out of range" % (where, names[j], v))
            rec[names[j]] = v
        need = _record_size(kind, rec["scores"], rec)
        if rsize != need:
            raise bad("%s: record size %d, but its parameters need exactly %d"
                      % (where, rsize, need))
        if rsize > n - off:
            raise bad("%s: the record (%d bytes) runs past the end of the file" % (where, rsize))
        pos = off + RECORD_HEADER_BYTES
        for name, dt, shape in _array_specs(kind, rec["scores"], rec):
            count_ = int(np.prod(shape))
            nbytes = count_ * np.dtype(dt).itemsize
            arr = np.frombuffer(data, dtype=dt, count=count_, offset=pos).reshape(shape)
            rec[name] = arr.astype(np.dtype(dt).newbyteorder("="))
            if any(data[pos + nbytes:pos + _a64(nbytes)]):
                raise bad("%s: the padding after %s is not zero" % (where, name))
            pos += _a64(nbytes)
        if kind in ("dense", "conv"):
            k = rec["k"] if kind == "dense" else rec["c"]
            if k % 64 and np.any(rec["weights"][..., -1] >> np.uint64(k % 64)):
                raise bad("%s: weight pad bits past element %d are not zero" % (where, k))
            if "flip" in rec and np.any(rec["flip"] > 1):
                raise bad("%s: flip values must be 0 or 1" % where)
        records.append(rec)
        off += rsize
    if off != n:
        raise bad("the records end at byte %d but the file has %d" % (off, n))
    _check_chain(records, (H, W, C), classes,
                 lambda i: "%s is not a valid .bnn file: record %d (%s)"
                 % (src, i, records[i]["type"]))
    header = dict(format_version=ver, layout_version=layout, size=size, checksum=checksum,
                  records=count, input_shape=(H, W, C), classes=classes)
    return BnnFile(header, records)


def describe(f):
    """Lines describing a BnnFile (for `pybnn info FILE`)."""
    h, recs = f
    lines = ["format %d, layout %d, %d bytes, checksum %#018x"
             % (h["format_version"], h["layout_version"], h["size"], h["checksum"]),
             "input: uint8 %dx%dx%d (H x W x C); %d classes; %d records"
             % (h["input_shape"] + (h["classes"], h["records"]))]
    H, W, C = h["input_shape"]
    shapes = _check_chain(recs, (H, W, C), h["classes"], lambda i: "record %d" % i)
    bits = 0
    for i, (r, s) in enumerate(zip(recs, shapes)):
        kind = r["type"]
        flags = [k for k, _ in _FLAG_BITS if r[k]]
        if kind == "dense":
            what = "k=%d m=%d" % (r["k"], r["m"])
            bits += r["k"] * r["m"]
        elif kind == "conv":
            what = "c=%d o=%d kernel %dx%d stride %dx%d dilation %dx%d pad %d,%d,%d,%d" % tuple(
                r[p] for p in PARAMS["conv"])
            bits += r["o"] * r["kh"] * r["kw"] * r["c"]
        elif kind == "maxpool":
            what = "window %dx%d stride %dx%d" % tuple(r[p] for p in PARAMS["maxpool"])
        else:
            what = ""
        out = "%d" % s[1] if s[0] == "flat" else "%dx%dx%d" % s[1:]
        lines.append(("  %2d %-8s %-52s -> %-12s %s" % (i, kind, what, out,
                                                       " ".join(flags).upper())).rstrip())
    lines.append("%d binary weights (%.1f KiB of packed bits)" % (bits, bits / 8192))
    return lines
