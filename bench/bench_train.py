"""Benchmark: aelib.train against the plain DataLoader loop, side by side, in one process.

Both loops train the article's autoencoder (k = 8, batch 128, Adam lr 1e-3, MSE) on the
60,000 MNIST training images, from the same initial weights and after the same
``torch.manual_seed``, so they see the same batches and their loss curves must be equal.
For each thread count it prints seconds per epoch of both loops, the ratio, both curves
and their largest difference.

    python bench/bench_train.py                      # 3 epochs, aelib's default threads
    python bench/bench_train.py --epochs 2 --threads 1 2

Results and the machine they were measured on: bench/README.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision.datasets import MNIST
from torchvision.transforms import ToTensor

import aelib

SEED, BATCH_SIZE, LR, LATENT_DIM = 0, 128, 1e-3, 8


def plain_loop(model: torch.nn.Module, epochs: int, device: torch.device, dataset=None) -> tuple:
    """The loop a reader writes (notebook 03): torchvision MNIST + ToTensor (or ``dataset``) +
    DataLoader(shuffle=True), one loss.item() per batch. Returns (losses, seconds) per epoch."""
    dataset = dataset or MNIST(str(aelib.data_root()), train=True, transform=ToTensor())
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    losses, seconds = [], []
    for _ in range(epochs):
        start, total = time.perf_counter(), 0.0
        for x, _ in loader:
            x = x.view(-1, 784).to(device)
            _, reconstruction = model(x)
            loss = F.mse_loss(reconstruction, x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(x)
        seconds.append(time.perf_counter() - start)
        losses.append(total / len(dataset))
    return losses, seconds


def compare(threads: int, epochs: int, images: torch.Tensor, device: torch.device) -> tuple:
    """Both loops with ``threads`` torch threads; prints the table, returns the means."""
    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    plain_model = aelib.AutoEncoder(LATENT_DIM)
    aelib_model = copy.deepcopy(plain_model)  # the same initial weights
    torch.manual_seed(SEED)  # the same global generator state: the same batches
    plain_losses, plain_seconds = plain_loop(plain_model, epochs, device)
    torch.manual_seed(SEED)
    history = aelib.train(aelib_model, images, epochs=epochs, batch_size=BATCH_SIZE, lr=LR,
                          device=device, verbose=False)
    aelib_losses, aelib_seconds = history["train_loss"], history["seconds"]
    print(f"\n== {threads} torch thread(s) ({load_average()})")
    print("epoch | DataLoader loop loss | aelib.train loss | DataLoader loop s | aelib.train s")
    for i in range(epochs):
        print(f"{i + 1:5d} | {plain_losses[i]:20.6f} | {aelib_losses[i]:16.6f} | "
              f"{plain_seconds[i]:17.2f} | {aelib_seconds[i]:13.2f}")
    plain, ours = sum(plain_seconds) / epochs, sum(aelib_seconds) / epochs
    diff = max(abs(a - b) for a, b in zip(plain_losses, aelib_losses))
    print(f"seconds per epoch: DataLoader loop {plain:.2f}, aelib.train {ours:.2f}; "
          f"ratio {plain / ours:.2f}x")
    print(f"max |loss difference| between the two curves: {diff:.1e}")
    return plain, ours, diff


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loop (default 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch thread counts to measure, e.g. 1 2 4 (default: aelib's, "
                             "$AELIB_NUM_THREADS or min(4, half the cores))")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: automatic)")
    args = parser.parse_args()
    if args.epochs < 1 or any(t < 1 for t in args.threads or [1]):
        parser.error("--epochs and --threads must be >= 1")
    device = aelib.pick_device(args.device)
    threads = args.threads or [aelib.training.default_num_threads()]
    print(f"torch {torch.__version__}, Python {platform.python_version()}; CPU: {cpu_name()}, "
          f"{os.cpu_count()} logical cores; device: {device}")
    print(f"AutoEncoder(latent_dim={LATENT_DIM}), batch {BATCH_SIZE}, Adam lr {LR}, seed {SEED}, "
          f"{args.epochs} epochs per loop; aelib's default threads here: "
          f"{aelib.training.default_num_threads()}")
    images, _ = aelib.load_mnist(train=True)
    results = {t: compare(t, args.epochs, images, device) for t in threads}
    print("\nthreads | DataLoader loop s/epoch | aelib.train s/epoch | ratio | max |diff|")
    for t, (plain, ours, diff) in results.items():
        print(f"{t:7d} | {plain:23.2f} | {ours:19.2f} | {plain / ours:4.2f}x | {diff:.1e}")
    print(f"after: {load_average()}")


if __name__ == "__main__":
    main()
