#!/usr/bin/env python3
"""One official JEM training iteration in PyTorch on the CPU: the comparison point of jem-bench.

The workload (Grathwohl et al. 2020, official train_wrn_ebm.py defaults) on the official
WideResNet wrn-10-2 without normalisation, batch 64, 3x32x32, fp32, 2 threads:

  1. 64 chains from a 10,000-image replay buffer (uniform(-1, 1)), each replaced by a fresh
     uniform(-1, 1) image with probability 0.05; 20 SGLD steps
     x += 1.0 * d/dx sum_i LSE(f(x_i)) + 0.01 * N(0, I)   (gradient with respect to x only);
     the chains go back into the buffer.
  2. L = -(mean f(x_data) - mean f(x_q)) + CE(logits(x_lab), y_lab), f = LSE of the logits,
     x_data and x_lab two different real batches (three forward passes with parameter gradients).
  3. divergence check on |L|, Adam(lr 1e-4, betas (0.9, 0.999)) step.

Real batches are fixed random tensors cycled through (no data loading is timed). Prints the
FLOP accounting and one JSON object (also written to --json FILE).

  python jem_iteration.py                       # 1 warm-up + 5 timed iterations
  python jem_iteration.py --iters 3 --json out.json

After the JEM iterations it reads the process's peak resident memory (ru_maxrss: nothing else
has run in the process yet), then times one SGLD step the way jem-bench's "SGLD step" does:
forward, f = LSE of the logits, gradient with respect to the input only, update
x += 1.0 * grad + 0.01 * N(0, I) clamped to [0, 0.5] (1 warm-up + --sgld-step-runs timed).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CHANNELS, SIZE = 3, 32


class Block(nn.Module):
    """Pre-activation residual block without normalisation: the stride sits on the second conv,
    and the 1x1 shortcut reads the block's raw input (not its activation)."""

    def __init__(self, cin, cout, stride, slope):
        super().__init__()
        self.slope = slope
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=stride, padding=1, bias=True)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=True)

    def forward(self, x):
        h = self.conv1(F.leaky_relu(x, self.slope))
        h = self.conv2(F.leaky_relu(h, self.slope))
        return h + (x if self.shortcut is None else self.shortcut(x))


class WRN(nn.Module):
    """WideResNet depth 6n+4, widen k: conv 3->16, three stages of n blocks (16k, 32k, 64k
    channels; strides 1, 2, 2), leaky ReLU, global average pool, Linear -> logits.
    (The official CCF also carries two heads that the loss never uses; they get no gradient and
    Adam skips them, so they are left out here.)"""

    def __init__(self, depth=10, widen=2, classes=10, slope=0.2):
        super().__init__()
        n = (depth - 4) // 6
        assert depth == 6 * n + 4, "depth must be 6n+4"
        self.slope = slope
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(CHANNELS, widths[0], 3, padding=1, bias=True)
        blocks, cin = [], widths[0]
        for cout, stride in zip(widths[1:], (1, 2, 2)):
            for i in range(n):
                blocks.append(Block(cin, cout, stride if i == 0 else 1, slope))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        h = F.leaky_relu(self.blocks(self.stem(x)), self.slope)
        return self.head(F.adaptive_avg_pool2d(h, 1).flatten(1))


def forward_flop_per_image(model):
    """2 FLOP per multiply-add of every conv and linear layer, from the output shapes of one
    forward pass (bias adds, activations, pooling and LSE are not counted)."""
    macs = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            macs.append(output[0].numel() * module.in_channels // module.groups * k)
        else:
            macs.append(output[0].numel() * module.in_features)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, CHANNELS, SIZE, SIZE))
    for h in handles:
        h.remove()
    return 2 * sum(macs)


def torch_counted_flop_per_image(model):
    """The same count by torch.utils.flop_counter, where this torch has it (None otherwise)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, CHANNELS, SIZE, SIZE))
    return counter.get_total_flops()


class JEM:
    def __init__(self, a):
        self.a = a
        torch.manual_seed(a.seed)
        self.model = WRN(a.depth, a.widen, a.classes)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=a.lr, betas=(0.9, 0.999), weight_decay=0.0)
        self.buffer = torch.empty(a.buffer_size, CHANNELS, SIZE, SIZE).uniform_(-1, 1)
        g = torch.Generator().manual_seed(a.seed + 1)
        shape = (a.data_batches, a.batch, CHANNELS, SIZE, SIZE)
        self.data = torch.rand(shape, generator=g) * 2 - 1
        self.labeled = torch.rand(shape, generator=g) * 2 - 1
        self.labels = torch.randint(0, a.classes, (a.data_batches, a.batch), generator=g)
        self.step = 0

    def energy(self, x):
        """f(x) = LSE_y logits(x)[y], the negative energy."""
        return self.model(x).logsumexp(1)

    def sample(self):
        a = self.a
        self.model.eval()  # no normalisation or dropout: kept for fidelity, changes nothing
        rows = torch.randint(0, a.buffer_size, (a.batch,))
        restart = (torch.rand(a.batch) < a.reinit).view(-1, 1, 1, 1)
        fresh = torch.empty(a.batch, CHANNELS, SIZE, SIZE).uniform_(-1, 1)
        x = torch.where(restart, fresh, self.buffer[rows]).requires_grad_(True)
        for _ in range(a.sgld_steps):
            (grad,) = torch.autograd.grad(self.energy(x).sum(), x)
            with torch.no_grad():
                x.add_(grad, alpha=a.sgld_lr).add_(torch.randn_like(x), alpha=a.sgld_std)
        self.model.train()
        x = x.detach()
        self.buffer[rows] = x
        return x

    def iterate(self):
        i = self.step % self.a.data_batches
        self.step += 1
        x_q = self.sample()
        f_data = self.energy(self.data[i]).mean()
        f_q = self.energy(x_q).mean()
        loss = -(f_data - f_q) + F.cross_entropy(self.model(self.labeled[i]), self.labels[i])
        if loss.abs().item() > 1e8:
            raise RuntimeError("loss diverged")
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def sgld_step(self, x):
        """One SGLD step as jem-bench's "SGLD step (fwd + d/dx + update)" benchmark times it."""
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(self.energy(x).sum(), x)
        with torch.no_grad():
            x.add_(grad, alpha=1.0).add_(torch.randn_like(x), alpha=0.01).clamp_(0, 0.5)
        x.requires_grad_(False)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=5, help="timed iterations")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--widen", type=int, default=2)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--sgld-steps", type=int, default=20)
    p.add_argument("--sgld-lr", type=float, default=1.0)
    p.add_argument("--sgld-std", type=float, default=0.01)
    p.add_argument("--reinit", type=float, default=0.05, help="restart probability per chain")
    p.add_argument("--buffer-size", type=int, default=10000)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--data-batches", type=int, default=8, help="fixed random real batches cycled through")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sgld-step-runs", type=int, default=7,
                   help="timed SGLD steps after the JEM iterations (jem-bench's count; 0: none)")
    p.add_argument("--json", default=None, help="also write the JSON result to this file")
    a = p.parse_args()
    if a.iters < 1 or a.warmup < 0:
        p.error("--iters must be >= 1 and --warmup >= 0")

    torch.set_num_threads(a.threads)
    jem = JEM(a)
    name = f"wrn-{a.depth}-{a.widen}"

    flop_image = forward_flop_per_image(jem.model)
    counted = torch_counted_flop_per_image(jem.model)
    # A backward with respect to the input only costs about one forward; one with parameter
    # gradients too about two. SGLD: steps x (fwd + bwd-input); training: 3 x (fwd + full bwd).
    forwards = 2 * a.sgld_steps + 3 * 3
    flop = forwards * a.batch * flop_image
    print(f"{name}: {sum(q.numel() for q in jem.model.parameters()):,d} parameters; forward "
          f"{flop_image:,d} FLOP per image (torch FlopCounterMode: "
          f"{'n/a' if counted is None else f'{counted:,d}'})")
    print(f"one JEM iteration = ({2 * a.sgld_steps} SGLD + 9 training) = {forwards} forwards x {a.batch} images "
          f"= {flop / 1e9:.1f} GFLOP")

    load_before = os.getloadavg()[0]
    for _ in range(a.warmup):
        jem.iterate()
    seconds, cpu = [], []
    for _ in range(a.iters):
        start, cpu_start = time.perf_counter(), time.process_time()
        jem.iterate()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)   # all threads of the process
    median = statistics.median(seconds)
    # Linux: KiB. Read before anything else allocates: the peak of the JEM-iteration workload.
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sgld = []
    if a.sgld_step_runs > 0:
        jem.model.eval()
        x = torch.empty(a.batch, CHANNELS, SIZE, SIZE).uniform_(-1, 1)
        jem.sgld_step(x)
        for _ in range(a.sgld_step_runs):
            start = time.perf_counter()
            jem.sgld_step(x)
            sgld.append(time.perf_counter() - start)
    result = {
        "impl": "pytorch", "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "model": name, "batch": a.batch, "sgld_steps": a.sgld_steps,
        "median_s": median, "min_s": min(seconds), "max_s": max(seconds), "runs": len(seconds),
        "all_s": seconds, "cpu_median_s": statistics.median(cpu), "cpu_all_s": cpu, "gflop": flop / 1e9, "gflops": flop / 1e9 / median,
        "forward_flop_per_image": flop_image, "peak_rss_bytes": peak_rss,
        "sgld_step": ({"median_s": statistics.median(sgld), "min_s": min(sgld), "max_s": max(sgld), "all_s": sgld}
                      if sgld else None), "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
    }
    print(f"JEM iteration: median {median:.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f}, "
          f"n={len(seconds)}), {flop / 1e9 / median:.1f} GFLOP/s; peak RSS {peak_rss / 1e6:.1f} MB")
    if sgld:
        print(f"SGLD step: median {statistics.median(sgld):.4f} s (min {min(sgld):.4f}, n={len(sgld)})")
    print(json.dumps(result))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
