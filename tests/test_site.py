"""The built site in a real browser: math rendered, nothing fetched off the machine, no errors.

Needs a built site (``mkdocs build``), Debian's Chromium at /usr/bin/chromium, the Python
``playwright`` package (the ``browser`` extra; never ``playwright install``) and axe-core from
npm (``npm ci``). Without them the test skips with a message, unless MINIRNN_REQUIRE_BROWSER=1
(as in CI), where it fails.
Every page must render its math, fetch nothing off the machine, log no error, show no raw
Sphinx role, and fit every display equation in its column at 1280 px. Every formula must reach
screen readers (MathJax's assistive MathML, in the accessibility tree as role ``math``).
axe-core (WCAG 2.0/2.1 A and AA rules) must find no violation, with every ``<details>`` opened,
in the light palette; its colour rules run in every palette of ``mkdocs.yml`` on the pages
that together use every tag and class of the site (see ``_colour_pages``).
Full-page screenshots of the home page, the tutorials and every derivation page go to
``site-screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
SHOTS = ROOT / "site-screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_COLOUR_RULES = ["color-contrast", "link-in-text-block"]   # the rules a palette changes
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
    if not AXE.is_file():
        return "axe-core is not installed (run `npm ci`)"
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


@pytest.fixture(scope="module")
def browser(server):
    """One Chromium for all pages (each page gets a fresh context: no shared storage)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _pages() -> list[str]:
    if not SITE.is_dir():
        return ["index.html"]
    return sorted(str(p.relative_to(SITE)) for p in SITE.rglob("*.html")
                  if p.name != "404.html" and "assets" not in p.parts)


def _tags_and_classes(page: str) -> set[str]:
    html = (SITE / page).read_text(encoding="utf-8")
    found = set()
    for tag, attributes in re.findall(r"<([a-zA-Z][\w-]*)([^>]*)>", html):
        found.add(tag.lower())
        classes = re.search(r'\bclass="([^"]*)"', attributes)
        found.update("." + name for name in (classes[1].split() if classes else ()))
    return found


def _colour_pages(pages: list[str]) -> set[str]:
    """The pages on which axe's colour rules run, in every palette: the fewest pages (chosen
    greedily) that together use every tag and every class any page uses.

    Colours come from the site's stylesheets, which style tags and classes, not pages, and no
    page sets a colour of its own (the test below). So every styled element of the site is
    checked in every palette; what this can miss is a nesting no chosen page has (say, code
    inside a kind of box no chosen page uses). The colour rules are most of axe's time (4 to
    5 s a page and palette here): they run on 8 pages instead of 76, twice each.
    """
    if not SITE.is_dir():
        return set()
    uses = {page: _tags_and_classes(page) for page in pages}
    left, chosen = set().union(*uses.values()), set()
    while left:
        page = max(pages, key=lambda p: (len(uses[p] & left), p))
        chosen.add(page)
        left -= uses[page]
    return chosen


PAGES = _pages()
COLOUR_PAGES = _colour_pages(PAGES)


def test_no_page_sets_a_colour_of_its_own(server):
    """What ``_colour_pages`` relies on: colours come from the stylesheets only."""
    inline = [page for page in PAGES
              if re.search(r'style="[^"]*(?<![\w-])(background-)?colou?r\s*:',
                            (SITE / page).read_text(encoding="utf-8"))]
    assert not inline, f"pages with an inline colour style: {inline}"


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
  // A formula reaches a screen reader if its SVG is hidden from it and it carries either
  // MathJax's assistive MathML (a non-empty <math>, visually clipped but not display:none)
  // or a non-empty aria-label.
  const containers = [...document.querySelectorAll('mjx-container')];
  const mute = containers.filter(c => {
    const svgHidden = [...c.querySelectorAll(':scope > svg')]
        .every(s => s.getAttribute('aria-hidden') === 'true');
    const mml = c.querySelector(':scope > mjx-assistive-mml > math');
    const style = mml && getComputedStyle(mml.parentElement);
    const spoken = mml && mml.textContent.trim() !== '' && style.display !== 'none'
        && style.visibility !== 'hidden';
    const label = (c.getAttribute('aria-label') || '').trim() !== '';
    return !(svgHidden && (spoken || label));
  }).map(c => {
    const tex = c.querySelector('[data-latex]');
    return tex ? tex.getAttribute('data-latex').slice(0, 60) : '?';
  });
  return {math: math.length, unrendered, errors, red, rawTex, images, badLinks, wide, roles,
          containers: containers.length, mute};
}"""

# Material animates colour changes; axe must see the final colours after a palette switch.
NO_TRANSITIONS = ("*, *::before, *::after "
                  "{ transition: none !important; animation: none !important; }")

RUN_AXE = """options => axe.run(document, options).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
  targets: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
  summary: (v.nodes[0].failureSummary || '').split('\\n').slice(0, 2).join(' ').trim(),
})))"""


def _axe(tab, palette: str, options: dict) -> list[str]:
    """axe-core's violations on the page as it is now, one readable line each."""
    return [f"[{palette}] {v['id']} ({v['impact']}, {v['count']} nodes): {v['help']}; "
            f"e.g. {v['targets']}; {v['summary']}"
            for v in tab.evaluate(RUN_AXE, options)]


# MathJax draws a formula as an SVG of glyph paths, hidden from screen readers (CHECK_PAGE has
# checked that) and holding no text or focusable element, so no axe rule can fail inside it;
# yet on a derivation page those paths are half of the nodes axe walks (6 200 of 12 200), and
# emptying them halves axe's time there (9.3 s to 3.8 s for the two runs). An SVG holding a
# link, a focusable element or text keeps its content.
EMPTY_FORMULA_SVGS = """() => {
  let emptied = 0;
  for (const svg of document.querySelectorAll('mjx-container > svg[aria-hidden="true"]')) {
    if (svg.querySelector('a, [href], [tabindex], text, foreignObject')) continue;
    svg.replaceChildren();
    emptied += 1;
  }
  return emptied;
}"""


def _accessibility(tab, colours: bool) -> tuple[int, list[str]]:
    """Open every <details>, count the formulas in the accessibility tree, run axe-core: all
    WCAG A/AA rules in the first (light) palette but the colour rules, which run (in every
    palette) only if ``colours``."""
    tab.evaluate("() => document.querySelectorAll('details:not([open])')"
                 ".forEach(d => { d.open = true; })")
    math_roles = tab.get_by_role("math").count()
    tab.evaluate(EMPTY_FORMULA_SVGS)   # after the screenshot and the count of formulas
    tab.add_style_tag(content=NO_TRANSITIONS)
    tab.add_script_tag(path=str(AXE))   # inlined from node_modules: nothing is fetched
    palettes = tab.evaluate("() => [...document.querySelectorAll('input[name=\"__palette\"]')]"
                            ".map(i => [i.id, i.dataset.mdColorScheme])")
    everything = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    if not colours:
        everything["rules"] = {rule: {"enabled": False} for rule in AXE_COLOUR_RULES}
    found = _axe(tab, palettes[0][1] if palettes else "default", everything)
    for input_id, scheme in palettes[1:] if colours else []:
        tab.evaluate("id => document.getElementById(id).click()", input_id)
        tab.wait_for_function("s => document.body.dataset.mdColorScheme === s", arg=scheme)
        found += _axe(tab, scheme, {"runOnly": {"type": "rule", "values": AXE_COLOUR_RULES},
                                    "resultTypes": ["violations"]})
    return math_roles, found


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(server, browser, page):
    offsite, console, failed = [], [], []
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(r):
        if r.request.url.startswith(server) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            offsite.append(r.request.url)
            r.abort()

    try:
        context.route("**/*", route)
        tab = context.new_page()
        tab.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        tab.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400
               else None)
        # "load" first: the whole document parsed and its resources in. With "networkidle"
        # alone, under the load of two test workers, the checks once found 91 of a page's 131
        # formulas (likely 500 ms without a request while the parser was still running)
        tab.goto(f"{server}/{page}", wait_until="load")
        tab.wait_for_load_state("networkidle")
        result = tab.evaluate(CHECK_PAGE)
        if result["mute"]:
            # Seen in 2 of ~230 page loads under load, each time on a different formula that
            # has its assistive MathML in the built HTML and passed on the next load: read the
            # page once more before calling a formula mute.
            tab.wait_for_timeout(1000)
            result = tab.evaluate(CHECK_PAGE)
        if page == "index.html" or page.startswith(("derivations/", "tutorials/")):
            SHOTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(SHOTS / (page.replace("/", "_")[:-5] + ".png")),
                           full_page=True)
        math_roles, violations = _accessibility(tab, page in COLOUR_PAGES)
    finally:
        context.close()
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
    assert not result["mute"], f"{len(result['mute'])} formulas hidden from screen readers " \
                               f"(no assistive MathML or aria-label): {result['mute'][:5]}"
    assert math_roles == result["containers"], \
        f"{result['containers']} formulas but {math_roles} in the accessibility tree as math"
    assert not violations, f"axe-core (WCAG 2 A/AA) on {page}:\n" + "\n".join(violations)
