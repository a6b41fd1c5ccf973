"""What the `timing` collector costs, and how tight its confidence interval is.

1. Cost: blocks of N iterations of the same workload, alternately bare (one clock read per
   block) and timed as a trial times them (a timer start/stop around every iteration); cost =
   timed block time / bare block time - 1, in % of step time (target <= 0.5 %). On a noisy
   machine that difference drowns in step-to-step noise, so the timer's own cost is also
   measured directly: start/stop pairs around an empty body.
2. Precision: the 95 % bootstrap CI of the median from our per-iteration samples, next to the
   same CI from `torch.utils.benchmark.Timer.blocked_autorange` on the same workload.

    python benchmarks/timer_cost.py                     # smallcnn on the CPU
    python benchmarks/timer_cost.py --model resnet18 --device cuda
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import stats


def _session(args: argparse.Namespace):
    from nnr_profile.core.modes import MODES
    from nnr_profile.workloads.adapter import get_adapter
    from nnr_profile.workloads.registry import get_workload

    workload = get_workload("torch", args.model)
    adapter = get_adapter("torch")
    adapter.seed(0)
    shape = workload.shape_for(args.image_size)
    session = adapter.prepare(
        workload,
        workload.validate({}, args.image_size),
        MODES["default"],
        args.batch_size,
        shape,
        args.device,
    )
    for _ in range(args.warmup):
        session.step()
    session.sync()
    return session


def _bare_block(session, n: int) -> float:
    session.sync()
    began = time.perf_counter_ns()
    for _ in range(n):
        session.step()
    session.sync()
    return (time.perf_counter_ns() - began) / 1e6


def _timed_block(session, n: int) -> tuple[float, list[float]]:
    timer = session.timer()
    session.sync()
    began = time.perf_counter_ns()
    for _ in range(n):
        timer.start()
        session.step()
        timer.stop()
    session.sync()
    wall = (time.perf_counter_ns() - began) / 1e6
    return wall, timer.times_ms()


def _median_ci(samples: np.ndarray) -> tuple[float, float, float]:
    ci = stats.bootstrap(
        (samples,), np.median, n_resamples=2000, method="percentile", random_state=0
    ).confidence_interval
    return float(np.median(samples)), float(ci.low), float(ci.high)


def main() -> None:
    """Print the cost and precision tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smallcnn")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--block", type=int, default=50, help="iterations per block")
    parser.add_argument("--pairs", type=int, default=20, help="bare/timed block pairs")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    import torch.utils.benchmark as benchmark

    torch.set_num_threads(args.threads)
    session = _session(args)
    costs, bare_ms, samples = [], [], []
    for pair in range(args.pairs):
        if pair % 2:
            timed, times = _timed_block(session, args.block)
            bare = _bare_block(session, args.block)
        else:
            bare = _bare_block(session, args.block)
            timed, times = _timed_block(session, args.block)
        costs.append((timed / bare - 1) * 100)
        bare_ms.append(bare / args.block)
        samples += times
    costs_arr = np.array(costs)
    cost_median, cost_low, cost_high = _median_ci(costs_arr)
    print(
        f"model={args.model} device={args.device} batch={args.batch_size} "
        f"image={args.image_size} threads={args.threads} block={args.block} pairs={args.pairs}"
    )
    print("| measure | median | ci_low | ci_high |")
    print("|---|---:|---:|---:|")
    print(f"| step time, bare loop (ms) | {np.median(bare_ms):.3f} | | |")
    print(
        f"| timing collector cost (% of step) | {cost_median:+.3f} | {cost_low:+.3f} | "
        f"{cost_high:+.3f} |"
    )

    empty = session.timer()
    pairs = 100_000
    began = time.perf_counter_ns()
    for _ in range(pairs):
        empty.start()
        empty.stop()
    per_pair_ns = (time.perf_counter_ns() - began) / pairs
    print(f"| timer start+stop with an empty body (ns per iteration) | {per_pair_ns:.0f} | | |")
    print(
        f"| that, in % of the bare step | {per_pair_ns / 1e6 / np.median(bare_ms) * 100:.5f} | | |"
    )

    ours = np.array(samples[: args.block * 4])
    median, low, high = _median_ci(ours)
    timer = benchmark.Timer(
        stmt="session.step(); session.sync()",
        globals={"session": session},
        num_threads=args.threads,
    )
    measurement = timer.blocked_autorange(min_run_time=ours.sum() / 1000)
    theirs = np.array(measurement.times) * 1000
    t_median, t_low, t_high = _median_ci(theirs)
    print()
    print("| timer | samples | median_ms | ci_width_pct_of_median | iqr_pct_of_median |")
    print("|---|---:|---:|---:|---:|")
    for name, arr, m, lo, hi in (
        ("nnr-profile timing (per iteration)", ours, median, low, high),
        ("torch.utils.benchmark blocked_autorange (per block)", theirs, t_median, t_low, t_high),
    ):
        q1, q3 = np.percentile(arr, [25, 75])
        print(
            f"| {name} | {len(arr)} | {m:.3f} | {(hi - lo) / m * 100:.2f} | "
            f"{(q3 - q1) / m * 100:.2f} |"
        )


if __name__ == "__main__":
    main()
