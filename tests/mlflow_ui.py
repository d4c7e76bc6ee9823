"""The MLflow UI of a finished study, looked at in a real headless browser.

Used by ``tests/integration/test_mlflow_ui.py`` (which asserts on what it returns) and by
``scripts/mlflow_ui_screenshot.py`` (which makes the screenshots in ``docs/``), so both look at
the UI the same way:

- :func:`study_ui` starts ``polytask ui OUTPUT --port P`` (the command users run) on a free port,
  waits for ``/health`` and, on exit, stops it and the ``mlflow`` server it started;
- :func:`chromium` drives Debian's ``/usr/bin/chromium`` through Debian's ``/usr/bin/chromedriver``
  with Selenium (the driver's path is given, so Selenium Manager never downloads anything);
  :func:`ensure_chromium` installs the two packages where they are missing and can be;
- :class:`MlflowUi` opens the experiment's runs list (nested runs expanded) and the chart view
  filtered to one metric, and reports what the page shows: run names and links, and the chart's
  plotted traces (read from the plotly element) and drawn SVG lines and points.

Pages of MLflow 3.17 (a React app; the hash routes below are what its own links use): the runs
list is ``#/experiments/<id>/runs?workflowType=machine_learning&compareRunsMode=TABLE`` —
``workflowType`` is needed because MLflow 3 opens an experiment in its GenAI view by default —
and ``compareRunsMode=CHART`` shows one chart card per metric for every visible run. Nested runs
start collapsed under their parent; the chart view shows only the first 10 runs until "Show all
runs" is chosen.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from polytask.ops.server import free_port, stop_process_group, wait_for_health
from tests.debian import ensure_packages

PACKAGES = ["chromium", "chromium-driver"]  # Debian's Chromium and its matching chromedriver
PROGRAMS = ["chromium", "chromedriver"]
WINDOW = (1600, 1000)
WAIT = 90.0  # seconds for any one thing to appear: the UI is a React app that loads runs and metrics over HTTP
RUN_LINKS = '//*[@role="gridcell"]//a[contains(@href, "/runs/")]'  # a run's name in the runs grid (list and chart view)
SCROLL_TO_SECTION = """
for (const element of document.querySelectorAll('h1, h2, h3, h4, h5, span, div')) {
  if (element.children.length === 0 && element.textContent.trim() === arguments[0]) { element.scrollIntoView({block: 'start'}); }
}
"""  # scrolls each leaf element whose text is the given section name into view
CARD = '//*[@data-testid="experiment-view-compare-runs-card"][.//h4[@title={title}]]'  # a chart card by its title


class UiError(AssertionError):
    """The page did not show what was waited for; the message ends with an excerpt of the page."""


def ensure_chromium() -> str | None:
    """None when Chromium and chromedriver are installed (installing them now where needed and
    possible), else why they cannot be, for ``pytest.skip``."""
    return ensure_packages(PACKAGES, PROGRAMS)


def study_runs(output: Path):
    """A study's :class:`~polytask.ops.tracking.Tracking` (from ``study.json``) and its trials' nested
    MLflow runs, read from MLflow, oldest first."""
    from mlflow import MlflowClient

    from polytask.ops.tracking import Tracking

    tracking = Tracking.load(Path(output))
    client = MlflowClient(tracking.uri)
    runs = client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'", max_results=10_000)
    return tracking, sorted(runs, key=lambda run: run.info.start_time or 0)


def program(name: str) -> str:
    return shutil.which(name) or f"/usr/bin/{name}"


@contextlib.contextmanager
def study_ui(output: Path, port: int = 0, start_timeout: float = 120.0) -> Iterator[str]:
    """Run ``polytask ui OUTPUT --port PORT`` (``port=0``: a free one) in its own session and
    yield its URL once ``GET /health`` answers 200. On exit the command is told to stop (SIGTERM),
    which stops the ``mlflow`` server it started; whatever is left of its process group is killed."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="polytask-ui-", suffix=".log", delete=False)  # noqa: SIM115 (closed below)
    command = [sys.executable, "-m", "polytask", "ui", str(output), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_health(url, process, start_timeout, f"`{' '.join(command[2:])}`", lambda: _tail(log.name), poll=0.5)
        yield url
    finally:
        stop_process_group(process, timeout=30)  # the command's SIGTERM handler stops its server's own process group
        log.close()
        os.unlink(log.name)


def _tail(path: str, lines: int = 30) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def chromium(width: int = WINDOW[0], height: int = WINDOW[1]):
    """A headless Chromium driven by Selenium through Debian's chromedriver; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = program("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=program("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Chart:
    """What a chart card shows: its title, the traces plotly was given (one per run, by name:
    ``[(step, value), ...]``), how many polylines and markers it drew in SVG, and its legend."""

    title: str
    traces: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    lines: int = 0  # SVG paths of traces with at least two points
    points: int = 0  # SVG markers
    legend: list[str] = field(default_factory=list)


class MlflowUi:
    """The MLflow UI at ``url`` (e.g. from :func:`study_ui`) in ``driver`` (from :func:`chromium`)."""

    def __init__(self, driver, url: str, timeout: float = WAIT) -> None:
        self.driver = driver
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._assistant_closed = False

    # -- pages ------------------------------------------------------------------------------

    def runs(self, experiment_id: str, expected: Iterable[str]) -> dict[str, str]:
        """Open the experiment's runs list, expand parent runs, and wait until every run name in
        ``expected`` is listed. Returns ``{run_id: name}`` of every run the list shows."""
        self._open(f"#/experiments/{experiment_id}/runs?workflowType=machine_learning&compareRunsMode=TABLE")
        return self._expand_runs(set(expected))

    def metric_chart(self, experiment_id: str, metric: str, expected: Iterable[str], full_screen: bool = True) -> Chart:
        """Open the runs' chart view with every run shown, filter the charts to ``metric``, wait
        until its chart has drawn a trace for every run name in ``expected``, and (``full_screen``)
        open that chart full screen, as it is worth a screenshot."""
        from selenium.webdriver.common.by import By

        expected = set(expected)
        self._open(f"#/experiments/{experiment_id}/runs?workflowType=machine_learning&compareRunsMode=CHART")
        self._expand_runs(expected)
        self._show_all_runs()
        search = self._wait(lambda d: _displayed(d.find_elements(By.CSS_SELECTOR, 'input[placeholder="Search metric charts"]')), "the chart search box")
        search.clear()
        search.send_keys(metric)
        card_xpath = CARD.format(title=_xpath_literal(metric))

        section = metric.rsplit("/", 1)[0]  # MLflow groups charts in sections by the metric's prefix

        def drawn(driver) -> Chart | None:
            cards = driver.find_elements(By.XPATH, card_xpath)
            if not cards:
                # Other metrics matching the search (best/..., trivial/...) can push the metric's section
                # below the fold, and MLflow draws only the charts in view: bring its section into view.
                driver.execute_script(SCROLL_TO_SECTION, section)
                return None
            chart = self._read_chart(cards[0], metric)
            return chart if expected <= set(chart.traces) and chart.lines >= len(expected) else None

        chart = self._wait(drawn, f"a chart of {metric} with a drawn trace for each of {sorted(expected)}")
        if full_screen:
            card = self.driver.find_element(By.XPATH, card_xpath)
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
            card.find_element(By.CSS_SELECTOR, 'button[data-component-id="fullscreen_button_chartcard"]').click()

            def enlarged(driver) -> bool:
                dialogs = [d for d in driver.find_elements(By.CSS_SELECTOR, '[role="dialog"]') if d.is_displayed() and metric in d.text]
                return bool(dialogs) and self._read_chart(dialogs[0], metric).lines >= len(expected)

            self._wait(enlarged, f"the chart of {metric} full screen")
            time.sleep(1)  # plotly's resize to the dialog's width
        return chart

    def screenshot(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.driver.save_screenshot(str(path)):
            raise UiError(f"the browser could not save a screenshot to {path}")
        return path

    def excerpt(self, characters: int = 4000) -> str:
        """The visible text of the page and the start of its HTML (style and SVG path data cut), for failure messages."""
        try:
            text = self.driver.execute_script("return document.body ? document.body.innerText : ''") or ""
            html = re.sub(r'\s(?:d|style)="[^"]*"', "", self.driver.page_source)
            html = re.sub(r"<style[^>]*>.*?</style>|<script[^>]*>.*?</script>", "", html, flags=re.S)
        except Exception as exc:  # a dead browser still deserves a message
            return f"(no page excerpt: {exc!r})"
        return f"URL {self.driver.current_url}\n--- visible text ---\n{text[:characters]}\n--- HTML ---\n{html[:characters]}"

    # -- steps -------------------------------------------------------------------------------

    def _open(self, route: str) -> None:
        self.driver.get(f"{self.url}/{route}")
        self._close_assistant()

    def _close_assistant(self) -> None:
        """Close the "MLflow Assistant" side panel MLflow 3.17 opens on a fresh profile (it takes a
        third of the window); absent in other versions, so best effort."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        close = '[data-component-id="mlflow.assistant.chat_panel.close"]'
        if self._assistant_closed:  # it stays closed while the page lives: only look, do not wait
            button = _displayed(self.driver.find_elements(By.CSS_SELECTOR, close))
            if button is not None:
                button.click()
            return
        with contextlib.suppress(TimeoutException):
            button = WebDriverWait(self.driver, 10).until(lambda d: _displayed(d.find_elements(By.CSS_SELECTOR, close)))
            button.click()
        self._assistant_closed = True

    def _listed(self) -> dict[str, str]:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        listed = {}
        for link in self.driver.find_elements(By.XPATH, RUN_LINKS):
            with contextlib.suppress(StaleElementReferenceException):
                href, name = link.get_attribute("href") or "", (link.get_attribute("textContent") or "").strip()
                listed[href.rstrip("/").rsplit("/", 1)[-1]] = name
        return listed

    def _expand_runs(self, expected: set[str]) -> dict[str, str]:
        """Wait for the runs grid, click the expander of each collapsed parent run, and wait until
        every expected run name is listed."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        self._wait(lambda d: self._listed() or None, "the runs grid")
        if not expected <= set(self._listed().values()):
            # Parent rows have one button in their name cell: the expander (child rows have none).
            for button in self.driver.find_elements(By.XPATH, f"{RUN_LINKS}/ancestor::*[@role='gridcell'][1]//button"):
                with contextlib.suppress(StaleElementReferenceException):
                    button.click()

        def all_listed(_driver) -> dict[str, str] | None:
            listed = self._listed()
            return listed if expected <= set(listed.values()) else None

        return self._wait(all_listed, f"the runs {sorted(expected)} in the runs list")

    def _show_all_runs(self) -> None:
        """Make every run visible in the charts (MLflow shows only the first 10 by default)."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        toggles = self.driver.find_elements(By.CSS_SELECTOR, '[aria-label="Toggle visibility of runs"]')
        if not toggles:
            return
        toggles[0].click()
        item = '//*[@role="menuitemradio" and normalize-space(.)="Show all runs"]'
        try:
            WebDriverWait(self.driver, 10).until(lambda d: _displayed(d.find_elements(By.XPATH, item))).click()
        except TimeoutException:
            toggles[0].click()  # no such choice in this version: close the menu again

    def _read_chart(self, container, metric: str) -> Chart:
        """The chart drawn inside ``container`` (a card or the full-screen dialog)."""
        from selenium.webdriver.common.by import By

        plots = container.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
        if not plots:
            return Chart(metric)
        traces = self.driver.execute_script(
            "return (arguments[0].data || []).map(t => ({name: String(t.name), x: Array.from(t.x || [], Number), y: Array.from(t.y || [], Number)}))",
            plots[0],
        )
        chart = Chart(metric)
        for trace in traces:  # MLflow adds a second, unsmoothed trace per run: keep the first of each name
            chart.traces.setdefault(trace["name"], list(zip(trace["x"], trace["y"])))
        paths = self.driver.execute_script(
            "const plot = arguments[0];"
            "return [Array.from(plot.querySelectorAll('g.trace path.js-line'), p => p.getAttribute('d') || ''),"
            " plot.querySelectorAll('g.trace path.point').length]",
            plots[0],
        )
        chart.lines = sum(1 for d in paths[0] if d.count("L") >= 1)  # "M x,y L x,y ...": a polyline through two or more points
        chart.points = int(paths[1])
        chart.legend = [
            span.get_attribute("textContent") for span in container.find_elements(By.XPATH, f".//span[contains(., {_xpath_literal(f'({metric})')})]")
        ]
        return chart

    def _wait(self, condition, what: str):
        """Wait (up to ``timeout``) until ``condition(driver)`` is truthy and return it; else
        raise :class:`UiError` naming ``what`` with an excerpt of the page."""
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, self.timeout, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,)).until(condition)
        except TimeoutException:
            raise UiError(f"the MLflow UI did not show {what} within {self.timeout:g} s\n{self.excerpt()}") from None


def _displayed(elements):
    """The first displayed element of ``elements``, else None (for WebDriverWait)."""
    return next((element for element in elements if element.is_displayed()), None)


def _xpath_literal(text: str) -> str:
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return "concat(" + ", '\"', ".join(f'"{part}"' for part in text.split('"')) + ")"


def distinct_colours(png: Path) -> int:
    """How many distinct colours a PNG has (a blank or failed screenshot has one or two)."""
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    return len(colours or [])
