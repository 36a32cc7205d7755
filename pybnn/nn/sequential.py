"""Sequential: a chain of layers trained with hand-written backward passes
and evaluated, in eval() of a binary network, by the C runtime on the
bytes that export writes."""
from __future__ import annotations

import copy
from time import perf_counter

import numpy as np

from .._args import show
from ..deploy import runtime, writer
from ..deploy.fold import FoldError
from ..ops import PackedTensor
from .base import MaskedPacked, scale_input

__all__ = ["Sequential", "MODES"]

MODES = ("bnn", "bc", "fp")


class Sequential:
    """A chain of layers with hand-written backward passes.

    The layers decide what the network is (they are built binary or float:
    `BinaryDense(..., binary=False)`, `Sign()` or `HardTanh()`); `mode`
    says which of the paper's kinds that makes: "bnn" (binary activations),
    "bc" (BinaryConnect: binary weights, float activations) or "fp"
    (float).  The first layer takes uint8 inputs scaled x/128 - 1.

    In eval() a "bnn" network predicts through the C runtime
    (pybnn.deploy.runtime, libbnn's bnn_model_run) on the bytes export()
    writes, built in memory: evaluation is deployment, the same code.
    "bc"/"fp" networks, and binary ones with float (binary=False) weight
    layers, are evaluated through their layers (with a warning for the
    latter); a binary network the format refuses otherwise raises FoldError.

    recompute=True: a BatchNorm after a binary layer recomputes its input
    in backward from the layer's kept (packed) input instead of storing it:
    one more XNOR product, far less memory."""

    def __init__(self, layers, recompute=True):
        try:
            self.layers = list(layers)
        except TypeError:
            raise TypeError("layers must be a list of pybnn layers, got %s"
                            % show(layers)) from None
        if not self.layers:
            raise ValueError("layers must hold at least one layer, got %s" % show(layers))
        for i, layer in enumerate(self.layers):
            if getattr(layer, "family", None) is None:
                raise TypeError("layers must hold pybnn layers, got %s at index %d"
                                % (show(layer), i))
            if layer.name is None:
                layer.name = "layer %d (%s)" % (i, getattr(layer, "label", type(layer).__name__))
        self.training = True
        self._deployed = {}
        # a PhaseTimes to collect each layer's forward and backward seconds
        # (pybnn bench train sets one); None: no timing
        self.timings = None
        self.recompute = bool(recompute)
        # Hooks of data-parallel training (pybnn.distributed), None in one
        # process: `shard`, this rank's part of the global batch, which the
        # layers see during forward and backward; `grad_ready(layer)`,
        # called as soon as a layer's backward has written its gradients.
        self.shard = None
        self.grad_ready = None
        self._wire_recompute()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_deployed"] = {}          # the runtime is rebuilt from the layers
        state["shard"] = state["grad_ready"] = None   # a step's hooks, not the model
        return state

    @property
    def mode(self):
        """"bnn" with binary activations (or none and binary weights), "bc"
        with float activations after binary weights, "fp" otherwise."""
        acts = [l for l in self.layers if l.family == "activation"]
        weights = [l for l in self.layers if l.family in ("dense", "conv")]
        if any(a.binary for a in acts):
            return "bnn"
        if any(w.binary for w in weights):
            return "bc" if acts else "bnn"
        return "fp"

    def _wire_recompute(self):
        """With recompute, a BatchNorm after a weight layer of a "bnn"
        network (optionally through a MaxPool2d) recomputes its input in
        backward from the layer's kept input.  With recompute=False batch
        norm stores its float input (4 bytes per element) and saves that
        product: faster where memory is no concern (an MLP at batch 100
        keeps 1.6 MB per 4096-wide layer)."""
        bnn = self.mode == "bnn"
        for i, layer in enumerate(self.layers):
            if layer.family != "norm":
                continue
            layer.recompute = None
            if not self.recompute or i == 0 or not bnn:
                continue
            prev, pool = self.layers[i - 1], None
            if prev.family == "pool" and i >= 2:
                pool, prev = prev, self.layers[i - 2]
            if prev.family in ("dense", "conv"):
                if pool is None:
                    layer.recompute = prev.recompute_output
                else:
                    layer.recompute = (lambda p=prev, q=pool: q.forward(p.recompute_output(), False))

    # ---- state ---------------------------------------------------------------

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def state_dict(self):
        """Every layer's state_dict(), keys prefixed "L<index>." (the live
        arrays; a checkpoint is this plus the optimizer's)."""
        return {"L%d.%s" % (i, k): v for i, layer in enumerate(self.layers)
                for k, v in layer.state_dict().items()}

    def load_state_dict(self, state):
        """Load what state_dict() gave (keys of other layers are ignored);
        raises ValueError naming a missing or misshapen entry."""
        for i, layer in enumerate(self.layers):
            prefix = "L%d." % i
            sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            layer.load_state_dict(sub)
        self._deployed = {}

    def kept_bytes(self):
        """Bytes kept for backward by the last training forward."""
        return sum(layer.kept_bytes() for layer in self.layers)

    def train(self):
        self.training = True
        self._deployed = {}
        return self

    def eval(self):
        self.training = False
        self._deployed = {}
        return self

    # ---- training path ---------------------------------------------------------

    def _first_compute(self):
        """The first layer that is not a Dropout (what the inputs meet)."""
        return next((l for l in self.layers if l.family != "dropout"), self.layers[0])

    def _flat_input(self):
        return self._first_compute().family == "dense"

    def check_input(self, in_shape):
        """Shape of the output for an input [N, ...]; errors name the layer
        whose input does not fit."""
        shape = tuple(in_shape)
        if self._flat_input() and len(shape) > 2:
            shape = (shape[0], int(np.prod(shape[1:])))
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def forward(self, x, training=None):
        """Float scores of uint8 inputs, through the layers (training path)."""
        training = self.training if training is None else training
        h = np.asarray(x)
        if h.dtype != np.uint8:
            raise TypeError("inputs must be uint8 pixels, got %s" % h.dtype)
        if self._flat_input() and h.ndim > 2:
            h = h.reshape(h.shape[0], int(np.prod(h.shape[1:])))   # images into a dense first layer
        if self.layers[0].family not in ("dense", "conv"):
            # a weight layer first keeps the uint8 pixels (1 byte each) for
            # backward and scales them as x/128 - 1 when it needs floats
            h = scale_input(h)
        t = self.timings
        shard = self._split_shard(training)
        for i, layer in enumerate(self.layers):
            # the input of every layer but the first is this pass's own temporary
            # (only for this call: a layer used on its own never overwrites)
            layer.overwrite_input = i > 0
            if shard is not None:       # (set only when split: None is the class's)
                layer.shard = shard
            try:
                if t is None:
                    h = layer.forward(h, training)
                else:
                    t0 = perf_counter()
                    h = layer.forward(h, training)
                    t.add("forward", layer.name, perf_counter() - t0)
            finally:
                layer.overwrite_input = False
                if shard is not None:
                    del layer.shard
        return np.asarray(h, dtype=np.float32)

    def _split_shard(self, training=True):
        """The shard the layers see: a split global batch in training, else
        None (the one-process arithmetic)."""
        s = self.shard
        return s if training and s is not None and s.split else None

    def backward(self, grad, input_grad=True):
        """Backpropagate d(loss)/d(scores) through every layer, accumulating
        parameter gradients (the inputs' own gradient is not computed: the
        first layer with parameters skips it, layers before it only drop
        what they kept)."""
        first = next((i for i, l in enumerate(self.layers) if l.parameters()), 0)
        t = self.timings
        shard = self._split_shard()
        for i in range(len(self.layers) - 1, first - 1, -1):
            layer = self.layers[i]
            t0 = perf_counter() if t is not None else 0.0
            # the gradient handed down is this pass's own temporary, except
            # the caller's d(loss)/d(scores)
            layer.overwrite_grad = i < len(self.layers) - 1
            if shard is not None:
                layer.shard = shard
            try:
                if i > first:
                    grad = layer.backward(grad)
                else:
                    layer.backward(grad, input_grad=False)
            finally:
                layer.overwrite_grad = False
                if shard is not None:
                    del layer.shard
            if t is not None:
                t.add("backward", layer.name, perf_counter() - t0)
            if self.grad_ready is not None:
                self.grad_ready(layer)
        for layer in self.layers[:first]:
            layer.release()

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def memory_plan(self, batch_size, input_shape, optimizer=None, available=None):
        """The bytes a training step at `batch_size` needs, as a dict:
        parameters, gradients, optimizer_state (the arrays of `optimizer`,
        an Optimizer over these parameters; None: two float32 moments per
        parameter, as Adam keeps), kept_per_sample (what
        the layers keep for backward), step_per_sample and step_fixed (the
        peak of a forward + backward step's own allocations, measured with
        tracemalloc on a copy of the model at two small batches: its slope
        and intercept, kept state included), predicted (all of it at
        batch_size, without the process's own baseline), and
        largest_batch that fits `available` bytes (default: MemAvailable of
        /proc/meminfo, where it exists) beside the fixed parts.
        input_shape excludes the batch, e.g. (784,) or (32, 32, 3)."""
        import tracemalloc
        params = self.parameters()
        plan = dict(parameters=sum(p.value.nbytes for p in params),
                    gradients=sum(p.value.nbytes for p in params))
        plan["optimizer_state"] = (2 * plan["parameters"] if optimizer is None else
                                   sum(a.nbytes for a in optimizer.m + optimizer.v))
        probe = Sequential(copy.deepcopy(self.layers), recompute=self.recompute)
        peaks, kept = [], 0.0

        def step(b):
            x = np.zeros((b,) + tuple(input_shape), np.uint8)
            probe.zero_grad()
            scores = probe.forward(x, True)
            kept_now = sum(layer.kept_bytes() for layer in probe.layers) / b
            probe.backward(np.ones_like(scores) / np.float32(b))
            return kept_now

        was = tracemalloc.is_tracing()
        if not was:
            tracemalloc.start()
        try:
            # a first step allocates what persists across steps (the shared
            # backward workspace, cached buffers): counted as fixed
            start = tracemalloc.get_traced_memory()[0]
            step(2)
            persistent = tracemalloc.get_traced_memory()[0] - start
            for b in (2, 6):
                tracemalloc.reset_peak()
                base = tracemalloc.get_traced_memory()[0]
                kept = step(b)
                peaks.append(tracemalloc.get_traced_memory()[1] - base)
        finally:
            if not was:
                tracemalloc.stop()
        per_sample = max(0.0, (peaks[1] - peaks[0]) / 4)
        plan.update(kept_per_sample=int(round(kept)), step_per_sample=int(round(per_sample)),
                    step_fixed=int(persistent + max(0.0, peaks[0] - 2 * per_sample)))
        fixed = plan["parameters"] + plan["gradients"] + plan["optimizer_state"] + plan["step_fixed"]
        plan["predicted"] = int(fixed + batch_size * per_sample)
        if available is None:
            available = _mem_available()
        plan["available"] = available
        plan["largest_batch"] = (None if available is None or per_sample <= 0 else
                                 max(0, int((available - fixed) // per_sample)))
        plan["batch_size"] = int(batch_size)
        return plan


    # ---- evaluation and deployment ---------------------------------------------

    def export(self, path, input_shape=None, format="bnn", name=None):
        """Write the folded network for the C runtime: a .bnn file
        (docs/model-format.md) or, with format="c", a C array in
        <stem>.h/<stem>.c.  input_shape is the uint8 input (H, W, C), e.g.
        (28, 28, 1); see pybnn.deploy.export.  Returns the paths written."""
        return writer.export(self, path, input_shape=input_shape, format=format, name=name)

    def deployed(self, input_shape=None):
        """The C runtime (a pybnn.deploy.DeployedModel) running the bytes
        export() writes for this model, built in memory and kept until the
        next train()/eval()/load_state_dict().  input_shape as in export()."""
        key = None if input_shape is None else tuple(int(d) for d in input_shape)
        model = self._deployed.get(key)
        if model is None:
            model = runtime.DeployedModel(writer.model_bytes(self, key), "<eval() of %s>"
                                          % type(self).__name__)
            self._deployed[key] = model
        return model

    def predict(self, x_uint8, batch_size=1024):
        """(scores float32 [N, classes], classes int64 [N]) of uint8 inputs.
        In eval() of a "bnn" network this is the C runtime on the exported
        bytes (deployed()); otherwise the layers' forward pass."""
        x = np.asarray(x_uint8)
        if x.dtype != np.uint8:
            raise TypeError("predict takes uint8 inputs, got %s" % x.dtype)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1, got %r" % (batch_size,))
        out_shape = self.check_input(x.shape)    # errors name the layer
        deployed = None
        key = None if self._flat_input() else tuple(int(d) for d in x.shape[1:])
        if not self.training and self.mode == "bnn":
            try:
                # None in the cache: this input goes through the float layers
                deployed = self._deployed[key] if key in self._deployed else self.deployed(key)
            except FoldError as e:
                if not any(l.family in ("dense", "conv") and not l.binary for l in self.layers):
                    raise
                # float first/last layers: evaluate through the float layers
                # (what a runtime with float layers computes), until train()/eval()
                self._deployed[key] = None
                import warnings
                warnings.warn("predict: %s; evaluating through the float layers" % e,
                              RuntimeWarning, stacklevel=2)
        if len(x) == 0:
            return np.zeros((0,) + tuple(out_shape[1:]), np.float32), np.zeros(0, np.int64)
        if deployed is not None:
            if self._flat_input():
                x = x.reshape(len(x), -1)
            return deployed.predict(x, batch_size=batch_size)
        scores = np.concatenate([self.forward(x[i:i + batch_size], training=False)
                                 for i in range(0, len(x), batch_size)])
        return scores, np.argmax(scores, axis=1).astype(np.int64)

    def summary(self, input_shape, print_fn=print):
        """Per layer: output shape, parameters, binary and float MACs per
        sample, weight storage (deployed: 1 bit per binary weight, float32
        for the rest) against float32, and the bytes per sample a training
        step keeps for backward (measured on a copy with a batch of 2).
        input_shape excludes the batch, e.g. (784,) or (32, 32, 3).
        Returns the totals as a dict."""
        probe = Sequential(copy.deepcopy(self.layers), recompute=self.recompute)
        shape = (2,) + tuple(input_shape)
        if self._flat_input() and len(shape) > 2:
            shape = (2, int(np.prod(shape[1:])))
        h = np.zeros(shape, dtype=np.uint8)
        bnn = self.mode == "bnn"
        rows, tot = [], dict(params=0, binary_macs=0, float_macs=0, bits=0, float_bits=0, kept=0,
                             kept_step=0)
        for layer in probe.layers:
            out = layer.forward(h, True)
            oshape = tuple(out.shape)
            nparam = sum(p.value.size for p in layer.parameters())
            bmacs = fmacs = 0
            if layer.family in ("dense", "conv"):
                macs = layer.fan_in() * int(np.prod(oshape[1:]))
                binary_in = isinstance(h, (PackedTensor, MaskedPacked))
                if layer is probe.layers[0] and bnn:
                    binary_in = False  # the 8-bit first layer: integer MACs, counted as float
                if layer.binary and binary_in:
                    bmacs = macs
                else:
                    fmacs = macs
                bits = layer.W.value.size * (1 if layer.binary else 32)
            else:
                bits = 32 * nparam
            kept = layer.kept_bytes() / 2
            tot["kept_step"] += layer.kept_step_bytes()
            rows.append((layer.name, oshape[1:], nparam, bmacs, fmacs, bits, kept))
            tot["params"] += nparam
            tot["binary_macs"] += bmacs
            tot["float_macs"] += fmacs
            tot["bits"] += bits
            tot["float_bits"] += 32 * nparam
            tot["kept"] += kept
            h = out
        print_fn("%-28s %-16s %10s %12s %12s %12s %12s" % (
            "layer", "output", "params", "binary MACs", "float MACs", "weight bits", "kept B/sample"))
        for r in rows:
            print_fn("%-28s %-16s %10d %12d %12d %12d %12.0f" % (r[0], r[1], r[2], r[3], r[4], r[5], r[6]))
        print_fn("total: %d parameters, %d binary + %d float MACs per sample; weights %.1f KiB "
                 "deployed vs %.1f KiB float32; training keeps %.1f KiB per sample for backward "
                 "(+ %.1f KiB of packed weights per step)"
                 % (tot["params"], tot["binary_macs"], tot["float_macs"], tot["bits"] / 8192,
                    tot["float_bits"] / 8192, tot["kept"] / 1024, tot["kept_step"] / 1024))
        tot["kept_bytes_per_sample"] = tot.pop("kept")
        tot["kept_bytes_per_step"] = tot.pop("kept_step")
        return tot


def _mem_available():
    """MemAvailable of /proc/meminfo in bytes, or None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def format_memory_plan(plan):
    """One paragraph of Sequential.memory_plan()'s figures."""
    mb = lambda b: "%.1f MB" % (b / 2 ** 20)       # noqa: E731
    text = ("memory plan at batch %d: parameters %s, gradients %s, optimizer state %s; "
            "kept for backward %.1f KB/sample; a step's peak %.2f MB/sample + %s of "
            "workspace: about %s in all"
            % (plan["batch_size"], mb(plan["parameters"]), mb(plan["gradients"]),
               mb(plan["optimizer_state"]), plan["kept_per_sample"] / 1024,
               plan["step_per_sample"] / 2 ** 20, mb(plan["step_fixed"]), mb(plan["predicted"])))
    if plan.get("largest_batch") is not None:
        text += "; the largest batch that fits the %.1f GB available: %d" % (
            plan["available"] / 2 ** 30, plan["largest_batch"])
    return text
