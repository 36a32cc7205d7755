"""The networks of pybnn's training recipes in PyTorch, for timing and checking.

`build(cfg, input_shape)` turns a recipe config (pybnn.recipes.RECIPES[...]
with any width/layers overrides) into a `TorchStep`: a torch model, pybnn's
Adam and pybnn's loss, and `TorchStep.step(x_uint8, y)` runs one training
step the way pybnn's loop in pybnn/train.py does (zero_grad, forward, loss,
backward, optimizer step).  `compare_first_step` checks one step of both
side by side on the same weights and batch.

What is the same as pybnn
  * the layers, one torch module per pybnn layer in the same order
    (Dropout on the input, BinaryDense/BinaryConv2d, MaxPool2d before
    BatchNorm, Sign, Dropout, Flatten), so weights copy index by index;
  * the input x/128 - 1 of uint8 pixels; NHWC images are permuted to NCHW
    once at the input, and Flatten permutes back to pybnn's NHWC order, so
    dense weights after a Flatten need no reordering;
  * binary weights sign(W) with sign(0) = +1 and the straight-through
    gradient to the latent weights (identity); no bias; zero padding 1;
  * Sign: x < 0 -> -1 else +1, gradient passed where |x| <= 1 (inclusive);
    HardTanh ("bc"/"fp" modes) as clamp, whose gradient is inclusive too
    (torch's nn.Hardtanh is not);
  * BatchNorm over the channels with biased batch variance, eps 1e-4,
    momentum 0.1, gamma/beta, and pybnn's running statistics: a running
    mean and a running *inverse std* (torch keeps a running variance);
    its forward is written out as (x - mean) * (invstd * gamma) + beta with
    the mean a plain sum / n, so an integer pre-activation equal to its
    batch mean gives exactly beta (0 -> Sign +1) as in pybnn -- torch's fused
    batch norm (x * a + (beta - mean * a)) lands within rounding on either
    side of 0 there and flips such signs; the backward is torch's native one;
  * max-pooling gradients go to the first maximum of a window (torch's CPU
    kernel scans windows row-major with a strict >, as pybnn's argmax);
  * the squared hinge loss, mean over batch x classes;
  * Adam (and AdaMax) in pybnn's form -- the step size
    lr * sqrt(1 - b2^t) / (1 - b1^t) with eps added to sqrt(v) (Kingma &
    Ba's "efficient" version, not torch.optim.Adam's placement of eps) --
    with each binary layer's learning rate scaled by its Glorot factor
    1/sqrt(1.5/(fan_in+fan_out)) and its latent weights clipped to [-1, 1]
    after each step; gamma/beta use the plain rate;
  * the initial latent weights: drawn from numpy's default_rng(seed) in the
    same order and shapes as pybnn.recipes.build_model, so both start equal.

What cannot be the same
  * summation order: float matmuls/convolutions of the first layer, the
    batch-norm statistics and the gradient reductions sum in a different
    order (pybnn: double sums in batch norm, XNOR popcounts, its own BLAS);
    products of +-1 values are exact integers in both;
  * precision: pybnn's batch norm, loss and optimizer run in double per
    element and store float32; here everything is float32;
  * dropout masks: torch's generator, not pybnn's (same distribution,
    inverted dropout scaled by 1/(1-p));
  * a pre-activation that lands within rounding of 0 in the first layer can
    take a different sign in the two, after which that unit differs by 2.
  Not built here: shift-based batch norm and shift-based AdaMax, stochastic
  Sign.  Evaluation (model.eval()) uses the running statistics in float
  layers; pybnn evaluates "bnn" networks through its deployed C runtime.
"""
from __future__ import annotations

import math
import types

import numpy as np

__all__ = ["build", "TorchStep", "compare_first_step", "torch_version"]


def torch_version():
    import torch
    return torch.__version__


def _glorot(fan_in, fan_out):
    """(init limit, learning-rate scale), as pybnn.nn.base.glorot."""
    return math.sqrt(6.0 / (fan_in + fan_out)), 1.0 / math.sqrt(1.5 / (fan_in + fan_out))


def _modules():
    """The torch layers (defined on first use, so importing this module
    does not import torch)."""
    global _M
    if _M is not None:
        return _M
    import torch
    from torch import nn
    import torch.nn.functional as F

    one = torch.ones(())

    def sign(x, fast):
        # exact: x < 0 -> -1, else +1 (-0.0 and NaN too), as pybnn packs;
        # fast: copysign, twice as fast here, and the same except at -0.0
        return torch.copysign(one, x) if fast else torch.where(x < 0, -1.0, 1.0).to(x.dtype)

    class SignSTE(torch.autograd.Function):
        """sign (0 -> +1), gradient passed where |x| <= 1."""

        @staticmethod
        def forward(ctx, x, fast=False):
            ctx.save_for_backward(x)
            return sign(x, fast)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (x.abs() <= 1).to(grad.dtype), None

    class SignWeights(torch.autograd.Function):
        """sign (0 -> +1) of latent weights, gradient passed unchanged."""

        @staticmethod
        def forward(ctx, w, fast=False):
            return sign(w, fast)

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    class BinaryDense(nn.Module):
        def __init__(self, w, binary, lr_scale):
            super().__init__()
            self.weight = nn.Parameter(torch.from_numpy(np.ascontiguousarray(w, np.float32)))
            self.binary, self.lr_scale = binary, lr_scale

        def forward(self, x):
            w = SignWeights.apply(self.weight, self.fast) if self.binary else self.weight
            return F.linear(x, w)

    class BinaryConv2d(nn.Module):
        def __init__(self, w_ohwc, binary, lr_scale, padding):
            super().__init__()
            w = np.ascontiguousarray(np.transpose(w_ohwc, (0, 3, 1, 2)), np.float32)   # OIHW
            self.weight = nn.Parameter(torch.from_numpy(w))
            self.binary, self.lr_scale, self.padding = binary, lr_scale, padding

        def forward(self, x):
            w = SignWeights.apply(self.weight, self.fast) if self.binary else self.weight
            return F.conv2d(x, w, padding=self.padding)

    class BatchNormFn(torch.autograd.Function):
        """Training batch norm over dim 1 -> (y, mean, invstd).  y is computed
        as (x - mean) * (invstd * gamma) + beta, so an x equal to its batch
        mean gives exactly beta, as in pybnn (0 with beta = 0: Sign's +1).
        torch's fused batch norm computes x * a + (beta - mean * a), which
        lands within rounding on either side of 0 there and flips signs.
        The backward pass is torch's native one."""

        @staticmethod
        def forward(ctx, x, gamma, beta, eps):
            dims = [0] + list(range(2, x.dim()))
            shape = (1, -1) + (1,) * (x.dim() - 2)
            # the mean as a sum / n: exact for the integer sums of +-1 products
            # (torch.var_mean's Welford update is not, and then misses ties)
            mean = x.mean(dims)
            d = x - mean.view(shape)
            invstd = torch.rsqrt(d.square().mean(dims) + eps)
            y = d.mul_((invstd * gamma).view(shape)).add_(beta.view(shape))
            ctx.save_for_backward(x, gamma, mean, invstd)
            ctx.eps = eps
            ctx.mark_non_differentiable(mean, invstd)
            return y, mean, invstd

        @staticmethod
        def backward(ctx, dy, _dmean, _dinvstd):
            x, gamma, mean, invstd = ctx.saved_tensors
            dx, dgamma, dbeta = torch.ops.aten.native_batch_norm_backward(
                dy, x, gamma, None, None, mean, invstd, True, ctx.eps, [True, True, True])
            return dx, dgamma, dbeta, None

    class BatchNorm(nn.Module):
        """Over dim 1 ([N, C] or [N, C, H, W]); biased batch variance; running
        mean and running inverse std (pybnn's statistics)."""

        def __init__(self, features, eps=1e-4, momentum=0.1):
            super().__init__()
            # pybnn passes eps to C as a float32
            self.eps, self.momentum = float(np.float32(eps)), float(momentum)
            self.weight = nn.Parameter(torch.ones(features))
            self.bias = nn.Parameter(torch.zeros(features))
            self.register_buffer("running_mean", torch.zeros(features))
            self.register_buffer("running_invstd", torch.ones(features))

        def forward(self, x):
            if self.training:
                y, mean, invstd = BatchNormFn.apply(x, self.weight, self.bias, self.eps)
                with torch.no_grad():
                    m = self.momentum
                    self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                    self.running_invstd.mul_(1 - m).add_(invstd, alpha=m)
                return y
            shape = (1, -1) + (1,) * (x.dim() - 2)
            scale = (self.weight * self.running_invstd).view(shape)
            return (x - self.running_mean.view(shape)) * scale + self.bias.view(shape)

    class Sign(nn.Module):
        fast = False

        def forward(self, x):
            return SignSTE.apply(x, self.fast)

    class HardTanh(nn.Module):
        def forward(self, x):
            return torch.clamp(x, -1.0, 1.0)      # gradient 1 where |x| <= 1, inclusive

    class Flatten(nn.Module):
        """NCHW -> [N, H*W*C] in pybnn's NHWC element order."""

        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    class Net(nn.Module):
        """The layers after the input: uint8 [N, ...] -> x/128 - 1, NHWC
        images permuted to NCHW, dense-first networks flattened."""

        def __init__(self, layers, flat_input):
            super().__init__()
            self.layers = nn.ModuleList(layers)
            self.flat_input = flat_input

        def forward(self, x_uint8):
            x = x_uint8
            if self.flat_input:
                x = x.reshape(x.shape[0], -1)
            elif x.dim() == 4:
                x = x.permute(0, 3, 1, 2).contiguous()
            h = x.to(torch.float32) * (1.0 / 128) - 1.0    # exact, as pybnn's scale_input
            for layer in self.layers:
                h = layer(h)
            return h

    _M = types.SimpleNamespace(torch=torch, nn=nn, F=F, BinaryDense=BinaryDense,
                               BinaryConv2d=BinaryConv2d, BatchNorm=BatchNorm, Sign=Sign,
                               HardTanh=HardTanh, Flatten=Flatten, Net=Net)
    return _M


_M = None


def _build_net(cfg, input_shape, seed, fast=False):
    """The torch Net of a recipe config, mirroring pybnn.recipes.build_model
    layer for layer (and drawing the same initial weights).  fast=True uses
    torch's own fused batch norm (BatchNorm1d/2d: what a PyTorch user
    writes, for timing) instead of the tie-exact one."""
    M = _modules()
    nn = M.nn
    rng = np.random.default_rng(seed)
    mode = cfg.get("mode", "bnn")
    if mode not in ("bnn", "bc", "fp"):
        raise ValueError("mode must be bnn, bc or fp, got %r" % (mode,))
    if cfg.get("bn", "standard") != "standard":
        raise NotImplementedError("only standard batch norm has a torch reference")
    binary = mode != "fp"

    def act():
        return M.Sign() if mode == "bnn" else M.HardTanh()

    def bn(features, spatial=False):
        if not fast:
            return M.BatchNorm(features)
        kind = nn.BatchNorm2d if spatial else nn.BatchNorm1d
        return kind(features, eps=float(np.float32(1e-4)), momentum=0.1)

    def dense(k, n):
        limit, scale = _glorot(k, n)
        w = rng.uniform(-limit, limit, (n, k))
        return M.BinaryDense(w, binary, scale if binary else 1.0)

    def conv(c, o):
        limit, scale = _glorot(9 * c, 9 * o)
        w = rng.uniform(-limit, limit, (o, 3, 3, c))
        return M.BinaryConv2d(w, binary, scale if binary else 1.0, padding=1)

    layers = []
    if cfg.get("dropout_in"):
        layers.append(nn.Dropout(cfg["dropout_in"]))
    if cfg["arch"] == "mlp":
        width = int(cfg["width"])
        k = int(np.prod(input_shape))
        for _ in range(int(cfg["layers"])):
            layers += [dense(k, width), bn(width), act()]
            if cfg.get("dropout"):
                layers.append(nn.Dropout(cfg["dropout"]))
            k = width
        layers += [dense(k, 10), bn(10)]
    elif cfg["arch"] == "vgg":
        w = int(cfg["width"])
        c, hw = input_shape[-1], input_shape[0]
        for ch in (w, 2 * w, 4 * w):
            layers += [conv(c, ch), bn(ch, True), act(),
                       conv(ch, ch), nn.MaxPool2d(2), bn(ch, True), act()]
            c, hw = ch, hw // 2
        layers.append(M.Flatten())
        k = hw * hw * c
        for _ in range(2):
            layers += [dense(k, 8 * w), bn(8 * w), act()]
            k = 8 * w
        layers += [dense(k, 10), bn(10)]
    else:
        raise ValueError("unknown architecture %r" % (cfg["arch"],))
    return M.Net(layers, flat_input=cfg["arch"] == "mlp")


class _TorchAdam:
    """torch.optim.Adam (multi-tensor) with one parameter group per Glorot
    learning-rate scale and the binary latent weights clipped to [-1, 1]
    after each step: pybnn's optimizer as a PyTorch user writes it (eps is
    placed as torch places it), for timing."""

    def __init__(self, params, kind="adam", lr=0.003):
        import torch
        cls = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax}.get(kind)
        if cls is None:
            raise NotImplementedError("optimizer %r has no torch reference" % (kind,))
        groups = [dict(params=[p], lr=lr * scale) for p, scale, _ in params]
        self.opt = cls(groups, lr=lr, foreach=True)
        self.clipped = [p for p, _, clip in params if clip]

    def zero_grad(self):
        self.opt.zero_grad(set_to_none=True)

    def step(self):
        import torch
        self.opt.step()
        if not self.clipped:            # full precision: nothing is clipped
            return
        with torch.no_grad():
            torch._foreach_clamp_min_(self.clipped, -1.0)
            torch._foreach_clamp_max_(self.clipped, 1.0)


class _Adam:
    """pybnn.optim.Optimizer's Adam / AdaMax on torch tensors, one parameter
    at a time (as torch.optim.Adam's CPU default): per-parameter lr_scale,
    binary latent weights clipped to [-1, 1] after the update."""

    def __init__(self, params, kind="adam", lr=0.003, beta1=0.9, beta2=0.999, eps=1e-8):
        if kind not in ("adam", "adamax"):
            raise NotImplementedError("optimizer %r has no torch reference" % (kind,))
        import torch
        self.kind, self.lr, self.beta1, self.beta2, self.eps = kind, lr, beta1, beta2, eps
        # (tensor, lr_scale, clip)
        self.params = list(params)
        self.m = [torch.zeros_like(p) for p, _, _ in self.params]
        self.v = [torch.zeros_like(p) for p, _, _ in self.params]
        self.t = 0

    def zero_grad(self):
        for p, _, _ in self.params:
            p.grad = None

    def step(self):
        import torch
        self.t += 1
        b1, b2, t = self.beta1, self.beta2, self.t
        if self.kind == "adam":
            step = self.lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
        else:
            step = self.lr / (1.0 - b1 ** t)
        with torch.no_grad():
            for (p, scale, clip), m, v in zip(self.params, self.m, self.v):
                g = p.grad
                m.mul_(b1).add_(g, alpha=1.0 - b1)
                if self.kind == "adam":
                    v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                    den = v.sqrt().add_(self.eps)
                else:
                    torch.maximum(v.mul_(b2), g.abs(), out=v)
                    den = v + self.eps
                p.addcdiv_(m, den, value=-step * scale)
                if clip:
                    p.clamp_(-1.0, 1.0)


def _squared_hinge(scores, labels):
    """mean over batch x classes of max(0, 1 - t*s)^2, t = +1 at the label, -1 elsewhere."""
    import torch
    t = torch.full_like(scores, -1.0)
    t.scatter_(1, labels.view(-1, 1), 1.0)
    m = torch.clamp(1.0 - t * scores, min=0.0)
    return (m * m).mean()


class TorchStep:
    """A torch model with pybnn's optimizer and loss; step() is one training step."""

    def __init__(self, net, optimizer, loss_fn):
        self.model, self.optimizer, self.loss_fn = net, optimizer, loss_fn

    def _inputs(self, x_uint8, y=None):
        torch = _modules().torch
        x = np.asarray(x_uint8)
        if x.dtype != np.uint8:
            raise TypeError("inputs must be uint8 pixels, got %s" % x.dtype)
        x = torch.from_numpy(np.ascontiguousarray(x))
        if y is None:
            return x
        return x, torch.from_numpy(np.asarray(y, dtype=np.int64))

    def forward(self, x_uint8, training=True):
        """Float scores (a torch tensor) of uint8 inputs."""
        self.model.train(training)
        return self.model(self._inputs(x_uint8))

    def step(self, x_uint8, y):
        """One training step (as pybnn/train.py: zero_grad, forward, loss,
        backward, optimizer step with clipping); returns the loss."""
        x, y = self._inputs(x_uint8, y)
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return float(loss.item())

    def load_from_pybnn(self, model):
        """Copy a pybnn Sequential's latent weights (conv [O,KH,KW,C] ->
        OIHW), gamma/beta and running statistics into the torch model."""
        torch = _modules().torch
        layers = list(self.model.layers)
        if len(layers) != len(model.layers):
            raise ValueError("pybnn model has %d layers, the torch one %d"
                             % (len(model.layers), len(layers)))
        with torch.no_grad():
            for src, dst in zip(model.layers, layers):
                if src.family == "dense":
                    dst.weight.copy_(torch.from_numpy(src.W.value))
                elif src.family == "conv":
                    dst.weight.copy_(torch.from_numpy(np.transpose(src.W.value, (0, 3, 1, 2))))
                elif src.family == "norm":
                    dst.weight.copy_(torch.from_numpy(src.gamma.value))
                    dst.bias.copy_(torch.from_numpy(src.beta.value))
                    dst.running_mean.copy_(torch.from_numpy(src.running_mean))
                    dst.running_invstd.copy_(torch.from_numpy(src.running_invstd))

    def latent_weights(self):
        """The weight layers' latent weights as numpy arrays in pybnn's layout."""
        out = []
        for layer in self.model.layers:
            if hasattr(layer, "lr_scale"):
                w = layer.weight.detach().numpy()
                out.append(np.transpose(w, (0, 2, 3, 1)) if w.ndim == 4 else w.copy())
        return out


def build(cfg, input_shape, seed=0, threads=None, fast=False):
    """A TorchStep for a pybnn recipe config (RECIPES[...] with overrides):
    the network, pybnn's optimizer at cfg['lr_start'] and cfg['loss'].
    threads: torch.set_num_threads (process-wide).  Seeds torch's global
    generator (dropout) with seed.  fast=True: torch's fused batch norm and
    torch.optim.Adam (foreach) -- the same network, loss and optimizer as a
    PyTorch user writes them, what `pybnn bench train` times; fast=False
    matches pybnn's arithmetic closely enough to compare step by step."""
    M = _modules()
    torch = M.torch
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    net = _build_net(cfg, tuple(input_shape), seed, fast)
    for layer in net.layers:
        layer.fast = fast          # the sign of weight layers and activations
    params = []
    for layer in net.layers:
        if hasattr(layer, "lr_scale"):
            params.append((layer.weight, layer.lr_scale, layer.binary))
        elif isinstance(layer, (M.BatchNorm, M.nn.BatchNorm1d, M.nn.BatchNorm2d)):
            params += [(layer.weight, 1.0, False), (layer.bias, 1.0, False)]
    kind = cfg.get("optimizer", "adam")
    lr = float(cfg.get("lr_start", 0.003 if kind == "adam" else 0.002))
    opt = _TorchAdam(params, kind, lr) if fast else _Adam(params, kind, lr)
    loss = cfg.get("loss", "squared_hinge")
    if loss == "squared_hinge":
        loss_fn = _squared_hinge
    elif loss == "softmax_cross_entropy":
        loss_fn = M.F.cross_entropy
    else:
        raise ValueError("unknown loss %r" % (loss,))
    return TorchStep(net, opt, loss_fn)


def compare_first_step(cfg, input_shape, batch, seed=0):
    """One training step of pybnn and of the torch reference from the same
    weights on the same random uint8 batch, with dropout off.

    The latent weights of binary layers are first stretched to fill
    [-1, 1] (W / max|W|: the signs, and so the forward pass, are unchanged)
    so that the step's clip to [-1, 1] is exercised.  Returns a dict:
      scores_max_abs, scores_scale   max |scores difference|, max |pybnn score|
      loss_pybnn, loss_torch, loss_abs
      grads_max_rel      max over parameters of max|dg| / max|g|
      params_max_abs     parameters (latent weights, gamma, beta) after each
                         side's own optimizer step, max abs difference
      params_same_grads_max_abs   the same, with the torch optimizer fed
                         pybnn's gradients (checks the update rule alone)
      update_max         the largest change of a parameter in pybnn's step
      clipped            how many latent weights pybnn's step clipped to +-1
      running_max_abs    running mean / inverse std after the step"""
    from pybnn.losses import softmax_cross_entropy, squared_hinge
    from pybnn.optim import Optimizer
    from pybnn.recipes import build_model

    torch = _modules().torch
    cfg = dict(cfg, dropout_in=0.0, dropout=0.0)
    cfg.pop("help", None)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (batch,) + tuple(input_shape), dtype=np.uint8)
    y = rng.integers(0, 10, batch)

    pb = build_model(cfg, tuple(input_shape), seed)
    for p in pb.parameters():
        if p.binary:
            p.value /= np.max(np.abs(p.value))
    pb.train()
    pb_opt = Optimizer(pb.parameters(), cfg.get("optimizer", "adam"), lr=cfg.get("lr_start"))
    ts = build(cfg, input_shape, seed)
    ts.load_from_pybnn(pb)
    t_params = [p for p, _, _ in ts.optimizer.params]     # pybnn's parameter order

    def as_pybnn(t):            # a torch parameter or gradient in pybnn's layout
        a = t.detach().numpy()
        return np.transpose(a, (0, 2, 3, 1)) if a.ndim == 4 else a

    def as_torch(a):
        return torch.from_numpy(np.ascontiguousarray(
            np.transpose(a, (0, 3, 1, 2)) if a.ndim == 4 else a))

    # forward and loss (training mode: batch statistics)
    pb_opt.zero_grad()
    s_pb = pb.forward(x)
    loss_fn = squared_hinge if cfg.get("loss", "squared_hinge") == "squared_hinge" \
        else softmax_cross_entropy
    l_pb, g_pb = loss_fn(s_pb, y)
    xt, yt = ts._inputs(x, y)
    ts.model.train()
    ts.optimizer.zero_grad()
    s_t = ts.model(xt)
    l_t = ts.loss_fn(s_t, yt)
    out = dict(scores_max_abs=float(np.max(np.abs(s_t.detach().numpy() - s_pb))),
               scores_scale=float(np.max(np.abs(s_pb))),
               loss_pybnn=float(l_pb), loss_torch=float(l_t.item()),
               loss_abs=abs(float(l_t.item()) - float(l_pb)))

    # backward: the gradients
    pb.backward(g_pb)
    l_t.backward()
    grads_pb = [p.grad.copy() for p in pb.parameters()]
    out["grads_max_rel"] = max(float(np.max(np.abs(as_pybnn(t.grad) - g)) / np.max(np.abs(g)))
                               for t, g in zip(t_params, grads_pb))

    # the torch optimizer on copies of the parameters, fed pybnn's gradients
    copies = []
    for (t, scale, clip), g in zip(ts.optimizer.params, grads_pb):
        c = t.detach().clone()
        c.grad = as_torch(g)
        copies.append((c, scale, clip))
    o = ts.optimizer
    _Adam(copies, o.kind, o.lr, o.beta1, o.beta2, o.eps).step()

    # each side's own step
    before = [p.value.copy() for p in pb.parameters()]
    pb_opt.step()
    ts.optimizer.step()
    after = [p.value for p in pb.parameters()]
    out["params_max_abs"] = max(float(np.max(np.abs(as_pybnn(t) - a)))
                                for t, a in zip(t_params, after))
    out["params_same_grads_max_abs"] = max(float(np.max(np.abs(as_pybnn(c) - a)))
                                           for (c, _, _), a in zip(copies, after))
    out["update_max"] = max(float(np.max(np.abs(a - b))) for a, b in zip(after, before))
    out["clipped"] = sum(int(np.sum(np.abs(a) == 1)) for p, a in zip(pb.parameters(), after)
                         if p.binary)
    norms_t = [l for l in ts.model.layers if hasattr(l, "running_invstd")]
    norms_pb = [l for l in pb.layers if l.family == "norm"]
    out["running_max_abs"] = max(
        max(float(np.max(np.abs(a.running_mean - b.running_mean.numpy()))),
            float(np.max(np.abs(a.running_invstd - b.running_invstd.numpy()))))
        for a, b in zip(norms_pb, norms_t))
    return out
