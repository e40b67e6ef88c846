"""A tiny perceptron trained on the demo's digits: reads $AZ_BATCHAI_INPUT_DATASET, prints
metric lines, writes the model to $AZ_BATCHAI_OUTPUT_MODEL. Pure Python, no dependencies."""

import argparse
import json
import os
import sys
import time
from pathlib import Path


def load(folder: Path) -> list[tuple[int, list[int]]]:
    rows = []
    for part in sorted(folder.glob("*.csv")):
        for line in part.read_text().splitlines():
            label, *pixels = map(int, line.split(","))
            rows.append((label, pixels))
    return rows


def accuracy(weights: list[float], rows: list[tuple[int, list[int]]]) -> float:
    good = sum(
        (sum(w * x for w, x in zip(weights, [1, *px], strict=True)) > 0) == bool(y)
        for y, px in rows
    )
    return good / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    train, test = load(Path(args.data) / "train"), load(Path(args.data) / "test")
    if not train or not test:
        sys.exit(
            f"no samples in {args.data}/train/*.csv and {args.data}/test/*.csv: make the dataset"
            " with examples/demo/make_dataset.py DIR and upload DIR to the container"
        )
    print(
        f"node {os.environ.get('AZ_BATCH_NODE_ID')}: {len(train)} training and {len(test)} test samples"
    )
    weights = [0.0] * 65
    for epoch in range(1, args.epochs + 1):
        errors = 0
        for label, pixels in train:
            x = [1, *pixels]
            predicted = sum(w * xi for w, xi in zip(weights, x, strict=True)) > 0
            if predicted != bool(label):
                errors += 1
                sign = 1 if label else -1
                weights = [w + 0.1 * sign * xi for w, xi in zip(weights, x, strict=True)]
        loss = errors / len(train)
        print(f"metric: loss={loss:.4f} accuracy={accuracy(weights, test):.4f} step={epoch}")
        time.sleep(0.3)
    out = Path(args.model)
    (out / "model.json").write_text(json.dumps({"weights": weights}))
    print(f"model written to {out / 'model.json'}")


if __name__ == "__main__":
    main()
