"""The web page and its JSON API against a real gateway and a real server.

The JSON API is read over plain HTTP (urllib).  The page is driven in Debian's
chromium through selenium and /usr/bin/chromedriver (nothing is downloaded):
it shows a queued job, then its progress, then its completion; a user cancels
their own job from the page and cannot cancel another's; an operator can.
Screenshots at phone and desktop widths are saved in the test's folder, and
also in $PRINTNET_SCREENSHOTS when it is set (how docs/ gets them).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers_e2e import (
    PrinterSpec,
    ServerProcess,
    make_etc,
    published,
    server_env,
    start_server,
    wait_for,
)
from helpers_gateway import Gateway, init_spool, start_gateway

from printnet.api import Station
from printnet.gateway.web import queue_page
from printnet.passwords import hash_password

CI = os.environ.get("CI") == "true"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "root": "root-pw"}
REPORT = b"".join(b"line %d of the quarterly report, long enough to take a while\n" % i
                  for i in range(300))


def test_queue_page_pages_jobs() -> None:
    data = {"jobs": [{"id": str(i)} for i in range(7)], "printers": [], "completed": [],
            "servers": [{"name": None, "locks": []}, {"name": "S1", "locks": []}]}
    page = queue_page(data, 3, 3, None, None, None)
    assert [j["id"] for j in page["jobs"]] == ["6"]
    assert (page["page"], page["pages"], page["total"]) == (3, 3, 7)
    assert queue_page(data, 99, 3, None, None, None)["page"] == 3  # clamped
    assert [s["name"] for s in page["servers"]] == ["S1"]  # no empty "other locks"
    assert queue_page({**data, "jobs": []}, 1, 25, None, None, None)["pages"] == 1


# ---------------------------------------------------------------------------
# A site: server + gateway


@dataclass
class Site:
    root: Path
    spool: Path
    etc: Path
    server: ServerProcess
    gateway: Gateway

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.ipp}"

    def submit(self, user: str, printer: str, title: str, data: bytes, *,
               hold: bool = False, setup: str | None = None) -> str:
        """A job for `user` (the test runs as the service account, which may)."""
        path = self.root / f"{title.replace(' ', '_')}.txt"
        path.write_bytes(data)
        station = Station(self.spool, self.etc, user=user, station="testhost")
        return station.submit([path], printer=printer, title=title, hold=hold,
                              setup=setup)[0].id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    env = server_env(root / "run")
    spool = init_spool(root, env)
    etc = make_etc(root / "s1", "S1", [spool], [
        PrinterSpec("LOCAL", root / "s1/out/LOCAL.prn", baud="9600"),
        PrinterSpec("PAUSED", root / "s1/out/PAUSED.prn", stopped=True),
    ])
    (etc / "gateway.cmd").write_text("AUTH TRUST NETWORKS=127.0.0.0/8\nUSERS gateway.users\n")
    (etc / "gateway.users").write_text("".join(
        f"USER {u} PASSWORD={hash_password(p)}\n" for u, p in PASSWORDS.items()))
    os.chmod(etc / "gateway.users", 0o600)
    server = start_server(etc, "S1", env=env)
    try:
        wait_for(lambda: published(spool, "S1"), 60, "S1 publishes its status",
                 on_timeout=server.log_text)
        gateway = start_gateway(spool, etc, root / "gateway.log", env)
    except BaseException:
        server.stop()
        raise
    yield Site(root, spool, etc, server, gateway)
    gateway.stop()
    assert server.stop() == 0


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()


def http(site: Site, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(site.url + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, dict(res.headers), _body(res.read(), res.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), _body(err.read(), err.headers)


def _body(data: bytes, headers: Any) -> Any:
    return json.loads(data) if "json" in headers.get("Content-Type", "") else data.decode()


# ---------------------------------------------------------------------------
# The JSON API


def test_api_queue_lists_printers_jobs_servers_and_pages(site: Site) -> None:
    ids = [site.submit("bob", "PAUSED", f"api {i}", b"x\n") for i in range(3)]
    note = site.submit("bob", "PAUSED", "api held", b"x\n", hold=True)

    def listed() -> list[dict[str, Any]] | None:
        # Until a server took a request in, it has no position yet.
        jobs: list[dict[str, Any]] = http(site, "/api/jobs?printer=PAUSED&user=bob&per=100")[2]
        return jobs if len(jobs) == 4 and all(j["position"] for j in jobs) else None

    everything = wait_for(listed, 60, "bob's four jobs listed with their positions")
    assert everything is not None
    status, _, data = http(site, "/api/queue?printer=paused&user=bob&per=2&page=2")
    assert status == 200
    assert [j["id"] for j in data["jobs"]] == [ids[2], note]
    assert (data["page"], data["pages"], data["per"]) == (2, 2, 2)
    assert data["filters"] == {"printer": "PAUSED", "user": "bob"}
    assert [p["name"] for p in data["printers"]] == ["PAUSED"]
    assert data["printers"][0]["state"] == "stopped"
    assert [j["id"] for j in everything] == [*ids, note]
    assert [j["position"] for j in everything] == [1, 2, 3, 4]
    assert everything[3]["state"] == "held"
    assert {p["name"] for p in http(site, "/api/printers")[2]} == {"LOCAL", "PAUSED"}
    assert isinstance(http(site, "/api/completed")[2], list)
    servers = http(site, "/api/servers")[2]
    s1 = next(s for s in servers if s["name"] == "S1")
    assert s1["state"] == "running" and s1["lease"] == 2.0
    assert any(lk["name"] == "server.S1" and lk["holder"] == "S1" and lk["age"] < 30
               for lk in s1["locks"])
    assert http(site, f"/api/jobs/{ids[0]}")[2]["title"] == "api 0"
    assert http(site, "/api/jobs/nonsense")[0] == 400
    assert http(site, "/api/queue?page=x")[0] == 400
    for job_id in [*ids, note]:  # clean up for the browser tests
        assert http(site, f"/api/jobs/{job_id}/cancel", method="POST",
                    headers={"Authorization": basic("bob"), "X-Printnet": "1"})[0] == 200


def test_api_identity_and_actions(site: Site) -> None:
    status, headers, _ = http(site, "/api/me")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert http(site, "/api/me", headers={"Authorization": basic("alice")})[2] == {
        "user": "alice", "operator": False}
    assert http(site, "/api/me", headers={"Authorization": basic("root")})[2]["operator"]
    wrong = "Basic " + base64.b64encode(b"alice:guess").decode()
    assert http(site, "/api/me", headers={"Authorization": wrong})[0] == 401
    job = site.submit("bob", "PAUSED", "not alice's", b"x\n", hold=True)
    act = f"/api/jobs/{job}/cancel"
    # No X-Printnet header (a form on another site): refused before anything else.
    assert http(site, act, method="POST", headers={"Authorization": basic("bob")})[0] == 403
    # No proof: a claimed name is not enough to act.
    assert http(site, act, method="POST", headers={"X-Printnet": "1"})[0] == 401
    status, _, body = http(site, act, method="POST",
                           headers={"Authorization": basic("alice"), "X-Printnet": "1"})
    assert (status, body["outcome"]) == (403, "not your job")
    assert http(site, f"/api/jobs/{job}")[2]["state"] == "held"
    status, _, body = http(site, f"/api/jobs/{job}/release", method="POST",
                           headers={"Authorization": basic("root"), "X-Printnet": "1"})
    assert (status, body["outcome"]) == (200, "applied")  # the operator may
    assert http(site, act, method="POST",
                headers={"Authorization": basic("bob"), "X-Printnet": "1"})[0] == 200
    assert http(site, f"/api/jobs/{job}")[2]["state"] == "canceled"


def test_page_and_assets_are_served_with_a_strict_policy(site: Site) -> None:
    status, headers, text = http(site, "/")
    assert status == 200 and "<table id=\"jobs\"" in text
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for name in ("app.js", "app.css", "favicon.svg"):
        assert http(site, f"/static/{name}")[0] == 200
    assert http(site, "/static/../web.py")[0] == 404
    assert http(site, "/static/index.py")[0] == 404


# ---------------------------------------------------------------------------
# The page in chromium


def need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        message = f"{', '.join(missing)} not installed (scripts/test-packages)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="printnet-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                "--window-size=1280,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def until(driver: Any, what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def step(_: Any) -> Any:
        try:
            return check()
        except StaleElementReferenceException:
            return None  # redrawn under us: look again

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(step, message=what)


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def row(driver: Any, table: str, job_id: str) -> dict[str, Any] | None:
    """A job's row as the page shows it: state, cells and buttons (None if absent)."""
    found: dict[str, Any] | None = js(driver, """
        const tr = document.querySelector(`#${arguments[0]} tbody tr[data-job="${arguments[1]}"]`);
        if (!tr) return null;
        return {state: tr.dataset.state, text: tr.innerText,
                buttons: [...tr.querySelectorAll("button")].map(b => b.dataset.action)};
    """, table, job_id)
    return found


def log_in(driver: Any, site: Site, user: str) -> None:
    from selenium.webdriver.common.by import By

    # The tab may still hold an earlier log-in (session storage): wait for the first
    # refresh to show who is logged in, then log out first.
    until(driver, "the page's first refresh",
          lambda: driver.find_element(By.ID, "updated").text.startswith("updated"))
    if js(driver, "return !document.getElementById('who').hidden"):
        driver.find_element(By.ID, "logout").click()
    until(driver, "the log-in form", lambda: driver.find_element(By.ID, "login-user")
          .is_displayed())
    driver.find_element(By.ID, "login-user").clear()
    driver.find_element(By.ID, "login-user").send_keys(user)
    driver.find_element(By.ID, "login-password").send_keys(PASSWORDS[user])
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    until(driver, f"logged in as {user}",
          lambda: driver.find_element(By.ID, "who-name").text.startswith(user))


def click(driver: Any, job_id: str, action: str) -> None:
    from selenium.webdriver.common.by import By

    def button() -> Any:
        found = driver.find_elements(
            By.CSS_SELECTOR, f'#jobs tr[data-job="{job_id}"] button[data-action="{action}"]')
        return found[0] if found else None

    def clicked() -> bool | None:
        # RACE: the page's refresh may redraw the row between finding the button and
        # clicking it; `until` then looks again and clicks the new one.
        found = button()
        if found is None:
            return None
        found.click()
        return True

    until(driver, f"a click on {job_id}'s {action} button", clicked)


def test_page_shows_a_job_queued_then_printing_then_completed(site: Site,
                                                              browser: Any) -> None:
    # Company for the screenshots: finished jobs, other users' jobs, one waiting for
    # its form.
    quick = [site.submit("erin", "LOCAL", "Lunch menu", b"soup\n"),
             site.submit("bob", "LOCAL", "Train times", b"8:15\n")]
    wait_for(lambda: all((site.spool / "done" / f"{q}.json").exists() for q in quick), 90,
             "two quick jobs printed")
    job = site.submit("alice", "LOCAL", "Quarterly report", REPORT, hold=True)
    others = [site.submit("dave", "PAUSED", "Minutes of the board meeting", b"m\n" * 90),
              site.submit("erin", "PAUSED", "Invoice 2026-0117", b"i\n" * 40),
              site.submit("dave", "LOCAL", "Payroll checks", b"c\n", setup="CHECKS")]
    browser.get(site.url + "/")
    until(browser, "the held job on the page",
          lambda: (row(browser, "jobs", job) or {}).get("state") == "held")
    assert "Quarterly report" in (row(browser, "jobs", job) or {})["text"]
    log_in(browser, site, "alice")
    assert (row(browser, "jobs", job) or {})["buttons"] == ["release", "cancel"]
    click(browser, job, "release")  # the page's own control request starts it
    until(browser, "the job printing",
          lambda: (row(browser, "jobs", job) or {}).get("state") == "printing")

    def progress() -> int | None:
        value = js(browser, """
            const card = document.querySelector('.printer[data-printer="LOCAL"]');
            const bar = card && card.querySelector('[role=progressbar]');
            return bar && card.innerText.includes(arguments[0]) ?
                Number(bar.getAttribute('aria-valuenow')) : null;""", job[-6:])
        return value if value is not None and 0 < value < 100 else None

    until(browser, "the printer's card showing the job's progress", progress)
    save_screenshots(browser, site, "printing")
    until(browser, "the job in the finished list",
          lambda: (row(browser, "completed", job) or {}).get("state") == "completed", 180)
    # The done record is written before the job leaves the master file: for a moment
    # it is in both lists.
    until(browser, "the job gone from the queue", lambda: row(browser, "jobs", job) is None)
    for other in others:
        http(site, f"/api/jobs/{other}/cancel", method="POST",
             headers={"Authorization": basic("root"), "X-Printnet": "1"})


def test_user_cancels_own_job_not_anothers_operator_any(site: Site, browser: Any) -> None:
    mine = site.submit("alice", "PAUSED", "alice's draft", b"draft\n")
    theirs = site.submit("bob", "PAUSED", "bob's invoice", b"invoice\n")
    browser.get(site.url + "/?printer=PAUSED")
    log_in(browser, site, "alice")
    until(browser, "both jobs on the page",
          lambda: row(browser, "jobs", mine) and row(browser, "jobs", theirs))
    assert "cancel" in (row(browser, "jobs", mine) or {})["buttons"]
    assert (row(browser, "jobs", theirs) or {})["buttons"] == []  # no button for bob's
    # Even asked directly (the page's own credentials, the page's own header), the
    # servers refuse: alice does not own it.
    status = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(`/api/jobs/${arguments[0]}/cancel`, {method: "POST", headers: {
            "X-Printnet": "1",
            "Authorization": "Basic " + sessionStorage.getItem("printnet.auth")}})
          .then(r => r.json().then(b => done([r.status, b.outcome])));
    """, theirs)
    assert status == [403, "not your job"]
    click(browser, mine, "cancel")
    until(browser, "alice's job canceled, in the finished list",
          lambda: (row(browser, "completed", mine) or {}).get("state") == "canceled")
    until(browser, "alice's job gone from the queue",
          lambda: row(browser, "jobs", mine) is None)
    assert (row(browser, "jobs", theirs) or {}).get("state") == "pending"
    # The operator sees buttons on every job and may cancel bob's.
    log_in(browser, site, "root")
    until(browser, "buttons for the operator",
          lambda: "cancel" in ((row(browser, "jobs", theirs) or {}).get("buttons") or []))
    click(browser, theirs, "cancel")
    until(browser, "bob's job canceled by the operator",
          lambda: (row(browser, "completed", theirs) or {}).get("state") == "canceled")


def test_filters_and_paging_without_reload(site: Site, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ids = [site.submit("carol", "PAUSED", f"page test {i}", b"p\n") for i in range(27)]
    browser.get(site.url + "/")
    js(browser, "window.__marker = 42")  # survives only if the page never reloads
    Select(browser.find_element(By.ID, "filter-printer")).select_by_value("PAUSED")
    browser.find_element(By.ID, "filter-user").send_keys("carol")
    until(browser, "the first page of carol's jobs, filtered in the address too",
          lambda: "printer=PAUSED&user=carol" in browser.current_url
          and js(browser, "return document.getElementById('queue-count').innerText")
          == "(27)" and row(browser, "jobs", ids[0]) is not None)
    assert row(browser, "jobs", ids[25]) is None  # 25 a page
    assert js(browser, "return document.querySelectorAll('#jobs tbody tr').length") == 25
    browser.find_element(By.ID, "next").click()
    until(browser, "the second page", lambda: row(browser, "jobs", ids[26]) is not None)
    assert row(browser, "jobs", ids[0]) is None
    assert js(browser, "return window.__marker") == 42
    for job_id in ids:
        http(site, f"/api/jobs/{job_id}/cancel", method="POST",
             headers={"Authorization": basic("root"), "X-Printnet": "1"})


# ---------------------------------------------------------------------------
# Screenshots


def save_screenshots(driver: Any, site: Site, label: str) -> None:
    """Full-page screenshots at desktop and phone widths (test folder; docs/ on request)."""
    targets = [site.root]
    if os.environ.get("PRINTNET_SCREENSHOTS"):
        targets.append(Path(os.environ["PRINTNET_SCREENSHOTS"]))
    js(driver, "document.getElementById('toast').hidden = true")
    for name, width, mobile in (("desktop", 1280, False), ("phone", 390, True)):
        for _ in range(2):  # the second pass measures the page laid out at this width
            height = js(driver, "return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": max(600, int(height)), "deviceScaleFactor": 1,
                "mobile": mobile})
        png = base64.b64decode(driver.execute_cdp_cmd("Page.captureScreenshot",
                                                      {"format": "png"})["data"])
        for folder in targets:
            (folder / f"gateway-web-{name}.png").write_bytes(png)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
