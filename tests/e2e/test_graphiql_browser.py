"""GraphiQL in a real browser: it renders, runs `{ welcome }` and the `logs` subscription, and
loads nothing from outside.

Needs Chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`); skipped
without them. Selenium gets both paths, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import ADMIN

pytestmark = pytest.mark.browser

WAIT_S = 30
QUERY_EDITOR = ".graphiql-container .graphiql-query-editor .CodeMirror"
EXECUTE_BUTTON = ".graphiql-container .graphiql-execute-button"
HEADERS_TAB = "//div[@class='graphiql-editor-tools-tabs']/button[text()='Headers']"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
DOCS_BUTTON = ".graphiql-sidebar button[aria-label='Show Documentation Explorer']"
DOC_EXPLORER = ".graphiql-doc-explorer"
EDITOR_TEXT_JS = "return arguments[0].CodeMirror.getValue();"
# GraphiQL parses the query a moment after the last keystroke (debounced) and chooses the
# transport from that parse: run before it and a subscription goes over HTTP.
PARSED_OPERATION_JS = """
const ast = document.querySelector(arguments[0]).CodeMirror.documentAST;
return ast && ast.definitions.length ? ast.definitions[0].operation : null;
"""
# CodeMirror keeps its instance on the wrapper element; asking it beats scraping rendered lines,
# which it only draws while they are in view.
RESPONSE_TEXT_JS = """
const editor = document.querySelector(".graphiql-container .graphiql-response .CodeMirror");
return editor ? editor.CodeMirror.getValue() : "";
"""
RESOURCE_NAMES_JS = "return performance.getEntriesByType('resource').map((entry) => entry.name);"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _find(name: str, *fallbacks: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return next((path for path in fallbacks if Path(path).is_file()), None)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a throwaway profile, or a skip when it is not installed."""
    chromium = _find("chromium", "/usr/bin/chromium")
    chromedriver = _find("chromedriver", "/usr/bin/chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip(
            "headless browser test needs chromium and chromedriver "
            "(apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # A fresh profile: no cached assets and no GraphiQL tabs left in localStorage.
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _response_text(driver: webdriver.Chrome) -> str:
    text: Any = driver.execute_script(RESPONSE_TEXT_JS)
    return str(text or "")


def _browser_log(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Console messages since the last call (reading them empties the buffer)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def _wait_for(driver: webdriver.Chrome, condition: Callable[[Any], object], what: str) -> None:
    try:
        WebDriverWait(driver, WAIT_S).until(condition)
    except TimeoutException:
        # The browser log says why, e.g. an asset that failed to load or a script error.
        pytest.fail(f"{what} within {WAIT_S}s; browser log: {_browser_log(driver)}")


def _open_graphiql(driver: webdriver.Chrome, gateway_url: str) -> None:
    driver.get(f"{gateway_url}/graphql")
    _wait_for(
        driver,
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, QUERY_EDITOR)),
        "GraphiQL's query editor did not render",
    )


def _open_graphiql_as_admin(browser: webdriver.Chrome, gateway_url: str) -> None:
    """GraphiQL open with an admin's token typed into its Headers pane, as README's "Try it"
    says."""
    login = httpx.post(
        f"{gateway_url}/api/v1/users/login",
        json={"username": ADMIN["username"], "password": ADMIN["password"]},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    headers = f'{{"Authorization": "Bearer {login.json()["token"]}"}}'
    _open_graphiql(browser, gateway_url)
    browser.find_element(By.XPATH, HEADERS_TAB).click()
    _wait_for(
        browser,
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, HEADERS_EDITOR)),
        "the Headers pane did not open",
    )
    assert _type_into(browser, HEADERS_EDITOR, headers) == headers


def _resource_names(driver: webdriver.Chrome) -> list[str]:
    names: Any = driver.execute_script(RESOURCE_NAMES_JS)
    return [str(name) for name in names]


def test_graphiql_runs_the_default_welcome_query(
    browser: webdriver.Chrome, gateway_url: str
) -> None:
    # given GraphiQL open in a fresh browser profile
    _open_graphiql(browser, gateway_url)
    assert browser.title == "Merch Store GraphiQL"

    # when the default query is executed
    _wait_for(
        browser,
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, EXECUTE_BUTTON)),
        "the execute button did not become clickable",
    )
    browser.find_element(By.CSS_SELECTOR, EXECUTE_BUTTON).click()
    _wait_for(
        browser,
        lambda driver: '"welcome"' in _response_text(driver),
        "the result pane did not show the welcome field",
    )

    # then the result pane shows the welcome message
    result = json.loads(_response_text(browser))
    assert "errors" not in result
    assert "welcome" in result["data"]["welcome"].lower()


def test_graphiql_loads_every_resource_from_the_gateway(
    browser: webdriver.Chrome, gateway_url: str
) -> None:
    # given GraphiQL open, with its schema fetched (the last request the page makes by itself)
    _open_graphiql(browser, gateway_url)
    _wait_for(
        browser,
        lambda driver: f"{gateway_url}/graphql" in _resource_names(driver),
        "GraphiQL did not fetch the schema",
    )

    # when we list what the page requested
    resources = _resource_names(browser)

    # then everything came from the gateway: nothing needs the internet
    assert any("/graphiql-static/" in name for name in resources)
    assert [name for name in resources if not name.startswith(f"{gateway_url}/")] == []
    # and nothing failed to load or broke the Content-Security-Policy
    assert [entry for entry in _browser_log(browser) if entry["level"] == "SEVERE"] == []


def _type_into(driver: webdriver.Chrome, editor_selector: str, text: str) -> str:
    """Replace an editor's text by typing, as a user would; returns what the editor then holds."""
    editor = driver.find_element(By.CSS_SELECTOR, editor_selector)
    editor.click()
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    ActionChains(driver).send_keys(Keys.DELETE).send_keys(text).perform()
    value: Any = driver.execute_script(EDITOR_TEXT_JS, editor)
    return str(value)


def test_graphiql_sends_the_headers_pane_token_and_documents_the_schema(
    browser: webdriver.Chrome, gateway_url: str
) -> None:
    # given an admin's token typed into GraphiQL's Headers pane, as README's "Try it" says
    _open_graphiql_as_admin(browser, gateway_url)
    query = "{ me { sid role } }"
    assert _type_into(browser, QUERY_EDITOR, query) == query

    # when `me` is run over HTTP, and the documentation explorer is opened
    browser.find_element(By.CSS_SELECTOR, EXECUTE_BUTTON).click()
    _wait_for(
        browser, lambda driver: '"me"' in _response_text(driver), "the result pane showed no `me`"
    )
    browser.find_element(By.CSS_SELECTOR, DOCS_BUTTON).click()
    _wait_for(
        browser,
        lambda driver: (
            "subscription: Subscription" in driver.find_element(By.CSS_SELECTOR, DOC_EXPLORER).text
        ),
        "the documentation explorer did not list the root types",
    )

    # then the query ran as the token's admin, and nothing failed in the page
    result = json.loads(_response_text(browser))
    assert result == {"data": {"me": {"sid": ADMIN["sid"], "role": "ADMIN"}}}
    assert [entry for entry in _browser_log(browser) if entry["level"] == "SEVERE"] == []


def test_graphiql_streams_the_logs_subscription_for_an_admin(
    browser: webdriver.Chrome, gateway_url: str
) -> None:
    # given an admin's token in GraphiQL's Headers pane and the subscription in its editor
    _open_graphiql_as_admin(browser, gateway_url)
    subscription = "subscription { logs { operation } }"
    assert _type_into(browser, QUERY_EDITOR, subscription) == subscription
    _wait_for(
        browser,
        lambda driver: driver.execute_script(PARSED_OPERATION_JS, QUERY_EDITOR) == "subscription",
        "GraphiQL did not parse the subscription",
    )

    # when it is run, and the gateway is called while it streams
    browser.find_element(By.CSS_SELECTOR, EXECUTE_BUTTON).click()

    def shows_a_record(driver: webdriver.Chrome) -> bool:
        # Records flow only for calls made after the subscription went live: call until one shows.
        httpx.get(f"{gateway_url}/api/v1/products/1", timeout=10)
        return '"operation"' in _response_text(driver)

    _wait_for(browser, shows_a_record, "the result pane showed no log record")

    # then the result pane shows a record, and no error
    result = json.loads(_response_text(browser))
    assert "errors" not in result
    assert result["data"]["logs"]["operation"]
