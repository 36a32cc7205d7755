"""Checkpoints of `pybnn train`: plain .npz files (no pickle) holding the
model's state_dict() (weights, batch-norm statistics, generator states),
the optimizer's moments ("opt." keys) and the run's state as JSON
("state": configuration, epoch, history, the shuffling generator)."""
from __future__ import annotations

import json
import os

import numpy as np

from .recipes import build_model

__all__ = ["save", "read", "load", "load_checkpoint", "load_model_state", "run_state",
           "run_config", "ADDED_SETTINGS"]

# Settings of the run configuration that checkpoints written before them
# lack, with the value such a checkpoint was trained with.
ADDED_SETTINGS = {"backward": "float", "stochastic": False, "augment": False}


def save(path, model, opt, state):
    """Write model + optimizer + run state to `path` through a temporary
    file and os.replace: never a half-written checkpoint."""
    arrays = dict(model.state_dict())
    for k, v in opt.state_dict().items():
        arrays["opt." + k] = np.asarray(v)
    arrays["state"] = np.array(json.dumps(state))
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def read(path):
    """The arrays of a checkpoint by name; ValueError naming the file for
    one that cannot be read (missing, truncated, not a zip, not .npz, a
    damaged or unsupported zip member)."""
    try:
        z = np.load(path, allow_pickle=False)
        if not hasattr(z, "files"):             # a .npy array, not an .npz archive
            raise ValueError("not an .npz archive")
        with z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        # zipfile and numpy raise many kinds for damaged bytes (BadZipFile,
        # EOFError, NotImplementedError for an unknown zip version,
        # zlib.error, ...): each is the same "cannot read" to the caller
        raise ValueError("cannot read checkpoint %s: %s"
                         % (path, str(e) or type(e).__name__)) from e


def run_state(arrays, path):
    """The JSON run state of a checkpoint's arrays."""
    if "state" not in arrays:
        raise ValueError("%s is not a pybnn checkpoint" % path)
    try:
        return json.loads(str(arrays["state"]))
    except ValueError as e:
        raise ValueError("%s is not a pybnn checkpoint: its state is not JSON (%s)"
                         % (path, e)) from e


def run_config(state):
    """The configuration of a run state with every setting named: a setting
    an older checkpoint lacks takes its ADDED_SETTINGS value."""
    return {**ADDED_SETTINGS, **state["config"]}


def load_model_state(model, arrays, path):
    """Load a checkpoint's model arrays into `model`; ValueError naming the
    file and the entry that does not fit."""
    try:
        model.load_state_dict(arrays)
    except ValueError as e:
        raise ValueError("checkpoint %s does not match the model: %s" % (path, e)) from e


def load(path):
    """(the Sequential stored in a checkpoint, in eval mode; its run state)."""
    arrays = read(path)
    state = run_state(arrays, path)
    if not isinstance(state, dict) or "config" not in state or "input_shape" not in state:
        raise ValueError("%s is not a pybnn checkpoint" % path)
    try:
        cfg = run_config(state)
        model = build_model(cfg, tuple(state["input_shape"]), cfg["seed"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError("checkpoint %s holds a configuration pybnn cannot build: %s"
                         % (path, e)) from e
    load_model_state(model, arrays, path)
    return model.eval(), state


def load_checkpoint(path):
    """The Sequential stored in a checkpoint, in eval mode."""
    return load(path)[0]
