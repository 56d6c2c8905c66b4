"""The built site in a real browser: math rendered, nothing fetched off the machine, no errors.

Needs a built site (``mkdocs build``), Debian's Chromium at /usr/bin/chromium and the Python
``playwright`` package (the ``browser`` extra; never ``playwright install``). Without them the
test skips with a message, unless MINIRNN_REQUIRE_BROWSER=1 (as in CI), where it fails.
Every page must render its math, fetch nothing off the machine, log no error, show no raw
Sphinx role, and fit every display equation in its column at 1280 px. Full-page screenshots of
the home page, the tutorials and every derivation page go to ``site-screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
SHOTS = ROOT / "site-screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]


def _missing() -> str | None:
    if not (SITE / "index.html").is_file():
        return "the site is not built (run `python -m mkdocs build`)"
    if not Path(CHROMIUM).exists():
        return "Chromium is not installed (apt-get install -y chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[browser]')"
    return None


@pytest.fixture(scope="module")
def server():
    reason = _missing()
    if reason:
        if os.environ.get("MINIRNN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required but {reason}")
        pytest.skip(f"browser test skipped: {reason}")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _pages() -> list[str]:
    if not SITE.is_dir():
        return ["index.html"]
    return sorted(str(p.relative_to(SITE)) for p in SITE.rglob("*.html")
                  if p.name != "404.html" and "assets" not in p.parts)


CHECK_PAGE = """() => {
  const math = [...document.querySelectorAll('.arithmatex')];
  const unrendered = math.filter(n => !n.querySelector('mjx-container')).length;
  const errors = document.querySelectorAll('mjx-merror, [data-mjx-error]').length;
  const red = document.querySelectorAll(
      'mjx-container [fill="red"], mjx-container [color="red"]').length;
  const content = document.querySelector('.md-content');
  const text = content ? content.innerText : '';
  const rawTex = /\\\\\\(|\\\\\\[|\\\\begin\\{/.test(text);
  const images = [...document.images]
      .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);
  const badLinks = [...document.querySelectorAll('a[href^="#eq-"]')]
      .filter(a => !document.getElementById(a.getAttribute('href').slice(1))).length;
  const wide = [...document.querySelectorAll('div.arithmatex')]
      .filter(n => n.scrollWidth > n.clientWidth + 1)
      .map(n => `${n.id || '?'} (${n.scrollWidth} > ${n.clientWidth} px)`);
  const roles = (text.match(/:(func|class|meth|mod|data|attr):`/g) || []).length;
  return {math: math.length, unrendered, errors, red, rawTex, images, badLinks, wide, roles};
}"""


@pytest.mark.parametrize("page", _pages())
def test_page_renders_offline(server, page):
    from playwright.sync_api import sync_playwright

    offsite, console, failed = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def route(r):
            if r.request.url.startswith(server) or r.request.url.startswith("data:"):
                r.continue_()
            else:
                offsite.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        tab = context.new_page()
        tab.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        tab.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
               else None)
        tab.goto(f"{server}/{page}", wait_until="networkidle")
        result = tab.evaluate(CHECK_PAGE)
        if page == "index.html" or page.startswith(("derivations/", "tutorials/")):
            SHOTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(SHOTS / (page.replace("/", "_")[:-5] + ".png")),
                           full_page=True)
        browser.close()
    assert not offsite, f"requests leaving the machine: {offsite}"
    assert not failed, f"failed requests: {failed}"
    assert not console, f"console errors: {console}"
    assert result["unrendered"] == 0, f"{result['unrendered']} math nodes not rendered"
    assert result["errors"] == 0 and result["red"] == 0, "MathJax error or undefined macro"
    assert not result["rawTex"], "raw TeX delimiters left in the text"
    assert not result["images"], f"images not loaded: {result['images']}"
    assert result["badLinks"] == 0, "a link to an equation has no target"
    assert not result["wide"], f"display equations wider than the column at 1280 px: " \
                               f"{result['wide']}"
    assert result["roles"] == 0, f"{result['roles']} raw Sphinx roles (:func:`...`) in the text"
