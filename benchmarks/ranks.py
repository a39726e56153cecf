"""One process against torchrun ranks: training time and memory on the same prepared data.

    python benchmarks/ranks.py --data PREPARED_DIR --work DIR [--ranks 1 2] [--epochs 1] [--repeat 1]

For each rank count, trains ``--epochs`` epochs (``patience`` off) into DIR/ranksN, with
``classify train`` for 1 and ``torchrun --standalone --nproc-per-node N`` above, and prints
one line per run: wall time (start-up, features, training, saving), the mean epoch time from
``metrics.jsonl``, the peak resident memory of the whole process tree (all ranks together,
sampled every 20 ms) and the validation accuracy. Runs alternate between rank counts when
``--repeat`` > 1, so a noisy machine disturbs them alike. Linux only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from memory import measure  # benchmarks/memory.py


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"{'ranks':>5} {'wall s':>8} {'epoch s':>8} {'peak MB':>8} {'val acc':>8}")
    for _ in range(args.repeat):
        for ranks in args.ranks:
            out = args.work / f"ranks{ranks}"
            shutil.rmtree(out, ignore_errors=True)
            launch = [sys.executable, "-m", "classify_cli"]
            if ranks > 1:
                launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
                launch += ["-m", "classify_cli"]
            command = [*launch, "train", "--data", str(args.data), "--out", str(out), "--epochs", str(args.epochs)]
            code, wall, peak, last = measure([*command, "--set", "train.patience=0", "--device", "cpu"])
            if code != 0:
                print(f"{ranks:>5} failed (exit {code}): {last}")
                continue
            epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            epoch_s = sum(e["seconds"] for e in epochs) / len(epochs)
            best = max(e["val_accuracy"] for e in epochs)
            print(f"{ranks:>5} {wall:>8.1f} {epoch_s:>8.2f} {peak:>8.0f} {best:>8.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
