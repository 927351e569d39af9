"""Secrets stay where they belong: files owner-only from the first byte, child processes without
the task's secrets, and a connection's password nowhere in its log, result (XCom) or metrics rows."""

from __future__ import annotations

import json
import os
import secrets
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from include.pipeline import env_file, private_files, settings
from include.pipeline.endpoints import Warehouse
from include.pipeline.ingest import embedded
from include.pipeline.ingest.declaration import load_connections
from tests.support.s3 import stage_keys


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """umask 000: a file created without an explicit mode would be world-readable (0666)."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture
def modes_seen(monkeypatch):
    """Every mode a secret file had at a chmod or a rename onto it (the moments a looser file
    could have been read): a write-then-chmod shows its 0666 here."""
    seen: list[tuple[str, int]] = []
    real_chmod, real_replace = Path.chmod, os.replace

    def chmod(self, new_mode, **kw):
        if self.exists():
            seen.append((f"{self} before chmod", mode(self)))
        return real_chmod(self, new_mode, **kw)

    def replace(src, dst, **kw):
        seen.append((f"{src} before rename", mode(Path(src))))
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(Path, "chmod", chmod)
    monkeypatch.setattr(os, "replace", replace)
    return seen


def test_a_new_env_file_is_0600_from_its_first_byte(tmp_path, open_umask, modes_seen, monkeypatch):
    for key in settings.GENERATED_SECRETS:
        monkeypatch.delenv(key, raising=False)
    env = tmp_path / ".env"
    added = env_file.ensure_env_file(env)
    assert set(added) == set(settings.GENERATED_SECRETS)
    assert mode(env) == 0o600
    assert modes_seen and all(m == 0o600 for _, m in modes_seen), modes_seen
    assert [p.name for p in tmp_path.iterdir()] == [".env"], "no temp file left behind"


def test_an_existing_looser_env_file_is_tightened_with_a_warning(tmp_path, capsys, monkeypatch):
    for key in settings.GENERATED_SECRETS:
        monkeypatch.setenv(key, "from-the-environment")  # nothing to add: only the mode changes
    env = tmp_path / ".env"
    env.write_text("WAREHOUSE_PASSWORD=x\n")
    env.chmod(0o644)
    assert env_file.ensure_env_file(env) == []
    assert mode(env) == 0o600
    err = capsys.readouterr().err
    assert f"{env} was readable by others (mode 644); set to 600" in err
    env_file.ensure_env_file(env)
    assert capsys.readouterr().err == "", "a private file is left alone, silently"


def test_write_private_replaces_atomically_with_0600(tmp_path, open_umask, modes_seen):
    target = tmp_path / "passwords.json"
    target.write_text("old")
    target.chmod(0o644)
    modes_seen.clear()  # the setup's own chmod
    private_files.write_private(target, json.dumps({"admin": "s3cret"}))
    assert json.loads(target.read_text()) == {"admin": "s3cret"} and mode(target) == 0o600
    assert [m for _, m in modes_seen] == [0o600]


def test_airflow_home_is_made_private_and_an_open_one_is_tightened(tmp_path, capsys):
    home = private_files.private_dir(tmp_path / "airflow")
    assert mode(home) == 0o700
    open_home = tmp_path / "open"
    open_home.mkdir()
    open_home.chmod(0o755)
    private_files.private_dir(open_home)
    assert mode(open_home) == 0o700
    assert "was readable by others (mode 755); set to 700" in capsys.readouterr().err


# -- child processes ---------------------------------------------------------------------------
TASK_SECRETS = {
    "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(12),
    "METRICS_PASSWORD": secrets.token_urlsafe(12),
    "AIRFLOW_CONN_WAREHOUSE": "postgresql://u:" + secrets.token_urlsafe(12) + "@h/db",
    "AIRFLOW__CORE__FERNET_KEY": secrets.token_urlsafe(12),
}


@pytest.fixture
def task_env(monkeypatch):
    """A task's environment: the stack's secrets, and the S3 keys connections.yaml refers to."""
    for key, value in TASK_SECRETS.items():
        monkeypatch.setenv(key, value)
    s3 = {"S3_ENDPOINT": "http://127.0.0.1:9", "S3_ACCESS_KEY": secrets.token_hex(8)}
    s3["S3_SECRET_KEY"] = secrets.token_urlsafe(16)
    for key, value in {**s3, **stage_keys(s3["S3_ACCESS_KEY"], s3["S3_SECRET_KEY"])}.items():
        monkeypatch.setenv(key, value)
    return s3


def fake_runtime(tmp_path: Path, monkeypatch, body: str) -> Path:
    """A stand-in for the PyAirbyte interpreter (AIRBYTE_RUNTIME_PYTHON): a real child process
    that records its environment and the spec it was given, then runs `body`."""
    dump = tmp_path / "child.json"
    script = tmp_path / "runtime"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(f"""\
            import json, os, sys
            spec = json.loads(sys.stdin.readline())  # one line, as the runner reads it: stdin stays open
            open({str(dump)!r}, "w").write(json.dumps({{"env": dict(os.environ), "spec": spec}}))
        """)
        + textwrap.dedent(body)
    )
    script.chmod(0o700)
    monkeypatch.setenv("AIRBYTE_RUNTIME_PYTHON", str(script))
    return dump


def test_the_pyairbyte_child_gets_only_what_it_needs(tmp_path, monkeypatch, task_env):
    body = 'print("RESULT " + json.dumps({"connection": spec["connection"], "streams": {}}))\n'
    dump = fake_runtime(tmp_path, monkeypatch, body)
    monkeypatch.setattr(settings, "LOCAL_DIR", tmp_path / "local")
    connection = load_connections(settings.CONNECTIONS_FILE).connection("shop_to_warehouse")
    target = Warehouse("127.0.0.1", 5432, "postgres", secrets.token_urlsafe(12), "warehouse")
    embedded.sync_connection(connection, target, log=lambda _: None)
    child = json.loads(dump.read_text())
    env = child["env"]
    leaked = [k for k, v in env.items() if any(s in v for s in TASK_SECRETS.values())]
    assert leaked == [], f"the task's secrets reached the child: {leaked}"
    assert not any(k.startswith(("AIRFLOW", "METRICS_", "S3_")) for k in env), sorted(env)
    assert env["WAREHOUSE_PASSWORD"] == target.password  # what it needs, and only by name
    assert env["PATH"] == os.environ["PATH"] and env["AIRBYTE_OFFLINE_MODE"] == "1"
    assert "PYTHONPATH" not in env
    # the source's secrets reach it in the spec on stdin, never in its environment or argv
    assert child["spec"]["config"]["credentials"]["aws_secret_access_key"] == task_env["S3_SECRET_KEY"]
    assert task_env["S3_SECRET_KEY"] not in json.dumps(env)


def test_case_17_a_connection_secret_is_in_no_log_line_result_or_metrics_row(tmp_path, monkeypatch, task_env):
    """Reliability case 17, embedded engine: the connector prints its config (some do, on an
    error); the secret from `${S3_SECRET_KEY}` reaches no task log line, no return value (XCom),
    no error text and no metrics row built from them."""
    from include.pipeline.observe.callbacks import sync_statements

    body = """\
        print("connector config: " + json.dumps(spec["config"]))
        print("warehouse password is " + os.environ["WAREHOUSE_PASSWORD"])
        print("RESULT " + json.dumps({"connection": spec["connection"], "streams": {
            "users": {"records": 1, "table": "raw.users", "seconds": 0.1}}}))
        sys.exit(1 if os.path.exists(sys.argv[0] + ".fail") else 0)
    """
    fake_runtime(tmp_path, monkeypatch, body)
    runtime = tmp_path / "runtime"
    monkeypatch.setattr(settings, "LOCAL_DIR", tmp_path / "local")
    connection = load_connections(settings.CONNECTIONS_FILE).connection("shop_to_warehouse")
    target = Warehouse("127.0.0.1", 5432, "postgres", secrets.token_urlsafe(12), "warehouse")
    secret_values = (task_env["S3_SECRET_KEY"], task_env["S3_ACCESS_KEY"], target.password)
    key = {"dag_id": "d", "run_id": "r", "task_id": "t", "try_number": 1}

    lines: list[str] = []
    result = embedded.sync_connection(connection, target, log=lines.append)
    assert any("connector config" in line and "**********" in line for line in lines), lines
    statements = sync_statements(key, result, connection=connection.name)

    Path(f"{runtime}.fail").touch()  # the second run fails: its error carries the output's tail
    with pytest.raises(embedded.EmbeddedSyncError) as failed:
        embedded.sync_connection(connection, target, log=lines.append)
    statements += sync_statements(key, None, connection=connection.name, error=failed.value)

    assert "connector config" in str(failed.value)
    rows = json.dumps([row for _, row in statements], default=str)
    assert any(row.get("error") == str(failed.value)[:2000] for _, row in statements)  # copied into a row
    text = "\n".join(lines) + json.dumps(result) + str(failed.value) + rows
    for value in secret_values:
        assert value not in text
