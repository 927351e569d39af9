"""Issue 10: a metrics database that accepts the connection, completes the handshake and then
stops answering (a frozen server, a dropped path) must not block a listener or callback.

The server's statement_timeout cannot help (the server never sees the query) and keepalives are
answered by the peer's kernel, so the writer's client-side deadline is what bounds the write.
The database here is the session's real Postgres behind a proxy on 127.0.0.1 that relays the
startup and authentication, then holds the first query forever.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from include.pipeline.observe import listener, schema, writer
from tests.support.metrics import metrics_warnings as _warnings
from tests.support.metrics import runtime_ti

pytestmark = pytest.mark.integration


class StallingProxy:
    """Relays bytes to `target` until the client sends its first query ('Q'), then relays nothing."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.stalled = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if from_client and chunk[:1] == b"Q":
                    self.stalled.set()
                if self.stalled.is_set():
                    continue  # hold everything: the connection stays open and silent
                dst.sendall(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self.closing = True
        self.server.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def stalling_metrics_db(metrics_params, point_metrics_at):
    proxy = StallingProxy((metrics_params["host"], metrics_params["port"]))
    point_metrics_at({**metrics_params, "port": proxy.port})
    yield proxy
    proxy.close()


def test_a_database_that_stalls_after_connecting_costs_one_deadline_and_the_caller_goes_on(
    stalling_metrics_db, metrics_params, caplog, monkeypatch, sql
):
    monkeypatch.setenv("STACK_METRICS_DEADLINE", "3")
    monkeypatch.setenv("STACK_METRICS_RETRY_AFTER", "30")
    caplog.set_level(logging.WARNING)
    ti = runtime_ti("transform.orders.run", 1, "success")
    timings = []
    for hook in (listener.on_task_instance_running, listener.on_task_instance_success):
        started = time.monotonic()
        hook(None, ti)  # what the scheduler's listener calls; it must return
        timings.append(time.monotonic() - started)
    found = _warnings(caplog)
    print(f"stalled metrics DB: first callback {timings[0]:.2f} s, second {timings[1]:.3f} s; {found}")
    assert stalling_metrics_db.stalled.is_set(), "the handshake went through: the stall came after connecting"
    assert 2.5 <= timings[0] <= 8, f"bounded by the 3 s deadline, took {timings[0]:.2f} s"
    assert timings[1] < 0.1, "within the retry window the next callback does not try again"
    assert len(found) == 2, found
    assert "did not answer within 3 s" in found[0] and "was unreachable" in found[1]
    assert sql("select count(*) from metrics.task_events") == [(0,)]


def test_a_healthy_write_is_not_cut_by_the_deadline(metrics_params, monkeypatch, sql):
    """The deadline covers one short transaction; a write that finishes in time is kept."""
    monkeypatch.setenv("STACK_METRICS_DEADLINE", "3")
    writer.reset()
    listener.on_task_instance_success(None, runtime_ti("a", 1, "success"))
    time.sleep(3.5)  # past the deadline: the timer of a closed connection must touch nothing
    listener.on_task_instance_success(None, runtime_ti("b", 1, "success"))
    assert sql("select task_id from metrics.task_events order by task_id") == [("a",), ("b",)]
    assert schema.migrate(metrics_params) == []  # migrate runs on a bounded connection too
