"""What the engine benchmarks share: a throwaway FerretDB (and Redis) and synthetic chunks."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# One BLAS/OpenMP thread, set before numpy loads: several threads on 2 shared cores are slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from collabry.devstack import components


@dataclass
class Infra:
    root: Path
    mongo_uri: str
    redis_url: str


@contextlib.contextmanager
def infra() -> Iterator[Infra]:
    with tempfile.TemporaryDirectory(prefix="collabry-bench-") as tmp:
        root = Path(tmp)
        redis_port = components.free_port()
        redis = components.redis(redis_port, root / "redis").start()
        database = components.start_database(root, components.free_port())
        try:
            redis.wait_ready()
            yield Infra(root, database.uri, f"redis://127.0.0.1:{redis_port}/0")
        finally:
            database.stop()
            redis.stop()


def unit_rows(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds per call over ``repeat`` calls (after two warm-up calls)."""
    fn()
    fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return samples[len(samples) // 2]


SENTENCES = [
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The chloroplast contains thylakoid membranes stacked into grana.",
    "Cellular respiration releases energy from glucose in the mitochondria.",
    "The French Revolution transformed the political landscape of Europe.",
    "Binary search halves the interval on each step and runs in logarithmic time.",
    "Newton's laws describe the relationship between forces and motion.",
    "Enzymes lower the activation energy of biochemical reactions.",
    "Supply and demand determine prices in a competitive market.",
]


def synthetic_text(paragraphs: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    out = []
    for p in range(paragraphs):
        picks = rng.choice(len(SENTENCES), size=6)
        out.append(" ".join(f"{SENTENCES[i]} (section {p}.{j})" for j, i in enumerate(picks)))
    return "\n\n".join(out)
