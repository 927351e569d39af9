"""How many processes Airflow may run on this machine (its cores and free memory)."""

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
