"""The operator console in a real browser (headless Chromium from Debian, driven by Selenium
through Debian's chromedriver). Started by executor/tests/console_browser.rs, which runs ingest,
an executor and the paper exchange on port 0 and passes their addresses in the environment.
Every step asserts; the first failure ends the run with a non-zero status. See docs/console.md.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["CONSOLE_BASE_URL"]
ADMIN_TOKEN = os.environ["CONSOLE_ADMIN_TOKEN"]
PAPER_KEY = os.environ["CONSOLE_PAPER_API_KEY"]
PAPER_SECRET = os.environ["CONSOLE_PAPER_API_SECRET"]
SHOTS = os.environ["CONSOLE_SCREENSHOT_DIR"]
EVIL = "<script>window.__pwned = 1</script>"


def step(text):
    print(f"[console_flow] {text}", flush=True)


def http(method, path, body=None, headers=None):
    """(status, text) of a request outside the browser."""
    req = urllib.request.Request(BASE + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def webhook(token, client_id):
    body = json.dumps({"token": token, "action": "buy", "symbol": "AVAXUSDT",
                       "quantity": "1", "id": client_id}).encode()
    return http("POST", "/webhook/tradingview", body, {"Content-Type": "text/plain"})


def wait(driver, what, condition, seconds=15):
    try:
        # A live refresh replaces the element a condition holds: look again on the next poll.
        return WebDriverWait(driver, seconds, poll_frequency=0.1,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                             ).until(lambda d: condition(d))
    except Exception:
        body = driver.find_element(By.TAG_NAME, "body").text[:1500]
        raise AssertionError(f"timed out waiting for {what} at {driver.current_url}:\n{body}")


def shot(driver, name):
    path = os.path.join(SHOTS, f"{name}.png")
    driver.save_screenshot(path)
    step(f"screenshot {path}")


def every_field_is_labelled(driver):
    """Every visible input, select and textarea has a <label for=...>."""
    missing = driver.execute_script("""
        return Array.from(document.querySelectorAll('input, select, textarea'))
          .filter(e => e.type !== 'hidden')
          .filter(e => !e.id || !document.querySelector('label[for="' + e.id + '"]'))
          .map(e => e.outerHTML);
    """)
    assert not missing, f"unlabelled fields on {driver.current_url}: {missing}"


def main():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--disable-extensions"):
        options.add_argument(arg)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        run(driver)
    finally:
        driver.quit()


def run(driver):
    step("unauthenticated: pages send to sign-in, the event stream is refused")
    driver.get(BASE + "/console/users")
    assert driver.current_url.endswith("/console/sign-in"), driver.current_url
    status, _ = http("GET", "/console/events")
    assert status == 401, status
    every_field_is_labelled(driver)
    shot(driver, "sign-in")

    step("a wrong token is refused; the admin token signs in")
    driver.find_element(By.NAME, "token").send_keys("wrong-token" + Keys.ENTER)
    wait(driver, "the refusal", lambda d: "not the admin token" in d.page_source)
    driver.find_element(By.NAME, "token").send_keys(ADMIN_TOKEN + Keys.ENTER)
    wait(driver, "the overview", lambda d: d.current_url.rstrip("/").endswith("/console"))
    assert "HUMBEX console" in driver.title
    assert "humbex_console" not in driver.execute_script("return document.cookie"), \
        "the session cookie must not be readable by script"
    session = next(c for c in driver.get_cookies() if c["name"] == "humbex_console")
    assert session["httpOnly"] and session["sameSite"] == "Strict", session
    wait(driver, "the live feed", lambda d: d.find_element(By.ID, "live-status").text == "live")
    shot(driver, "overview")

    step("create a user")
    driver.get(BASE + "/console/users")
    driver.find_element(By.ID, "email").send_keys("browser@example.com")
    driver.find_element(By.XPATH, "//button[text()='Create user']").click()
    wait(driver, "the new token", lambda d: d.find_elements(By.ID, "token-value"))
    token = driver.find_element(By.ID, "token-value").get_attribute("value")
    assert token.startswith("hbxu_"), token
    assert token in driver.find_element(By.ID, "alert-message").get_attribute("value")
    shot(driver, "user-created")
    driver.find_element(By.LINK_TEXT, "Go to the user's page").click()
    user_url = driver.current_url

    step("activate the subscription")
    Select(driver.find_element(By.ID, "status")).select_by_value("active")
    driver.find_element(By.XPATH, "//button[text()='Save subscription']").click()
    wait(driver, "the active subscription",
         lambda d: d.current_url == user_url and "status-active" in d.page_source)

    step("add the paper key, with a label that is markup")
    driver.find_element(By.ID, "api_key").send_keys(PAPER_KEY)
    driver.find_element(By.ID, "api_secret").send_keys(PAPER_SECRET)
    driver.find_element(By.ID, "label").send_keys(EVIL)
    driver.find_element(By.XPATH, "//button[text()='Add key']").click()
    wait(driver, "the key listed", lambda d: d.current_url == user_url and "status-usable" in d.page_source)
    cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "td")]
    assert EVIL in cells, f"the label is shown as text: {cells}"
    assert driver.execute_script("return window.__pwned") is None, "the label's script ran"
    every_field_is_labelled(driver)
    shot(driver, "user")

    step("a post without the CSRF token is refused")
    cookie = "humbex_console=" + session["value"]
    status, _ = http("POST", user_url.replace(BASE, "") + "/token", b"",
                     {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403, status

    step("a webhook's signal appears live in /console/signals and its order reaches filled")
    driver.get(BASE + "/console/signals")
    wait(driver, "the live feed", lambda d: d.find_element(By.ID, "live-status").text == "live")
    driver.execute_script("window.__same_page = true")
    status, answer = webhook(token, f"browser-{time.time()}")
    assert status == 202, (status, answer)
    signal_id = json.loads(answer)["signal_id"]
    row = f"tr[data-signal-id='{signal_id}']"
    wait(driver, "the new row", lambda d: d.find_elements(By.CSS_SELECTOR, row), seconds=5)
    assert driver.execute_script("return window.__same_page") is True, "the page was reloaded"
    wait(driver, "the signal done", lambda d: "done" in d.find_element(By.CSS_SELECTOR, row).text)
    shot(driver, "signals")
    # The row may be re-rendered by a live refresh (fills, positions) between finding and clicking.
    wait(driver, "the signal's link clicked",
         lambda d: d.find_element(By.CSS_SELECTOR, row + " a[href^='/console/signals/']").click() or True)
    wait(driver, "the order filled",
         lambda d: d.find_elements(By.CSS_SELECTOR, "#live .status-filled"), seconds=20)
    assert "[redacted]" in driver.find_element(By.CSS_SELECTOR, "pre.raw").text
    assert token not in driver.page_source, "the raw body shows the token"
    shot(driver, "signal")

    step("rotate the token: the old one stops working")
    driver.get(user_url)
    driver.find_element(By.XPATH, "//button[text()='Rotate token']").click()
    wait(driver, "the new token", lambda d: d.find_elements(By.ID, "token-value"))
    new_token = driver.find_element(By.ID, "token-value").get_attribute("value")
    assert new_token != token and new_token.startswith("hbxu_")
    status, _ = webhook(token, f"old-{time.time()}")
    assert status == 401, status
    status, _ = webhook(new_token, f"new-{time.time()}")
    assert status == 202, status

    step("revoke the key")
    driver.get(user_url)
    driver.find_element(By.XPATH, "//button[text()='Revoke']").click()
    wait(driver, "the key revoked", lambda d: d.current_url == user_url and "status-revoked" in d.page_source)

    step("strategies, failed orders, and a phone-sized window")
    driver.get(BASE + "/console/strategies")
    driver.find_element(By.ID, "name").send_keys("Trend " + EVIL)
    driver.find_element(By.XPATH, "//button[text()='Create strategy']").click()
    wait(driver, "the strategy token", lambda d: d.find_elements(By.ID, "token-value"))
    assert driver.execute_script("return window.__pwned") is None
    driver.find_element(By.LINK_TEXT, "Go to the strategy's page").click()
    assert ("Trend " + EVIL) in driver.find_element(By.TAG_NAME, "h1").text
    every_field_is_labelled(driver)

    step("the strategy's defaults: a refusal at its field, then saved")
    strategy_url = driver.current_url
    lag = driver.find_element(By.ID, "max_lag_secs")
    lag.clear()
    lag.send_keys("0")
    driver.find_element(By.ID, "leverage").send_keys("7.5")
    driver.find_element(By.XPATH, "//button[text()='Save defaults']").click()
    wait(driver, "the refusal", lambda d: d.find_elements(By.ID, "max_lag_secs-error"))
    lag = driver.find_element(By.ID, "max_lag_secs")
    assert lag.get_attribute("aria-invalid") == "true", lag.get_attribute("outerHTML")
    assert lag.get_attribute("aria-describedby") == "max_lag_secs-error"
    assert "max_lag_secs" in driver.find_element(By.ID, "max_lag_secs-error").text
    assert driver.find_element(By.ID, "leverage").get_attribute("value") == "7.5", "what was typed is kept"
    shot(driver, "strategy-defaults-refused")
    lag.clear()
    lag.send_keys("90")
    driver.find_element(By.XPATH, "//button[text()='Save defaults']").click()
    wait(driver, "the defaults saved", lambda d: d.current_url == strategy_url + "?saved=1"
         and "Defaults saved." in d.page_source)
    facts = driver.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "90 s" in facts and "7.5" in facts, facts
    shot(driver, "strategy")
    driver.get(BASE + "/console/strategies")
    shot(driver, "strategies")
    driver.get(BASE + "/console/orders")
    shot(driver, "orders")
    driver.set_window_size(390, 844)
    driver.get(BASE + "/console/users")
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 400, f"the users page scrolls sideways on a phone ({width}px)"
    shot(driver, "users-phone")
    driver.set_window_size(1280, 1000)
    driver.get(BASE + "/console/users")
    shot(driver, "users")

    step("keyboard: the skip link is the first stop")
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = driver.switch_to.active_element
    assert focused.get_attribute("href").endswith("#main"), focused.get_attribute("outerHTML")

    step("sign out: the console and its stream refuse the old session")
    driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
    wait(driver, "the sign-in page", lambda d: d.current_url.endswith("/console/sign-in"))
    driver.get(BASE + "/console")
    assert driver.current_url.endswith("/console/sign-in"), driver.current_url
    status, _ = http("GET", "/console/events", headers={"Cookie": cookie})
    assert status == 401, status
    step("all steps passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"[console_flow] FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
