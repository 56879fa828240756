"""What every command does before its own work: read and check the settings, keep numeric
libraries to their thread budget, and set up logging for the process it runs as."""

from __future__ import annotations

import os

from ..config import Settings, load_settings


def limit_threads(settings: Settings) -> None:
    # Multi-threaded BLAS on a few shared cores is much slower than one thread; set before numpy loads.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(settings.threads))


def settings_for(process: str, *, require: tuple[str, ...] = ()) -> Settings:
    """The validated settings of a ``process`` (gateway, engine, worker, admin, ...), with its
    threads limited and its logging configured; a bad setting raises ``ConfigError``."""
    from ..logging import configure_logging

    settings = load_settings(require=require)
    limit_threads(settings)
    configure_logging(settings, process=process)
    return settings
