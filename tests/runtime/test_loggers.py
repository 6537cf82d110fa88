"""caplm.runtime.loggers: CSV curves per part, history replay, and W&B that never waits on a
network it cannot reach."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from caplm.runtime import loggers


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens on it once closed


def test_reachable_tells_an_open_port_from_a_closed_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert loggers.reachable(f"http://127.0.0.1:{server.getsockname()[1]}")
    assert not loggers.reachable(f"http://127.0.0.1:{closed_port()}")
    assert not loggers.reachable("https://no-such-host.invalid", timeout_s=1)


def test_online_wandb_without_its_server_logs_offline_at_once(tmp_path, monkeypatch, caplog):
    wandb = pytest.importorskip("wandb")
    wandb.finish()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        logger = loggers.wandb_logger(str(tmp_path), "capgen", mode="online")
        try:
            assert logger.experiment.offline is True
        finally:
            wandb.finish()
    assert time.perf_counter() - start < 30  # online, it waited about 90 s
    assert "cannot be reached" in caplog.text and "wandb sync" in caplog.text
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_csv_curves_per_part_and_history_replayed_by_epoch(tmp_path):
    lm = loggers.csv_logger(str(tmp_path), "lm")
    loggers.replay_history(lm, [{"epoch": 1, "val/loss": 2.5, "time_s": 1.0},
                                {"epoch": 2, "val/loss": 2.0, "time_s": 1.0}])  # fmt: skip
    lm.save()
    rows = (tmp_path / "logs" / "lm" / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",") == ["step", "val/loss"]
    assert [r.split(",") for r in rows[1:]] == [["1", "2.5"], ["2", "2.0"]]
    assert loggers.build({}, "lm") is False
