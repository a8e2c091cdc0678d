"""The run report rendered in real headless Chromium: no console errors, every plot drawn, funnel equal to stats.json.

Debian's chromium and chromium-driver are installed with apt-get when /usr/bin/chromium is
missing, so CI on a fresh machine needs root and the Debian mirrors. Set REPORT_SCREENSHOT
to a path to keep the full-page screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.report import write_report
from test_report_rundir import report_run_dir  # noqa: F401  (the run fixture)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
EXPECTED_PLOTS = {"funnel", "drops", "throughput", "languages", "domains-kept", "domains-rejected", "dedup-clusters", "tokens",
                  "hist-language_score", "hist-gopher_word_count", "hist-gopher_mean_word_length",
                  "hist-gopher_hash_word_ratio", "hist-gopher_stop_word_count", "hist-gopher_dup_line_frac",
                  "hist-quality_score"}


def install_chromium() -> None:
    """Install Debian's chromium and chromium-driver, or fail the session with the reason."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing and apt-get cannot run as root here; "
                    "install the Debian packages chromium and chromium-driver")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]):
        result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed with exit code {result.returncode}:\n{result.stderr[-2000:]}")


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A headless Chromium driven by chromedriver, recording every browser console message."""
    install_chromium()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed; install the project's test extras: pip install -e '.[test]'")

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def real_run_dir(tmp_path_factory, shared_data, ray_cluster) -> Path:
    """A real `pipeline run` over the shared crawl files, report included."""
    from pipeline.config import load_config
    from pipeline.engine import run_pipeline

    out = tmp_path_factory.mktemp("real-run") / "run"
    run_pipeline([str(shared_data / "warc")], str(out), load_config())
    return out


@pytest.fixture(scope="module", params=["hand-built", "real"])
def loaded_report(request, browser, tmp_path_factory):
    """Open a run's report in the browser; return (driver, console messages, stats, screenshot path).

    "hand-built" is the scored cc-text fixture of test_report_rundir; "real" is a real run
    over the shared WARC files.
    """
    report_run_dir = request.getfixturevalue("report_run_dir" if request.param == "hand-built" else "real_run_dir")
    out = report_run_dir / "report.html"
    write_report(str(report_run_dir), str(out))
    browser.get_log("browser")  # drop messages from earlier pages
    browser.get(out.as_uri())
    console = browser.get_log("browser")

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 100, 16000))
    screenshot = tmp_path_factory.mktemp("screenshot") / "report.png"
    browser.save_screenshot(str(screenshot))
    if os.environ.get("REPORT_SCREENSHOT"):
        target = Path(os.environ["REPORT_SCREENSHOT"])
        shutil.copy(screenshot, target.with_name(f"{target.stem}-{request.param}{target.suffix}"))
    stats = json.loads((report_run_dir / "stats.json").read_text())
    return browser, console, stats, screenshot


def test_report_console_has_no_errors(loaded_report):
    _, console, _, _ = loaded_report
    errors = [entry for entry in console if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_report_every_plot_drawn(loaded_report):
    driver, _, _, _ = loaded_report
    images = driver.execute_script(
        "return Array.from(document.querySelectorAll('img.plot')).map(img => ["
        "img.dataset.plot, img.complete, img.naturalWidth, img.naturalHeight, img.src.length])")
    names = {name for name, *_ in images}
    assert EXPECTED_PLOTS <= names
    for name, complete, width, height, source_length in images:
        assert complete, name
        assert width > 100, name
        assert height > 100, name
        assert source_length > 2000, name


def test_report_plots_are_distinct_pngs(loaded_report):
    driver, _, _, _ = loaded_report
    sources = driver.execute_script("return Array.from(document.querySelectorAll('img.plot')).map(img => img.src)")
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(set(sources)) == len(sources)


def test_report_funnel_equals_stats(loaded_report):
    driver, _, stats, _ = loaded_report
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('#funnel td[data-field]')).map(td => "
        "[td.dataset.stage, td.dataset.field, td.dataset.value, td.textContent])")
    shown = {(stage, field): (value, text) for stage, field, value, text in cells}
    for stage in stats["stages"]:
        for field in ("documents_in", "documents_out", "bytes_in", "bytes_out"):
            value, text = shown[(stage["stage"], field)]
            assert int(value) == stage[field], (stage["stage"], field)
            assert int(text.replace(",", "")) == stage[field], (stage["stage"], field)
        assert int(shown[(stage["stage"], "dropped")][0]) == sum(stage["dropped"].values())
    assert len(cells) == 5 * len(stats["stages"])


def test_report_has_no_script_elements(loaded_report):
    driver, _, _, _ = loaded_report
    assert driver.execute_script("return document.querySelectorAll('script, iframe, object').length") == 0


def test_report_screenshot_not_blank(loaded_report):
    _, _, _, screenshot = loaded_report
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000
