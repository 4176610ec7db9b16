"""The status page in a real headless browser (Debian's chromium + chromium-driver): sign in, see a configured
tunnel, connect it, watch it turn connected through SSE, disconnect it. Also takes the screenshot in docs/."""
import os
import shutil

import pytest

from harness.appliance import Appliance
from harness.ports import free_port
from harness.login import PASSWORD, hash_password

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs")


@pytest.fixture
def browser():
    assert CHROMIUM and DRIVER, "chromium and chromium-driver are installed by make deps"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,720"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_sign_in_connect_watch_disconnect(sluice_bin, echo_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.common.exceptions import StaleElementReferenceException

    port = free_port()
    app = Appliance(sluice_bin)
    app.config["users"][0]["passwordHash"] = hash_password(sluice_bin, PASSWORD)
    app.config["hosts"][0]["tunnels"] = [{"mode": "local", "sourcePort": port, "endpointHost": "",
                                          "endpointPort": echo_server.port, "targetHost": "127.0.0.1"}]
    app.rewrite(app.config)
    app.start()
    name = f"0::0::appliance::{port}::::{echo_server.port}"
    # rows update in place, but a status badge is redrawn on every event: a lookup may race with a redraw
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    try:
        browser.get(app.sluice.url + "/")
        wait.until(EC.visibility_of_element_located((By.ID, "username"))).send_keys("admin")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "sign-in").click()
        row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-name="{name}"]')))
        status = lambda: browser.find_element(By.CSS_SELECTOR, f'tr[data-name="{name}"] [data-role="status"]').text
        assert status() == "disconnected"
        row.find_element(By.XPATH, ".//button[text()='Connect']").click()     # rows update in place: still live
        wait.until(lambda d: status() == "connected")
        import socket
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:   # the tunnel really works
            s.sendall(b"through the page")
            assert s.recv(100) == b"through the page"
        traffic = lambda: browser.find_element(By.CSS_SELECTOR, f'tr[data-name="{name}"] td:nth-child(4)').text
        wait.until(lambda d: traffic() != "0 B in / 0 B out")      # the traffic counters reach the page too
        browser.save_screenshot(os.path.join(os.environ.get("SLUICE_SCREENSHOT_DIR", "/tmp"), "status-page.png"))
        row.find_element(By.XPATH, ".//button[text()='Disconnect']").click()
        wait.until(lambda d: status() == "disconnected")
    finally:
        app.stop()


def test_phone_sized_screen(sluice_bin, browser):
    app = Appliance(sluice_bin).start()
    try:
        browser.set_window_size(390, 800)
        browser.get(app.sluice.url + "/")
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(browser, 20).until(EC.visibility_of_element_located((By.ID, "token")))
        browser.find_element(By.ID, "token").send_keys(app.token("u-admin"))
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        WebDriverWait(browser, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR, "tr[data-name]")))
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"page is {width}px wide on a 390px screen"
    finally:
        app.stop()


def test_behind_a_reverse_proxy_under_a_path_prefix(sluice_bin, echo_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    from harness.proxy import PrefixProxy
    from selenium.common.exceptions import StaleElementReferenceException

    port = free_port()
    app = Appliance(sluice_bin)
    app.config["hosts"][0]["tunnels"] = [{"mode": "local", "sourcePort": port, "endpointHost": "",
                                          "endpointPort": echo_server.port}]
    app.rewrite(app.config)
    app.start()
    proxy = PrefixProxy(app.port, "/sluice")
    name = f"0::0::appliance::{port}::::{echo_server.port}"
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    try:
        browser.get(f"http://127.0.0.1:{proxy.port}/sluice/")
        wait.until(EC.visibility_of_element_located((By.ID, "token"))).send_keys(app.token("u-admin"))
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-name="{name}"]')))
        row.find_element(By.XPATH, ".//button[text()='Connect']").click()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-name="{name}"] [data-role="status"]').text
                   == "connected")
        # every call the page made went through the prefix
        assert {"/", "/ssh/tunnel/configs", "/ssh/tunnel/status/stream", "/ssh/tunnel/connect"} <= set(proxy.paths)
    finally:
        proxy.close()
        app.stop()
