"""Real-browser tests: headless Chromium, driven by Selenium through Debian's chromedriver.

Images pushed with skopeo (a multi-platform index and a single image with layers) are
looked at the way a person does: sign in through the login page, open the owner's
packages and the image pages, read what they show; create an organisation and manage
its members through the forms. Every page visited is saved as a
screenshot in the test's tmp dir (its path is in the failure message), and a page
that never shows what a test waits for fails with the text it did show.

Needs chromium, chromium-driver (apt) and selenium (dev requirements): a missing one
skips these tests locally and fails them under CI=true, like the other clients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import pytest

from .conftest import Credentials, require_tool
from .layouts import ImageInfo, make_image, make_index

# Debian's packages put them here; elsewhere they are looked up on PATH.
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,1600",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Pages are rendered on the server, so what a test waits for is there once the page
# has loaded; the wait only covers a slow machine.
WAIT_SECONDS = 15
PAGE_LOAD_SECONDS = 60
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SINGLE_IMAGE = "web-app"
SINGLE_TAG = "1.0"
INDEX_IMAGE = "web-multi"
INDEX_TAG = "latest"
PLATFORMS = [("linux", "amd64"), ("linux", "arm64")]

# Django's error pages, DEBUG or not: a wait that lands on one fails without waiting.
ERROR_PAGE_TITLES = (
    "Server Error",
    "Not Found",
    "Page not found",
    "Bad Request",
    "403 Forbidden",
    "TemplateDoesNotExist",
)
ERROR_SEEN = object()

SITE_ADMIN = Credentials("webadmin", "webadmin-pw")
SESSION_COOKIE = "sessionid"

# A requirement on a page's text: a string, or a tuple of strings any one of which will do.
Requirement = str | tuple[str, ...]


def find_program(name: str, debian_path: str) -> str:
    """Debian's binary when it is there, else `name` on PATH (skip, or fail under CI)."""
    if os.access(debian_path, os.X_OK):
        return debian_path
    return require_tool(name)


def short(digest: str) -> str:
    """The first 12 hex digits of a digest: what a page shows even when it abbreviates."""
    return digest.split(":", 1)[-1][:12]


def layer_requirements(info: ImageInfo) -> list[Requirement]:
    """Each layer shown by its digest, or by the history line that made it.

    The layouts' history lines read `COPY file:<first 12 of the diff id> in /`, so
    either way a layer is recognised by 12 hex digits.
    """
    return [
        (short(digest), f"file:{short(diff_id)}")
        for digest, diff_id in zip(info.layer_digests, info.diff_ids, strict=True)
    ]


def pull_requirement(host: str, image: str, tag: str, digest: str) -> Requirement:
    """The pull reference by tag or by digest, with the host the browser used."""
    return (f"{host}/alice/{image}:{tag}", f"{host}/alice/{image}@{digest}")


@dataclass
class Browser:
    """A Chromium session on the live site, with waits that explain themselves."""

    driver: object
    base_url: str
    screenshots: Path
    taken: list[Path] = field(default_factory=list)

    # -- pages --

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        return urlsplit(self.driver.current_url).path

    def text(self) -> str:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By

        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except WebDriverException:
            return ""

    def screenshot(self, name: str) -> Path:
        """Save the window as `NN-name.png` in the test's tmp dir; the path."""
        path = self.screenshots / f"{len(self.taken) + 1:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        assert path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"
        self.taken.append(path)
        return path

    # -- waiting --

    def error_page(self) -> str | None:
        """The title of Django's error page (404, 500, ...) if that is what is shown."""
        title = self.driver.title or ""
        return title if title.startswith(ERROR_PAGE_TITLES) else None

    def wait(self, condition, what, *, error_pages_fail: bool = True):
        """WebDriverWait for `condition`; an error page fails at once (unless told
        otherwise), a timeout after WAIT_SECONDS, either way with the page as it was.
        `what` (a string, or a function giving one when the wait fails) says what was
        awaited.
        """
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        def met_or_error(driver):
            if error_pages_fail and self.error_page():
                return ERROR_SEEN
            return condition(driver)

        try:
            result = WebDriverWait(self.driver, WAIT_SECONDS, poll_frequency=0.2).until(
                met_or_error
            )
        except TimeoutException:
            result = None
        if result is None or result is ERROR_SEEN:
            problem = f"an error page ({self.error_page()})" if result else f"{WAIT_SECONDS} s"
            self.fail(f"waited for {what() if callable(what) else what}, got {problem}")
        return result

    def wait_for_text(self, *requirements: Requirement) -> str:
        """Wait until the page's text (case-insensitive) meets every requirement; the text."""

        def missing(text: str) -> list[Requirement]:
            low = text.lower()
            return [
                requirement
                for requirement in requirements
                if not any(
                    option.lower() in low
                    for option in ((requirement,) if isinstance(requirement, str) else requirement)
                )
            ]

        def shown(driver):
            text = self.text()
            return text if text and not missing(text) else False

        return self.wait(shown, lambda: f"the page to show {missing(self.text())!r}")

    def fail(self, message: str):
        shot = self.screenshot("failure")
        pytest.fail(
            f"{message}\nat {self.driver.current_url} (title {self.driver.title!r})\n"
            f"screenshot: {shot}\n--- page text ---\n{self.text()[-4000:]}",
            pytrace=False,
        )

    # -- signing in --

    def sign_in(self, login_path: str, creds: Credentials, next_path: str) -> None:
        """Fill in and send the login form at `login_path`; wait to land on `next_path`."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC

        self.open(f"{login_path}?next={quote(next_path)}")
        username = self.wait(
            EC.visibility_of_element_located((By.NAME, "username")),
            f"a username field on {login_path}",
        )
        password = self.driver.find_element(By.NAME, "password")
        username.clear()
        username.send_keys(creds.username)
        password.clear()
        password.send_keys(creds.password)
        self.screenshot("login-filled")
        form = password.find_element(By.XPATH, "./ancestor::form")
        buttons = form.find_elements(
            By.CSS_SELECTOR, "button[type=submit], input[type=submit], button:not([type])"
        )
        if buttons:
            buttons[0].click()
        else:
            form.submit()

        def signed_in(driver):
            return self.path != login_path and driver.get_cookie(SESSION_COOKIE) is not None

        # Where the sign-in leads is checked after: an error there is not the sign-in's.
        self.wait(
            signed_in,
            f"the sign-in as {creds.username} to leave {login_path}",
            error_pages_fail=False,
        )
        if self.path != next_path:
            self.fail(f"signed in as {creds.username}, but not sent on to {next_path}")
        if self.error_page():
            self.fail(f"signed in as {creds.username}; {next_path} is an error page")


@pytest.fixture
def browser(live_registry, tmp_path):
    """A fresh headless Chromium (no cookies) on the live server; quit afterwards."""
    if live_registry.external:
        pytest.skip("E2E_REGISTRY_URL is set: the web pages are our own server's")
    require_tool("selenium")
    chromium = find_program("chromium", CHROMIUM)
    chromedriver = find_program("chromedriver", CHROMEDRIVER)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    service = Service(chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
        screenshots = tmp_path / "screenshots"
        screenshots.mkdir()
        yield Browser(driver, live_registry.url, screenshots)
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def pushed(skopeo, live_registry, tmp_path_factory):
    """A single image with three layers and a two-platform index, pushed as alice."""
    if live_registry.external:
        pytest.skip("E2E_REGISTRY_URL is set: the web pages are our own server's")
    directory = tmp_path_factory.mktemp("browser-layouts")
    single = make_image(
        directory / "single",
        SINGLE_TAG,
        layers=[
            {"etc/web/config.toml": b'name = "web"\n'},
            {"usr/bin/web": b"#!/bin/sh\necho web\n" + bytes(range(256)) * 16},
            {"srv/www/index.html": b"<h1>hello</h1>\n"},
        ],
    )
    index = make_index(directory / "multi", INDEX_TAG, platforms=PLATFORMS)
    creds = live_registry.alice.joined
    for layout, image, tag, all_images in [
        ("single", SINGLE_IMAGE, SINGLE_TAG, []),
        ("multi", INDEX_IMAGE, INDEX_TAG, ["--all"]),
    ]:
        skopeo(
            "copy",
            *all_images,
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            f"oci:{directory / layout}:{tag}",
            f"docker://{live_registry.host}/alice/{image}:{tag}",
        )
    return SimpleNamespace(single=single, index=index)


@pytest.fixture(scope="module")
def site_admin(live_registry):
    """A site admin on the live server, for the Django admin's pages."""
    if live_registry.external:
        pytest.skip("E2E_REGISTRY_URL is set: the admin is our own server's")
    # Private: its owner namespace stays out of what other tests see anonymously.
    live_registry.manage(
        "createuser",
        SITE_ADMIN.username,
        "--password",
        SITE_ADMIN.password,
        "--admin",
        "--visibility",
        "private",
    )
    return SITE_ADMIN


def image_path(image: str, reference: str) -> str:
    return f"/alice/-/packages/container/{image}/{reference}"


# The harness on pages that exist whatever the web pages look like: the Django admin.


def test_admin_sign_in_shows_the_pushed_version_with_its_files(browser, pushed, site_admin):
    browser.sign_in("/admin/login/", site_admin, "/admin/")
    browser.wait_for_text("Site administration", "Package versions", "Blob uploads")
    browser.screenshot("admin-index")

    browser.open(f"/admin/packages_core/packageversion/?q={SINGLE_IMAGE}")
    browser.wait_for_text(f"alice/{SINGLE_IMAGE}", SINGLE_TAG)
    browser.screenshot("admin-versions")

    from selenium.webdriver.common.by import By

    browser.driver.find_element(By.LINK_TEXT, SINGLE_TAG).click()
    info = pushed.single
    text = browser.wait_for_text(
        "Change package version",
        "linux/amd64",  # the metadata, pretty-printed
        "manifest.json",  # the files inline
        *[short(digest) for digest in info.layer_digests],
    )
    assert '"platform": "linux/amd64"' in text
    browser.screenshot("admin-version")


def test_wrong_password_stays_on_the_admin_login_page(browser, site_admin):
    from selenium.webdriver.common.by import By

    browser.open("/admin/login/?next=/admin/")
    browser.wait(lambda d: d.find_elements(By.NAME, "username"), "the admin login form")
    browser.driver.find_element(By.NAME, "username").send_keys(site_admin.username)
    browser.driver.find_element(By.NAME, "password").send_keys("not-the-password")
    browser.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    browser.wait_for_text("Please enter the correct username and password")
    assert browser.path == "/admin/login/"
    assert browser.driver.get_cookie(SESSION_COOKIE) is None
    browser.screenshot("admin-login-refused")


# The site's own pages.


def test_sign_in_through_the_login_page(browser, live_registry):
    browser.sign_in("/login/", live_registry.alice, "/")
    browser.wait_for_text("alice")
    browser.screenshot("signed-in")


def test_owner_page_lists_the_pushed_images(browser, live_registry, pushed):
    browser.sign_in("/login/", live_registry.alice, "/alice/-/packages")
    browser.wait_for_text("alice", SINGLE_IMAGE, INDEX_IMAGE)
    browser.screenshot("owner-packages")


def test_image_page_shows_the_pull_command_and_the_layers(browser, live_registry, pushed):
    info = pushed.single
    page = image_path(SINGLE_IMAGE, SINGLE_TAG)
    browser.sign_in("/login/", live_registry.alice, page)
    text = browser.wait_for_text(
        "pull",
        pull_requirement(live_registry.host, SINGLE_IMAGE, SINGLE_TAG, info.manifest_digest),
        *layer_requirements(info),
    )
    assert "layer" in text.lower()
    browser.screenshot("image")


def test_index_page_shows_the_pull_command_and_the_platforms(browser, live_registry, pushed):
    index = pushed.index
    page = image_path(INDEX_IMAGE, INDEX_TAG)
    browser.sign_in("/login/", live_registry.alice, page)
    browser.wait_for_text(
        "pull",
        pull_requirement(live_registry.host, INDEX_IMAGE, INDEX_TAG, index.index_digest),
        *[f"{os_name}/{architecture}" for os_name, architecture in PLATFORMS],
    )
    browser.screenshot("index")

    # Each platform's image, opened by digest, shows its own layers.
    for (os_name, architecture), child in index.children.items():
        browser.open(image_path(INDEX_IMAGE, child.manifest_digest))
        browser.wait_for_text(f"{os_name}/{architecture}", *layer_requirements(child))
        browser.screenshot(f"index-{os_name}-{architecture}")


def test_versions_page_lists_the_tags(browser, live_registry, pushed):
    page = f"/alice/-/packages/container/{SINGLE_IMAGE}/-/versions"
    browser.sign_in("/login/", live_registry.alice, page)
    browser.wait_for_text(SINGLE_IMAGE, SINGLE_TAG)
    browser.screenshot("versions")


# Organisations, as a person manages them.

BROWSER_ORG = "browser-org"


def submit(form) -> None:
    """Press the form's submit button, as a person does (the CSRF token goes with it)."""
    from selenium.webdriver.common.by import By

    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_an_organisation_is_created_and_its_members_managed(browser, live_registry):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    members_path = f"/{BROWSER_ORG}/-/members"
    browser.sign_in("/login/", live_registry.alice, "/-/orgs/new")
    browser.wait_for_text("New organisation")
    browser.driver.find_element(By.NAME, "name").send_keys(BROWSER_ORG)
    browser.driver.find_element(By.CSS_SELECTOR, "input[name=visibility][value=limited]").click()
    description = browser.driver.find_element(By.NAME, "description")
    description.send_keys("Made in a browser")
    browser.screenshot("org-new-filled")
    submit(description.find_element(By.XPATH, "./ancestor::form"))

    browser.wait_for_text(f"Created the organisation {BROWSER_ORG}", "Made in a browser")
    assert browser.path == members_path
    browser.screenshot("org-created")

    # Add bob as a writer.
    username = browser.driver.find_element(By.NAME, "username")
    username.send_keys(live_registry.bob.username)
    add_form = username.find_element(By.XPATH, "./ancestor::form")
    Select(add_form.find_element(By.NAME, "role")).select_by_value("write")
    submit(add_form)
    browser.wait_for_text(f"Added bob to {BROWSER_ORG} as Write")
    browser.screenshot("member-added")

    # Make bob an admin from his row of the table.
    role = browser.driver.find_element(By.CSS_SELECTOR, "select[aria-label='Role of bob']")
    assert Select(role).first_selected_option.text == "Write"
    Select(role).select_by_value("admin")
    submit(role.find_element(By.XPATH, "./ancestor::form"))
    browser.wait_for_text(f"bob is now Admin in {BROWSER_ORG}")
    browser.screenshot("member-role-changed")

    # The members page as it now stands: both admins.
    browser.open(members_path)
    text = browser.wait_for_text("alice", "bob", "Members")
    selected = {
        select.get_attribute("aria-label"): Select(select).first_selected_option.text
        for select in browser.driver.find_elements(By.CSS_SELECTOR, "table select[name=role]")
    }
    assert selected == {"Role of alice": "Admin", "Role of bob": "Admin"}
    assert "Limited" in text
    browser.screenshot("members")
