"""The Redis of the in-process tests: the database this run claims for them on the local
Redis, or, with SWITCHBOARD_TEST_REDIS_CLUSTER=1, a Redis Cluster the run starts for itself
(three masters in a temporary folder, stopped at exit), so that the same tests check that
every feature works on a cluster too."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

from switchboard.local_cluster import LocalCluster
from tests.prerequisites import require_redis, require_redis_server
from tests.redis_databases import db, url

ON_CLUSTER = os.environ.get("SWITCHBOARD_TEST_REDIS_CLUSTER") == "1"


def require_app_redis() -> None:
    """Skip (fail under CI=true) when the in-process tests' Redis cannot be had."""
    if ON_CLUSTER:
        require_redis_server()
    else:
        require_redis()


@functools.cache
def app_url() -> str:
    """The REDIS_URL of the in-process tests; each test flushes what it holds."""
    if not ON_CLUSTER:
        return url(db("app"))
    folder = Path(tempfile.mkdtemp(prefix="switchboard-test-cluster-"))
    # No replicas: the tests fail no master over, and the machine runs three processes less.
    cluster = LocalCluster(folder, replicas=0, binary=require_redis_server())
    atexit.register(_remove, cluster, folder)
    return cluster.start().url


def app_broker_url() -> str:
    """The Celery transport of the in-process tests, which the recording task sender never
    uses: their Redis, or RabbitMQ beside a cluster (Celery cannot queue on one)."""
    return "amqp://guest:guest@127.0.0.1:5672//" if ON_CLUSTER else app_url()


def _remove(cluster: LocalCluster, folder: Path) -> None:
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)
