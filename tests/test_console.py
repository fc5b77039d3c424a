"""Issue 17's web console in headless Chromium (Debian's `chromium` and `chromium-driver`,
driven by Selenium) against `berth up` on the real Docker daemon: sign-in with an access key,
every page, a deployment followed live on the open service page, scaling with the console's
form, a task's awslogs output tailed live, an IAM user without ECS permissions, and CSRF.
A screenshot of each page goes to target/test-artifacts/console/."""

from __future__ import annotations

import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from harness import REGION, BerthUp, status_is, wait_for_task, wait_until
from iam_helpers import make_user

CLUSTER = "default"
ARTIFACTS = Path(__file__).resolve().parent.parent / "target" / "test-artifacts" / "console"
SLEEPER = ["sh", "-c", "sleep 3600"]
# Live sections refresh every second: a change shows within 2 s, with slack for a busy machine.
LIVE_SLACK = 4.0


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("chromium and chromedriver are missing: run scripts/ensure-test-tools")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield session
    finally:
        session.quit()


def shot(browser: WebDriver, name: str) -> None:
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def sign_in(browser: WebDriver, up: BerthUp, access_key: str, secret_key: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{up.server.url}/console/sign-in")
    browser.find_element(By.NAME, "access_key_id").send_keys(access_key)
    browser.find_element(By.NAME, "secret_access_key").send_keys(secret_key)
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()


def sign_in_as_root(browser: WebDriver, up: BerthUp) -> None:
    sign_in(browser, up, up.server.credentials.access_key, up.server.credentials.secret_key)
    wait_until(lambda: browser.current_url.endswith("/console/clusters"), 10, "the clusters page after sign-in")


def open_page(browser: WebDriver, up: BerthUp, path: str, name: str) -> str:
    """Opens a console page, checks it rendered without an error box, saves its screenshot;
    its text."""
    browser.get(f"{up.server.url}{path}")
    assert not browser.find_elements(By.CSS_SELECTOR, ".error"), browser.find_element(By.CSS_SELECTOR, ".error").text
    shot(browser, name)
    return browser.find_element(By.TAG_NAME, "main").text


def section(browser: WebDriver, id_: str) -> str:
    """The text of a live section, read in one step in the page: the refresh may swap the
    element at any time, so a found element can go stale before its text is read."""
    return browser.execute_script("const e = document.getElementById(arguments[0]); return e ? e.innerText : '';", id_)


def rows_of(browser: WebDriver, selector: str) -> list[str]:
    """The texts of the elements `selector` finds, read in one step (see `section`)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText);", selector
    )


def mark_page(browser: WebDriver) -> None:
    """Marks the loaded document: the mark survives live updates but not a reload."""
    browser.execute_script("window.__berthMark = 'kept';")


def assert_not_reloaded(browser: WebDriver) -> None:
    assert browser.execute_script("return window.__berthMark;") == "kept", "the page was reloaded"


def register(ecs: Any, family: str, command: list[str] = SLEEPER, **container_extra: Any) -> str:
    container = {"name": "main", "image": "busybox", "memory": 16, "essential": True, "command": command}
    container.update(container_extra)
    return ecs.register_task_definition(family=family, containerDefinitions=[container])["taskDefinition"]["taskDefinitionArn"]


def wait_stable(ecs: Any, service: str, timeout: int = 60) -> None:
    ecs.get_waiter("services_stable").wait(
        cluster=CLUSTER, services=[service], WaiterConfig={"Delay": 1, "MaxAttempts": timeout}
    )


def delete_service(ecs: Any, service: str) -> None:
    try:
        ecs.delete_service(cluster=CLUSTER, service=service, force=True)
    except Exception:  # noqa: BLE001 - best-effort cleanup
        pass


def test_sign_in_is_refused_with_a_wrong_secret_and_accepted_with_the_root_key(berth_up: BerthUp, browser: WebDriver):
    browser.get(f"{berth_up.server.url}/console/clusters")
    assert browser.current_url.endswith("/console/sign-in"), "an unsigned visitor is sent to sign in"
    credentials = berth_up.server.credentials
    sign_in(browser, berth_up, credentials.access_key, credentials.secret_key + "x")
    # The click only submits the form: the answer's page is there once its error box is.
    [box] = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ".error"), 10, "the sign-in error")
    error = box.text
    assert "wrong" in error
    assert browser.get_cookie("berth_console") is None
    shot(browser, "sign-in-refused")

    sign_in_as_root(browser, berth_up)
    cookie = browser.get_cookie("berth_console")
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict"
    assert f"arn:aws:iam::" in browser.find_element(By.CSS_SELECTOR, "header .who").text
    shot(browser, "clusters")


def test_every_page_loads(berth_up: BerthUp, browser: WebDriver, unique):
    ecs = berth_up.ecs
    family, service = unique("console-pages"), unique("console-pages")
    register(ecs, family)
    register(ecs, family, command=["sh", "-c", "sleep 3000"])
    ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=f"{family}:1", desiredCount=1)
    try:
        wait_stable(ecs, service)
        task_arn = ecs.list_tasks(cluster=CLUSTER, serviceName=service)["taskArns"][0]
        task_id = task_arn.rsplit("/", 1)[-1]
        sign_in_as_root(browser, berth_up)

        text = open_page(browser, berth_up, "/console/clusters", "clusters")
        assert CLUSTER in text
        text = open_page(browser, berth_up, f"/console/clusters/{CLUSTER}", "cluster")
        assert berth_up.instance_id in section(browser, "cluster-instances")
        assert "yes" in section(browser, "cluster-instances"), "the agent shows as connected"
        assert service in section(browser, "cluster-services")
        assert task_id in section(browser, "cluster-tasks")

        text = open_page(browser, berth_up, f"/console/clusters/{CLUSTER}/services/{service}", "service")
        assert "COMPLETED" in section(browser, "service-deployments")
        assert task_id in section(browser, "service-tasks")
        assert "has reached a steady state" in section(browser, "service-events")

        browser.find_element(By.LINK_TEXT, task_id).click()
        wait_until(
            lambda: browser.current_url.endswith(f"/tasks/{task_id}") and "RUNNING" in section(browser, "task-summary"),
            10, "the task's page, RUNNING",
        )
        assert "main" in section(browser, "task-containers")
        shot(browser, "task")

        text = open_page(browser, berth_up, "/console/task-definitions", "task-definitions")
        assert family in text
        open_page(browser, berth_up, f"/console/task-definitions/{family}?a=1&b=2", "task-definition-diff")
        removed = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.diff tr.del")]
        added = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.diff tr.add")]
        assert any("sleep 3600" in line for line in removed), removed
        assert any("sleep 3000" in line for line in added), added
    finally:
        delete_service(ecs, service)


def test_a_deployment_started_with_boto3_progresses_on_the_open_service_page(
    berth_up: BerthUp, browser: WebDriver, unique
):
    ecs = berth_up.ecs
    family, service = unique("console-deploy"), unique("console-deploy")
    first = register(ecs, family)
    second = register(ecs, family, command=["sh", "-c", "sleep 3601"])
    ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=first, desiredCount=1)
    try:
        wait_stable(ecs, service)
        sign_in_as_root(browser, berth_up)
        open_page(browser, berth_up, f"/console/clusters/{CLUSTER}/services/{service}", "service-before-deployment")
        mark_page(browser)
        ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=second)
        started = time.monotonic()
        wait_until(
            lambda: f"{family}:2" in section(browser, "service-deployments"),
            LIVE_SLACK,
            "the new deployment on the open page",
        )
        lag = time.monotonic() - started
        print(f"deployment visible on the page {lag:.2f}s after UpdateService")
        shot(browser, "service-deploying")

        def completed_on_page() -> bool:
            rows = rows_of(browser, "#service-deployments tbody tr, #service-deployments tr")
            primary = [r for r in rows if "PRIMARY" in r]
            return bool(primary) and f"{family}:2" in primary[0] and "COMPLETED" in primary[0]

        wait_until(completed_on_page, 90, "the deployment to complete on the open page")
        assert_not_reloaded(browser)
        shot(browser, "service-deployed")
        assert f"{family}:2" in section(browser, "service-summary")

        # Roll back: the form (a live part) offers the previous deployment's task definition.
        # Found and clicked in one step in the page: the live refresh may swap the form.
        wait_until(
            lambda: browser.execute_script(
                "const b = Array.from(document.querySelectorAll('form#roll-back button'))"
                ".find(b => b.innerText.includes(arguments[0])); if (b) { b.click(); return true; } return false;",
                f"{family}:1",
            ),
            LIVE_SLACK,
            "the roll-back form to offer revision 1",
        )
        wait_until(
            lambda: ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["taskDefinition"] == first,
            10,
            "the roll back to set revision 1",
        )
        wait_until(lambda: f"{family}:1" in section(browser, "service-summary"), LIVE_SLACK, "revision 1 on the page")
        wait_until(
            lambda: f"{family}:2" in section(browser, "service-roll-back"),
            LIVE_SLACK,
            "the roll-back form to offer the revision rolled back from",
        )
        shot(browser, "service-rolled-back")
    finally:
        delete_service(ecs, service)


def test_scaling_with_the_console_form_changes_desired_count_and_the_tasks_appear(
    berth_up: BerthUp, browser: WebDriver, unique
):
    ecs = berth_up.ecs
    family, service = unique("console-scale"), unique("console-scale")
    register(ecs, family)
    ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=family, desiredCount=1)
    try:
        wait_stable(ecs, service)
        sign_in_as_root(browser, berth_up)
        open_page(browser, berth_up, f"/console/clusters/{CLUSTER}/services/{service}", "service-before-scale")
        field = browser.find_element(By.CSS_SELECTOR, "form#scale input[name=desired_count]")
        field.clear()
        field.send_keys("3")
        browser.find_element(By.CSS_SELECTOR, "form#scale button").click()
        wait_until(
            lambda: ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["desiredCount"] == 3,
            10,
            "desiredCount 3 after the console's scale form",
        )
        mark_page(browser)

        def three_running() -> bool:
            tasks = section(browser, "service-tasks")
            return "Tasks (3)" in tasks and tasks.count("RUNNING") >= 6  # last and desired status

        wait_until(three_running, 60, "three running tasks on the open service page")
        assert_not_reloaded(browser)
        shot(browser, "service-scaled")
    finally:
        delete_service(ecs, service)


def test_a_tasks_logs_are_shown_and_tailed_live(berth_up: BerthUp, browser: WebDriver, unique):
    ecs = berth_up.ecs
    family, group = unique("console-logs"), f"/ecs/{unique('console-logs')}"
    script = "i=0; while true; do i=$((i+1)); echo console-line-$i; sleep 1; done"
    register(
        ecs,
        family,
        command=["sh", "-c", script],
        logConfiguration={
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": group,
                "awslogs-stream-prefix": "web",
                "awslogs-create-group": "true",
                "awslogs-region": REGION,
            },
        },
    )
    out = ecs.run_task(cluster=CLUSTER, taskDefinition=family)
    assert out["failures"] == [], out["failures"]
    task_arn = out["tasks"][0]["taskArn"]
    task_id = task_arn.rsplit("/", 1)[-1]
    try:
        wait_for_task(ecs, CLUSTER, task_arn, status_is("RUNNING"), 60, "the logging task to run")
        sign_in_as_root(browser, berth_up)
        browser.get(f"{berth_up.server.url}/console/clusters/{CLUSTER}/tasks/{task_id}")

        def newest_line() -> int:
            numbers = [int(n) for n in re.findall(r"console-line-(\d+)", section(browser, "task-logs"))]
            return max(numbers, default=0)

        first = wait_until(newest_line, 30, "the task's log lines on its page")
        mark_page(browser)
        wait_until(lambda: newest_line() > first, LIVE_SLACK + 1, "a new log line by live tail")
        assert_not_reloaded(browser)
        shot(browser, "task-logs")
    finally:
        ecs.stop_task(cluster=CLUSTER, task=task_arn, reason="console test done")


def test_a_user_without_ecs_permissions_signs_in_and_sees_access_denied(
    berth_up: BerthUp, browser: WebDriver, unique
):
    user = make_user(berth_up.server, unique("console-nobody"))
    wait_until(
        lambda: sign_in(browser, berth_up, user.access_key, user.secret_key) or browser.current_url.endswith("/console/clusters"),
        15,
        "the new user's key to sign in",
    )
    error = " ".join(rows_of(browser, "#clusters .error"))
    assert "AccessDenied" in error, error
    assert unique("console-nobody") in browser.find_element(By.CSS_SELECTOR, "header .who").text
    shot(browser, "access-denied")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post(url: str, fields: dict[str, str], cookie: str, origin: str | None) -> int:
    headers = {"Cookie": f"berth_console={cookie}", "Content-Type": "application/x-www-form-urlencoded"}
    if origin:
        headers["Origin"] = origin
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_posts_without_the_csrf_token_or_from_a_foreign_origin_are_refused(
    berth_up: BerthUp, browser: WebDriver, unique
):
    ecs = berth_up.ecs
    family, service = unique("console-csrf"), unique("console-csrf")
    register(ecs, family)
    ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=family, desiredCount=0)
    try:
        sign_in_as_root(browser, berth_up)
        open_page(browser, berth_up, f"/console/clusters/{CLUSTER}/services/{service}", "service-csrf")
        token = browser.find_element(By.CSS_SELECTOR, "form#scale input[name=csrf]").get_attribute("value")
        cookie = browser.get_cookie("berth_console")["value"]
        url = f"{berth_up.server.url}/console/clusters/{CLUSTER}/services/{service}/scale"
        own = berth_up.server.url

        assert post(url, {"desired_count": "2"}, cookie, own) == 403
        assert post(url, {"desired_count": "2", "csrf": "forged"}, cookie, own) == 403
        assert post(url, {"desired_count": "2", "csrf": token}, cookie, "http://evil.example") == 403
        assert ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["desiredCount"] == 0
        # The same form with its token from the console's own origin goes through.
        assert post(url, {"desired_count": "0", "csrf": token}, cookie, own) == 303
        # A bad count is a clear 400, never a 500.
        assert post(url, {"desired_count": "many", "csrf": token}, cookie, own) == 400
    finally:
        delete_service(ecs, service)
