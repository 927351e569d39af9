"""What the stack may use on this machine: how many processes Airflow may run (its cores and free
memory), and the embedded warehouse's memory and checkpoint settings (its RAM)."""

from __future__ import annotations

import os
from dataclasses import dataclass

# What one busy LocalExecutor slot costs: the idle worker (~130 MiB) plus the task process it
# forks (Airflow + the DAG + a dbt build or a PyAirbyte sync), measured at ~400-500 MiB.
TASK_SLOT_MIB = 512


@dataclass(frozen=True)
class Sizing:
    """How many processes Airflow may run here: 2 per core, capped by memory (half the free RAM)."""

    cores: int
    available_mib: int
    parallelism: int  # [core] parallelism: also the LocalExecutor's worker-process count
    api_workers: int

    @classmethod
    def of_this_machine(cls) -> Sizing:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        try:
            import psutil

            available = psutil.virtual_memory().available // 2**20
        except ImportError:  # psutil is in requirements.txt; fall back to free pages
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
        by_memory = max(1, available // 2 // TASK_SLOT_MIB)
        return cls(
            cores=cores,
            available_mib=int(available),
            parallelism=max(2, min(2 * cores, by_memory)),
            api_workers=max(1, min(cores // 2, 4)),
        )

    def airflow_env(self) -> dict[str, str]:
        return {
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "AIRFLOW__API__WORKERS": str(self.api_workers),
        }


def warehouse_settings(total_mib: int | None = None) -> dict[str, str]:
    """Server settings of the embedded warehouse Postgres, from this machine's memory (Postgres's own
    defaults: 128 MB of buffers, 4 MB per sort or hash, a checkpoint forced after 1 GB of WAL,
    after which each page written is logged in full again). A day's dbt build at 10M rows writes
    GBs into tables with indexes (docs/benchmarks.md, "Scale: 10M orders": 13% faster with these).
    A Postgres of your own keeps its own settings.

    - shared_buffers: 1/8 of RAM, 128 MB to 2 GB; effective_cache_size (a planner hint): 1/2;
    - work_mem: 64 MB per sort or hash (a day's 800k changed keys sort in memory; dbt runs 2
      threads, each query a few such nodes), 16 MB under 8 GB of RAM;
    - maintenance_work_mem (index builds of a full rebuild, vacuum): 1/16 of RAM, at most 1 GB;
    - max_wal_size 4 GB and checkpoint_timeout 15 min: checkpoints by time, not forced by a build;
    - wal_buffers: 1/128 of RAM, 16 to 128 MB (Postgres's default is at most 16 MB): a day's build
      logs each page it first touches after a checkpoint in full (~1 GB of WAL at 1M orders), and
      with 16 MB each backend stopped to write the WAL itself 100,000 times.
    """
    if total_mib is None:
        try:
            import psutil

            total_mib = psutil.virtual_memory().total // 2**20
        except ImportError:
            total_mib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    return {
        "shared_buffers": f"{max(128, min(total_mib // 8, 2048))}MB",
        "effective_cache_size": f"{max(256, total_mib // 2)}MB",
        "work_mem": "64MB" if total_mib >= 8192 else "16MB",
        "maintenance_work_mem": f"{max(64, min(total_mib // 16, 1024))}MB",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "15min",
        "wal_buffers": f"{max(16, min(total_mib // 128, 128))}MB",
    }
