#!/usr/bin/env python3
"""Turn a .bnn model file into C source, for programs without a file system.

    python3 bin2c.py MODEL.bnn -o OUT [--name NAME]

writes OUT.h and OUT.c (an extension .c, .h or .bnn on OUT is dropped):
the file's bytes as `const unsigned char NAME[]`, aligned to 64 bytes so
the runtime reads the weights in place, and `const unsigned long
NAME_size`.  NAME defaults to OUT's file name made a C identifier.  This
is the same pair `pybnn export CHECKPOINT -o OUT --format c` writes; the
script needs nothing but the Python standard library, so it also runs
where pybnn is not installed.

With the expected outputs of the model (an .npz holding `x`, uint8 images
[N, H, W, C], and `classes`, int [N], as tests/data/golden_expected.npz
does), it also writes the test data of the examples:

    --expected NPZ      OUT_inputs.h: the images and their expected
                        classes as static arrays (for embedded.c)
    --idx DIR           DIR/NAME-images.idx (uint8 [N, H, W, C], or
                        [N, H, W] when C is 1) and DIR/NAME-labels.idx
                        (the expected classes) in IDX format, and a copy
                        of the model as DIR/NAME.bnn (for bnn_classify)

Only what bin2c relies on is checked here (the magic, the size field, and
the images against the input shape in the header); the program that opens
the array runs libbnn's strict check of the whole file (bnn_model_check,
the pass every loader runs).  Output is deterministic.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import struct
import sys
import zipfile

HEADER_BYTES = 64


def check_model(data, path):
    """The header fields of a .bnn file, after checking what bin2c relies on."""
    if len(data) < HEADER_BYTES or data[:8] != b"BNNMODEL":
        raise ValueError("%s is not a .bnn model file (no BNNMODEL magic)" % path)
    fmt, layout, size, checksum, records, h, w, c, classes = struct.unpack_from(
        "<IIQQIIIII", data, 8)
    if size != len(data):
        raise ValueError("%s: the header says %d bytes, the file has %d" % (path, size, len(data)))
    return dict(format_version=fmt, layout_version=layout, records=records,
                input_shape=(h, w, c), classes=classes)


def c_identifier(text):
    name = re.sub(r"[^A-Za-z0-9_]", "_", text) or "bnn_model"
    if name[0].isdigit():
        name = "bnn_" + name
    return name


def guard_of(header_name):
    guard = re.sub(r"[^A-Za-z0-9]", "_", header_name).upper()
    return "BNN_" + guard if guard[0].isdigit() else guard


def byte_rows(data, per_row=16, indent="    "):
    return "\n".join(indent + " ".join("0x%02x," % b for b in data[i:i + per_row])
                     for i in range(0, len(data), per_row))


def model_sources(data, name, header_name, source_name):
    """(.h text, .c text) for the model bytes."""
    n = len(data)
    about = ("/* The .bnn model %s (%d bytes; docs/model-format.md), generated from %s\n"
             " * by examples/c/bin2c.py.  Load it without malloc or a file system:\n"
             " *\n"
             " *     bnn_model_arena_size(%s, %s_size, &need);\n"
             " *     bnn_model_init(arena, arena_bytes, %s, %s_size, &model);\n"
             " *\n"
             " * The array is 64-byte aligned, so the weights are read where they are. */\n"
             % (name, n, source_name, name, name, name, name))
    g = guard_of(header_name)
    h = (about + "#ifndef %s\n#define %s\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
         "extern const unsigned char %s[%d];\n"
         "extern const unsigned long %s_size;\n\n"
         "#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s */\n" % (g, g, name, n, name, g))
    c = (about + "#include \"%s\"\n\n"
         "#if defined(__GNUC__) || defined(__clang__)\n"
         "__attribute__((aligned(64))) const unsigned char %s[%d] = {\n"
         "#else\n"
         "_Alignas(64) const unsigned char %s[%d] = {\n"
         "#endif\n%s\n};\n\n"
         "const unsigned long %s_size = %dUL;\n"
         % (header_name, name, n, name, n, byte_rows(data), name, n))
    return h, c


# ---- reading an .npz with the standard library only --------------------------

_NPY_TYPES = {"|u1": ("B", 1), "<u1": ("B", 1), "|i1": ("b", 1), "<i2": ("h", 2),
              "<i4": ("i", 4), "<i8": ("q", 8), "<u4": ("I", 4), "<u8": ("Q", 8)}


def read_npy(raw, what):
    """(shape, flat list of ints) of an integer .npy array (C order)."""
    if raw[:6] != b"\x93NUMPY":
        raise ValueError("%s is not a .npy array" % what)
    major = raw[6]
    if major == 1:
        hlen, = struct.unpack_from("<H", raw, 8)
        start = 10
    else:
        hlen, = struct.unpack_from("<I", raw, 8)
        start = 12
    header = ast.literal_eval(raw[start:start + hlen].decode("latin1"))
    if header.get("fortran_order"):
        raise ValueError("%s: Fortran-ordered arrays are not supported" % what)
    descr = header["descr"]
    if descr not in _NPY_TYPES:
        raise ValueError("%s: element type %r is not an integer type this script reads"
                         % (what, descr))
    code, size = _NPY_TYPES[descr]
    shape = tuple(header["shape"])
    count = 1
    for d in shape:
        count *= d
    body = raw[start + hlen:start + hlen + count * size]
    if len(body) != count * size:
        raise ValueError("%s is truncated" % what)
    return shape, list(struct.unpack("<%d%s" % (count, code), body))


def read_expected(path):
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        for key in ("x.npy", "classes.npy"):
            if key not in names:
                raise ValueError("%s has no array %r" % (path, key[:-4]))
        xs, x = read_npy(z.read("x.npy"), path + ":x")
        cs, classes = read_npy(z.read("classes.npy"), path + ":classes")
    if len(xs) != 4 or len(cs) != 1 or cs[0] != xs[0]:
        raise ValueError("%s: expected x [N, H, W, C] and classes [N], got %s and %s"
                         % (path, xs, cs))
    if any(v < 0 or v > 255 for v in x):
        raise ValueError("%s: x is not uint8" % path)
    return xs, bytes(x), classes


def inputs_header(name, header_name, shape, x, classes, source_name):
    n, h, w, c = shape
    per = h * w * c
    g = guard_of(header_name)
    rows = []
    for i in range(n):
        rows.append("    { /* image %d, expected class %d */\n%s\n    }," % (
            i, classes[i], byte_rows(x[i * per:(i + 1) * per], indent="        ")))
    return ("/* Test images for the model %(name)s and the classes the Python model\n"
            " * predicts for them (from %(src)s), generated by examples/c/bin2c.py.\n"
            " * Images are uint8 [%(h)d][%(w)d][%(c)d] (NHWC). */\n"
            "#ifndef %(g)s\n#define %(g)s\n\n"
            "#define %(N)s_INPUT_COUNT %(n)d\n"
            "#define %(N)s_INPUT_BYTES %(per)d\n\n"
            "static const unsigned char %(name)s_inputs[%(n)d][%(per)d] = {\n%(rows)s\n};\n\n"
            "static const int %(name)s_expected_classes[%(n)d] = {\n    %(cls)s\n};\n\n"
            "#endif /* %(g)s */\n"
            % dict(name=name, src=source_name, h=h, w=w, c=c, g=g, N=name.upper(), n=n,
                   per=per, rows="\n".join(rows),
                   cls=", ".join("%d" % v for v in classes)))


def idx_bytes(dims, payload):
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(">%dI" % len(dims), *dims) + payload


def write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    print("wrote %s (%d bytes)" % (path, len(data)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", metavar="MODEL.bnn")
    ap.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="writes OUT.h and OUT.c")
    ap.add_argument("--name", default=None, help="the C array's name (default: OUT's stem)")
    ap.add_argument("--expected", metavar="NPZ", default=None,
                    help="images x and expected classes: also write OUT_inputs.h")
    ap.add_argument("--idx", metavar="DIR", default=None,
                    help="with --expected: also write the images and classes as IDX files "
                    "and a copy of the model to DIR")
    args = ap.parse_args(argv)

    with open(args.model, "rb") as f:
        data = f.read()
    try:
        info = check_model(data, args.model)
        root, ext = os.path.splitext(args.output)
        if ext not in (".c", ".h", ".bnn"):
            root = args.output
        stem = os.path.basename(root)
        if not stem:
            raise ValueError("%r has no file name" % args.output)
        name = args.name if args.name is not None else c_identifier(stem)
        if not re.match(r"[A-Za-z_][A-Za-z0-9_]*\Z", name):
            raise ValueError("the C array name must be an identifier, got %r" % name)
        source_name = os.path.basename(args.model)
        h_text, c_text = model_sources(data, name, stem + ".h", source_name)
        extra = []
        if args.expected is not None:
            shape, x, classes = read_expected(args.expected)
            if tuple(shape[1:]) != info["input_shape"]:
                raise ValueError("%s: images are %s, the model takes %s"
                                 % (args.expected, "x".join(map(str, shape[1:])),
                                    "x".join(map(str, info["input_shape"]))))
            if any(not 0 <= v < info["classes"] for v in classes):
                raise ValueError("%s: a class is outside 0..%d" % (args.expected,
                                                                   info["classes"] - 1))
            inputs_name = stem + "_inputs.h"
            extra.append((root + "_inputs.h",
                          inputs_header(name, inputs_name, shape, x, classes,
                                        os.path.basename(args.expected))))
            if args.idx is not None:
                n, h, w, c = shape
                dims = [n, h, w] if c == 1 else [n, h, w, c]
                os.makedirs(args.idx, exist_ok=True)
                write(os.path.join(args.idx, name + "-images.idx"), idx_bytes(dims, x))
                write(os.path.join(args.idx, name + "-labels.idx"),
                      idx_bytes([n], bytes(classes)))
                write(os.path.join(args.idx, name + ".bnn"), data)
        elif args.idx is not None:
            raise ValueError("--idx needs --expected")
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        print("bin2c: %s" % e, file=sys.stderr)
        return 1
    write(root + ".h", h_text.encode("ascii"))
    write(root + ".c", c_text.encode("ascii"))
    for path, text in extra:
        write(path, text.encode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
