"""Two gateway replicas behind the project's nginx rules, for the real-time tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from collabry.devstack.components import Process, free_port

# Tests open many sockets and log in many users from one address; the global per-IP limit is
# not what they exercise.
REPLICA_ENV = {"COLLABRY_GLOBAL_LIMIT": "100000/900"}


@dataclass
class Cluster:
    ports: list[int]
    replicas: list[Process]
    nginx: Process
    public: int
    spawn: Any
    extra_env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.public}"

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self, index: int) -> Process:
        port = self.ports[index]
        proc = self.spawn(f"gateway-{port}", "gateway", "--port", str(port), port=port, extra_env=self.extra_env)
        self.replicas[index] = proc
        return proc


@pytest.fixture
def cluster_env() -> dict[str, str]:
    return dict(REPLICA_ENV)


@pytest.fixture
def cluster(spawn, nginx_for, cluster_env) -> Cluster:
    ports = [free_port(), free_port()]
    # Started together, then awaited: the two replicas boot in parallel.
    replicas = [spawn(f"gateway-{p}", "gateway", "--port", str(p), port=p, extra_env=cluster_env, wait=False)
                for p in ports]
    for proc in replicas:
        proc.wait_ready(60)
    nginx, public = nginx_for(ports)
    return Cluster(ports, replicas, nginx, public, spawn, cluster_env)
