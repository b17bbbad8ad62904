"""Benchmark: the article-style DataLoader loop against aelib.train, in one process.

Both loops train the same autoencoder (identical initial weights) on the MNIST training
set with Adam (lr 1e-3), MSE and batch size 128, and see the batches in the same order,
so their loss curves should agree. Prints seconds per epoch, the speed ratio and both
loss curves.

    python bench/bench_train.py                     # 3 epochs each, aelib's thread default
    python bench/bench_train.py --epochs 10 --threads 2 --latent-dim 4
    python bench/bench_train.py --threads-scan      # 1 vs 2 threads, idle vs one busy core

Results and the machine they were measured on: bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader
from torchvision.datasets import MNIST
from torchvision.transforms import ToTensor

import aelib
from aelib.data import IMAGE_PIXELS

BATCH_SIZE = 128
LR = 1e-3
SEED = 0
BUSY_LOOP_SECONDS = 240  # the busy-loop helper process ends itself after this long
SCAN_BUDGET_SECONDS = 30  # a scan measurement predicted to take longer is extrapolated


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary(device: torch.device) -> str:
    return (
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"Python {platform.python_version()}\n"
        f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; torch threads: "
        f"{torch.get_num_threads()}; device: {device}"
    )


def load_average() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def article_style_training(
    model: torch.nn.Module, epochs: int, device: torch.device, seed: int = SEED
) -> tuple[list[float], list[float], float]:
    """The loop as a tutorial writes it: torchvision dataset + ToTensor +
    ``DataLoader(shuffle=True)``, one ``loss.item()`` per batch. Returns (mean loss per
    epoch, seconds per epoch, CPU seconds of this process per epoch).

    ``torch.manual_seed(seed)`` comes first, as in such a script. ``aelib.train`` with
    its default ``seed=None`` draws each epoch's order from the global generator the
    way this DataLoader does, so after the same ``torch.manual_seed`` both loops see
    the same batches.
    """
    dataset = MNIST(str(aelib.data_root()), train=True, transform=ToTensor())
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)
    torch.manual_seed(seed)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    losses, seconds = [], []
    cpu_start = time.process_time()
    for _epoch in range(epochs):
        start = time.perf_counter()
        running = 0.0
        for x, _ in loader:
            x = x.view(-1, IMAGE_PIXELS).to(device)
            _, reconstruction = model(x)
            loss = F.mse_loss(reconstruction, x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item() * len(x)
        seconds.append(time.perf_counter() - start)
        losses.append(running / len(dataset))
    return losses, seconds, (time.process_time() - cpu_start) / epochs


def loader_only_seconds() -> float:
    """Seconds for one pass over the article-style DataLoader, without any training:
    the per-example Python work (PIL image, ToTensor, collate) that aelib.train skips."""
    dataset = MNIST(str(aelib.data_root()), train=True, transform=ToTensor())
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)
    start = time.perf_counter()
    for x, _ in loader:
        x.view(-1, IMAGE_PIXELS)
    return time.perf_counter() - start


def compute_only_seconds(
    model: torch.nn.Module, device: torch.device, steps: int, fused: bool
) -> float | None:
    """Seconds for ``steps`` optimizer steps on one fixed batch: the cost of the maths
    alone, with no data handling at all (a floor for any loop). ``fused``: Adam's fused
    implementation (one pass per weight tensor; torch >= 2.4 on a CPU) instead of torch's
    default (which both loops use). None if this torch has no fused Adam for the device."""
    x = aelib.load_mnist(train=True)[0][:BATCH_SIZE].to(device)
    model.to(device).train()
    try:
        optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=fused or None)
    except RuntimeError:
        return None
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.mse_loss(model(x)[1], x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    loss.item()  # wait for the device
    return time.perf_counter() - start


def compare(epochs: int, latent_dim: int, device: torch.device,
            baseline_threads: int | None = None) -> None:
    print(machine_summary(device))
    print(f"MNIST root: {aelib.data_root()}")
    print(f"AutoEncoder(latent_dim={latent_dim}), batch {BATCH_SIZE}, Adam lr {LR}, "
          f"seed {SEED}, {epochs} epochs; {load_average()}\n")

    torch.manual_seed(SEED)
    article_model = aelib.AutoEncoder(latent_dim)
    aelib_model = aelib.AutoEncoder(latent_dim)
    aelib_model.load_state_dict(article_model.state_dict())  # identical initial weights
    floor_models = [aelib.AutoEncoder(latent_dim) for _ in range(2)]
    for floor_model in floor_models:
        floor_model.load_state_dict(article_model.state_dict())

    aelib_threads = torch.get_num_threads()
    if baseline_threads:  # the article-style loop as a reader runs it, e.g. torch's default
        torch.set_num_threads(baseline_threads)
    print(f"torch threads: article-style {torch.get_num_threads()}, aelib.train {aelib_threads}")
    article_losses, article_seconds, article_cpu = article_style_training(
        article_model, epochs, device)
    torch.set_num_threads(aelib_threads)
    images, _ = aelib.load_mnist(train=True)
    torch.manual_seed(SEED)  # same global generator state as the article-style loop
    cpu_start = time.process_time()
    history = aelib.train(aelib_model, images, epochs=epochs, batch_size=BATCH_SIZE, lr=LR,
                          device=device, verbose=False)
    aelib_cpu = (time.process_time() - cpu_start) / epochs
    aelib_losses, aelib_seconds = history["train_loss"], history["seconds"]
    steps = -(-len(images) // BATCH_SIZE)
    floor_default = compute_only_seconds(floor_models[0], device, steps, fused=False)
    floor_fused = compute_only_seconds(floor_models[1], device, steps, fused=True)
    loader_only = loader_only_seconds()

    print("epoch | article-style loss | aelib.train loss | article-style s | aelib.train s")
    for i in range(epochs):
        print(f"{i + 1:5d} | {article_losses[i]:18.6f} | {aelib_losses[i]:16.6f} | "
              f"{article_seconds[i]:15.2f} | {aelib_seconds[i]:13.2f}")
    a = sum(article_seconds) / epochs
    b = sum(aelib_seconds) / epochs
    diff = max(abs(x - y) for x, y in zip(article_losses, aelib_losses))
    print(f"\nseconds per epoch: article-style {a:.2f}, aelib.train {b:.2f}; "
          f"aelib.train is {a / b:.1f}x faster")
    print(f"CPU seconds of this process per epoch: article-style {article_cpu:.2f}, "
          f"aelib.train {aelib_cpu:.2f} (ratio {article_cpu / aelib_cpu:.1f}x)")
    print(f"compute only, one epoch's {steps} steps on one fixed batch (no data handling): "
          f"{floor_default:.2f} s with torch's default Adam (both loops use it), "
          + (f"{floor_fused:.2f} s with Adam(fused=True)" if floor_fused else
             "Adam(fused=True) not available"))
    print(f"the article-style DataLoader alone (one pass, no training): {loader_only:.2f} s")
    print(f"max |loss difference| between the curves: {diff:.2e}")
    print(f"after: {load_average()}")


def busy_core(seconds: int) -> subprocess.Popen:
    """Start a process that keeps one core busy; it ends itself after ``seconds``."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def one_epoch_seconds(threads: int, latent_dim: int, device: torch.device) -> tuple[float, bool]:
    """Seconds for one aelib.train epoch over the 60,000 training images with ``threads``
    torch threads, and whether it was extrapolated: when a 16-batch probe predicts more
    than SCAN_BUDGET_SECONDS, only the first 10% of the epoch is timed and scaled up."""
    # (the model keeps training across these calls: only the time matters here)
    torch.set_num_threads(threads)
    images, _ = aelib.load_mnist(train=True)
    torch.manual_seed(SEED)
    model = aelib.AutoEncoder(latent_dim)
    aelib.train(model, images[:256], epochs=1, device=device, verbose=False)  # start threads
    probe = aelib.train(model, images[:2048], epochs=1, device=device, verbose=False)
    if probe["seconds"][0] * len(images) / 2048 <= SCAN_BUDGET_SECONDS:
        history = aelib.train(model, images, epochs=1, device=device, verbose=False)
        return history["seconds"][0], False
    part = images[: len(images) // 10]
    history = aelib.train(model, part, epochs=1, device=device, verbose=False)
    return history["seconds"][0] * len(images) / len(part), True


def threads_scan(latent_dim: int, device: torch.device) -> None:
    print(machine_summary(device))
    print(f"one aelib.train epoch (AutoEncoder(latent_dim={latent_dim}), batch {BATCH_SIZE}) "
          f"with 1 and 2 torch threads, without and with a busy-loop process of ours on one "
          f"core (other processes on the machine show in the load average)\n")
    # on SIGTERM (e.g. `timeout`) exit through the finally below, which stops the busy loop
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = {}
    for busy in (False, True):
        helper = busy_core(BUSY_LOOP_SECONDS) if busy else None
        try:
            if helper:
                time.sleep(1.0)  # let the busy loop get going
            for threads in (1, 2):
                seconds, extrapolated = one_epoch_seconds(threads, latent_dim, device)
                results[threads, busy] = seconds
                label = "+ busy loop" if busy else "no busy loop"
                note = " (from 10% of the epoch)" if extrapolated else ""
                print(f"threads={threads}  {label:12s}  {seconds:7.2f} s/epoch{note:24s} "
                      f"({load_average()})", flush=True)
        finally:
            if helper:
                helper.kill()
                helper.wait()
    aelib.configure_threads()
    for busy, label in ((False, "without the busy loop"), (True, "with one core busy")):
        ratio = results[2, busy] / results[1, busy]
        print(f"{label}: an epoch with 2 threads takes {ratio:.2f}x the time of 1 thread")
    print(f"aelib's default here: {aelib.configure_threads()} thread(s) "
          f"(AELIB_NUM_THREADS, else half the cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loop (default 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: aelib's, AELIB_NUM_THREADS or "
                             "half the cores)")
    parser.add_argument("--latent-dim", type=int, default=8, help="code size k (default 8)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: automatic)")
    parser.add_argument("--baseline-threads", type=int, default=None,
                        help="torch threads for the article-style loop only (e.g. the "
                             "number of cores, torch's own default); default: as aelib")
    parser.add_argument("--busy-core", action="store_true",
                        help="keep one core busy with another process during the comparison")
    parser.add_argument("--threads-scan", action="store_true",
                        help="time one aelib epoch with 1 and 2 threads, idle and with one "
                             "core busy")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    device = aelib.pick_device(args.device)
    if args.threads_scan:
        threads_scan(args.latent_dim, device)
        return
    aelib.configure_threads(args.threads)
    busy = busy_core(600) if args.busy_core else None
    try:
        compare(args.epochs, args.latent_dim, device, args.baseline_threads)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


if __name__ == "__main__":
    main()
