"""`make dashboard`: start the embedded services and serve dashboard/app.py on 127.0.0.1.

Streamlit runs headless, bound to 127.0.0.1 (DASHBOARD_PORT, default 8501), usage statistics off.
"""

from __future__ import annotations

import os
import sys

from include.pipeline import environments, settings

APP = settings.REPO_ROOT / "dashboard" / "app.py"


def streamlit_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def main() -> int:
    from include.pipeline.services.stack import start_services

    if os.environ.get("STACK_DASHBOARD_NO_SERVICES") != "1":
        start_services()
    port = int(os.environ.get("DASHBOARD_PORT", "8501"))
    # the dashboards' own stage: the read-only role's password, no other secret
    env = {**environments.stack_env(), **environments.metrics_env(("METRICS_READER",))}
    print(f"==> dashboard on http://127.0.0.1:{port} (Ctrl-C to stop)", flush=True)
    os.execvpe(sys.executable, streamlit_command(port), env)  # noqa: S606 - becomes the Streamlit server


if __name__ == "__main__":
    sys.exit(main())
