"""Argument checks shared by pybnn's public functions.  Every error names
the argument and the value it got, in the words libbnn's own reports use
("padding must be >= 0, got -1")."""
from __future__ import annotations

import math
import operator

import numpy as np


def show(v):
    """A value as an error message quotes it: the repr of a scalar, a
    string or a short tuple; the kind (and dtype and shape) of anything
    bigger."""
    if isinstance(v, np.ndarray):
        return _article("%s array of shape %r" % (v.dtype, v.shape))
    if v is None or isinstance(v, (bool, int, float, str, bytes, np.generic)):
        return repr(v)
    if isinstance(v, (tuple, list)) and len(v) <= 8:
        return repr(v)
    return _article(type(v).__name__)


def _article(noun):
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def integer(v, name, minimum=None):
    """v as an int (anything operator.index takes), at least `minimum`."""
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError("%s must be an int, got %s" % (name, show(v))) from None
    if minimum is not None and i < minimum:
        raise ValueError("%s must be >= %d, got %d" % (name, minimum, i))
    return i


def real(v, name, minimum=None, above=None, below=None):
    """v as a finite float: >= minimum, > above, < below where given."""
    if isinstance(v, (str, bytes)) or not np.isscalar(v) and np.ndim(v) != 0:
        raise TypeError("%s must be a real number, got %s" % (name, show(v)))
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError("%s must be a real number, got %s" % (name, show(v))) from None
    if not math.isfinite(f):
        raise ValueError("%s must be finite, got %r" % (name, f))
    if minimum is not None and f < minimum:
        raise ValueError("%s must be >= %r, got %r" % (name, minimum, f))
    if above is not None and f <= above:
        raise ValueError("%s must be > %r, got %r" % (name, above, f))
    if below is not None and f >= below:
        raise ValueError("%s must be < %r, got %r" % (name, below, f))
    return f


def nonfinite(a, name):
    """The message naming the first non-finite entry of the float array a,
    or None when every entry is finite."""
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size == 0:
        return None
    i = int(bad[0])
    return "%s must be finite, got %r at index %d" % (name, float(a.reshape(-1)[i]), i)


def finite(a, name):
    """Raise ValueError naming the first non-finite entry of a."""
    msg = nonfinite(a, name)
    if msg is not None:
        raise ValueError(msg)
