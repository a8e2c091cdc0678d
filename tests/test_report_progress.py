"""pipeline/progress.py: counts, per-file log lines, periodic status lines off a terminal, ETA and the tqdm bar."""

from __future__ import annotations

import logging

import pytest

from pipeline.progress import Progress, format_bytes, format_duration


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_file_done_counts_and_logs(caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with Progress("process", total_files=2, enabled=False) as progress:
            progress.file_done("a.warc.gz", documents=10, bytes_in=2048, seconds=1.5, errors=1)
    assert progress.documents == 10
    assert progress.bytes_in == 2048
    assert progress.files_done == 1
    assert progress.errors == 1
    assert "process: file 1/2 done: a.warc.gz: 10 documents, 2.0 KiB in 1.5 s, 1 read errors" in caplog.text


def test_file_done_counted_not_added_twice():
    with Progress("process", enabled=False) as progress:
        progress.advance(documents=4, bytes_in=100)
        progress.file_done("a.warc.gz", documents=4, bytes_in=100, seconds=1.0, counted=True)
    assert progress.documents == 4
    assert progress.bytes_in == 100


def test_status_logged_every_interval_without_bar(caplog):
    clock = FakeClock()
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with Progress("process", total_bytes=1000, log_every_s=30, enabled=False, clock=clock) as progress:
            clock.now += 10
            progress.advance(documents=5, bytes_in=100)
            clock.now += 25
            progress.advance(documents=5, bytes_in=150)
    status = [record.getMessage() for record in caplog.records if "ETA" in record.getMessage()]
    assert len(status) == 1
    assert "10 documents" in status[0]
    assert "250 B of 1,000 B" in status[0]
    assert "ETA 1m45s" in status[0]


def test_eta_from_files_without_bytes():
    clock = FakeClock()
    progress = Progress("process", total_files=4, enabled=False, clock=clock)
    clock.now += 20
    progress.file_done("a", documents=1, bytes_in=0, seconds=20)
    assert progress.eta_s() == pytest.approx(60)


def test_eta_unknown_without_totals():
    progress = Progress("process", enabled=False)
    progress.advance(documents=3, bytes_in=30)
    assert progress.eta_s() is None


def test_bar_written_to_stderr(capsys):
    with Progress("tokenize", total_bytes=4096, enabled=True) as progress:
        progress.advance(documents=3, bytes_in=2048)
        progress.file_done("x", documents=0, bytes_in=0, seconds=0.1)
    err = capsys.readouterr().err
    assert "tokenize" in err
    assert "3 docs" in err
    assert progress.bar is None


def test_summary_line():
    clock = FakeClock()
    progress = Progress("dedup", enabled=False, clock=clock)
    progress.file_done("a", documents=1000, bytes_in=3 * 1024 * 1024, seconds=2)
    clock.now += 10
    assert progress.summary() == "dedup: 1 files, 1,000 documents, 3.0 MiB in 10s (100 documents/s, 307.2 KiB/s)"


@pytest.mark.parametrize("count, expected", [(0, "0 B"), (1023, "1,023 B"), (1536, "1.5 KiB"), (5 * 2**30, "5.0 GiB"),
                                             (3 * 2**50, "3,072.0 TiB")])
def test_format_bytes(count, expected):
    assert format_bytes(count) == expected


@pytest.mark.parametrize("seconds, expected", [(0, "0s"), (59.4, "59s"), (725, "12m05s"), (10920, "3h02m")])
def test_format_duration(seconds, expected):
    assert format_duration(seconds) == expected
