"""`python -m pipeline inspect`: filters by reason, stage, kept and URL, sampling, terminal safety and paging."""

from __future__ import annotations

import io
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.cli import main as cli_main
from pipeline.commands import inspect
from pipeline.report import rundir
from test_report_rundir import report_run_dir  # noqa: F401  (the run fixture)

HEADER = re.compile(r"^── \[(\d+)/(\d+)\] (kept|rejected)(?:  stage=(\S+)  reason=(\S+))?$", re.MULTILINE)
URL_LINE = re.compile(r"^   url:    (.*)$", re.MULTILINE)


def run_inspect(capsys, *arguments) -> tuple[int, str, str]:
    code = cli_main(["inspect", *map(str, arguments), "--no-pager"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def reason_counts(run_dir) -> dict:
    return rundir.value_counts(rundir.parquet_files(run_dir, rundir.REJECTED), "reason")


def test_inspect_reason_shows_only_that_reason(report_run_dir, capsys):
    code, out, _ = run_inspect(capsys, report_run_dir, "--reason", "gopher_min_words", "-n", "500")
    headers = HEADER.findall(out)
    assert code == 0
    assert len(headers) == reason_counts(report_run_dir)["gopher_min_words"]
    assert {reason for *_, reason in headers} == {"gopher_min_words"}
    assert {status for _, _, status, _, _ in headers} == {"rejected"}


def test_inspect_reason_marks_dropping_score(report_run_dir, capsys):
    _, out, _ = run_inspect(capsys, report_run_dir, "--reason", "gopher_min_words", "-n", "3")
    assert len(re.findall(r"\*gopher_word_count=\d+ \(min 50, max 100000\)", out)) == 3


def test_inspect_stage_shows_only_that_stage(report_run_dir, capsys):
    code, out, _ = run_inspect(capsys, report_run_dir, "--stage", "langid", "-n", "20")
    headers = HEADER.findall(out)
    assert code == 0
    assert len(headers) == 20
    assert {stage for _, _, _, stage, _ in headers} == {"langid"}
    assert {reason for *_, reason in headers} <= {"language_not_kept", "language_score_low"}


def test_inspect_kept_shows_only_kept(report_run_dir, capsys):
    _, out, _ = run_inspect(capsys, report_run_dir, "--kept", "-n", "7")
    headers = HEADER.findall(out)
    assert len(headers) == 7
    assert {status for _, _, status, _, _ in headers} == {"kept"}


def test_inspect_default_mixes_kept_and_rejected(report_run_dir, capsys):
    _, out, _ = run_inspect(capsys, report_run_dir, "-n", "40")
    assert {status for _, _, status, _, _ in HEADER.findall(out)} == {"kept", "rejected"}


def test_inspect_url_substring(report_run_dir, capsys):
    _, out, _ = run_inspect(capsys, report_run_dir, "--url", "wikipedia.org", "-n", "1000")
    urls = URL_LINE.findall(out)
    assert len(urls) > 5
    assert all("wikipedia.org" in url for url in urls)


def test_inspect_url_regex(report_run_dir, capsys):
    _, out, _ = run_inspect(capsys, report_run_dir, "--url", r"^https://(fr|it)\.wikipedia\.org/", "-n", "1000")
    urls = URL_LINE.findall(out)
    assert urls
    assert all(re.match(r"^https://(fr|it)\.wikipedia\.org/", url) for url in urls)


def test_inspect_url_invalid_regex_as_substring(report_run_dir, capsys):
    code, out, err = run_inspect(capsys, report_run_dir, "--url", "evil.example/<script>alert(", "-n", "5")
    assert code == 0
    assert len(HEADER.findall(out)) == 1


def test_inspect_same_seed_same_sample(report_run_dir, capsys):
    first = run_inspect(capsys, report_run_dir, "-n", "5", "--seed", "11")[1]
    second = run_inspect(capsys, report_run_dir, "-n", "5", "--seed", "11")[1]
    other = run_inspect(capsys, report_run_dir, "-n", "5", "--seed", "12")[1]
    assert first == second
    assert first != other


def test_inspect_no_match_exit_1(report_run_dir, capsys):
    code, out, err = run_inspect(capsys, report_run_dir, "--reason", "no_such_reason")
    assert code == 1
    assert out == ""
    assert "no documents" in err
    assert "--reason 'no_such_reason'" in err


def test_inspect_kept_with_reason_exit_2(report_run_dir, capsys):
    code, _, err = run_inspect(capsys, report_run_dir, "--kept", "--reason", "gopher_min_words")
    assert code == 2
    assert "--kept cannot be combined" in err


def test_inspect_missing_run_dir_exit_2(tmp_path, capsys):
    code, _, err = run_inspect(capsys, tmp_path / "absent")
    assert code == 2
    assert "not found" in err


def test_inspect_strips_control_characters(tmp_path, capsys):
    (tmp_path / "documents").mkdir()
    text = "title\x1b[2J\x1b]0;owned\x07\nsecond\x9bline"
    pq.write_table(pa.table({"id": ["a"], "url": ["http://x.org/\x1b[31m"], "text": [text]}), tmp_path / "documents" / "k.parquet")
    _, out, _ = run_inspect(capsys, tmp_path, "--kept")
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\x9b" not in out
    assert "title\ufffd[2J" in out


def test_inspect_wraps_to_terminal_width(report_run_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    _, out, _ = run_inspect(capsys, report_run_dir, "--kept", "-n", "5", "--lines", "3")
    text_lines = [line for line in out.splitlines() if line.startswith("   │ ")]
    assert text_lines
    assert max(len(line) for line in text_lines) <= 60
    assert sum(1 for line in text_lines if "more lines" not in line) <= 15


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_show_pages_long_output_on_terminal(tmp_path, monkeypatch):
    paged = tmp_path / "paged.txt"
    monkeypatch.setenv("PAGER", f"sh -c 'cat > {paged}'")
    monkeypatch.setenv("LINES", "10")
    stream = FakeTerminal()
    inspect.show("line\n" * 50, stream)
    assert paged.read_text() == "line\n" * 50
    assert stream.getvalue() == ""


def test_show_prints_short_output_directly(tmp_path, monkeypatch):
    paged = tmp_path / "paged.txt"
    monkeypatch.setenv("PAGER", f"sh -c 'cat > {paged}'")
    monkeypatch.setenv("LINES", "100")
    stream = FakeTerminal()
    inspect.show("line\n" * 5, stream)
    assert not paged.exists()
    assert stream.getvalue() == "line\n" * 5


def test_show_never_pages_a_pipe(tmp_path, monkeypatch):
    monkeypatch.setenv("PAGER", f"sh -c 'cat > {tmp_path / 'paged.txt'}'")
    monkeypatch.setenv("LINES", "10")
    stream = io.StringIO()
    inspect.show("line\n" * 50, stream)
    assert stream.getvalue() == "line\n" * 50


def test_show_missing_pager_prints(monkeypatch):
    monkeypatch.setenv("PAGER", "no-such-pager-binary")
    monkeypatch.setenv("LINES", "10")
    assert shutil.which("no-such-pager-binary") is None
    stream = FakeTerminal()
    inspect.show("line\n" * 50, stream)
    assert stream.getvalue() == "line\n" * 50
