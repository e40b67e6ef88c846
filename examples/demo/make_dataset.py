"""Write a small synthetic "digits" dataset: 8x8 images of noisy strokes as CSV rows.

Deterministic (fixed seed), and a file that already holds its content is left untouched:
embedded accounts tell unchanged files by size and modification time, so re-running the
demo uploads nothing new.
"""

import random
import sys
from pathlib import Path

# each digit's rows stay one picture
# fmt: off
PATTERNS = {
    0: ["..####..", ".#....#.", "#......#", "#......#", "#......#", "#......#", ".#....#.", "..####.."],
    1: ["...##...", "..###...", "...##...", "...##...", "...##...", "...##...", "...##...", "..####.."],
}
# fmt: on


def sample(label: int, rng: random.Random) -> list[int]:
    pixels = [1 if c == "#" else 0 for row in PATTERNS[label] for c in row]
    return [p ^ (rng.random() < 0.08) for p in pixels]


def main(target: Path) -> None:
    rng = random.Random(42)
    for split, count in (("train", 400), ("test", 100)):
        (target / split).mkdir(parents=True, exist_ok=True)
        for shard in range(4):
            rows = []
            for _ in range(count // 4):
                label = rng.randint(0, 1)
                rows.append(",".join(map(str, [label, *sample(label, rng)])))
            _write_if_changed(target / split / f"part-{shard}.csv", "\n".join(rows) + "\n")


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
