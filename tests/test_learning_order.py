"""One order of the tutorials everywhere: the nav of mkdocs.yml, the titles, the Previous/Next
links at the end of every tutorial, the learning path and the home page all agree, and a
"Tutorial N" link always points to tutorial N."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def nav_order() -> list[str]:
    """The tutorial file stems in the order of the nav's Tutorials section."""
    text = (ROOT / "mkdocs.yml").read_text()
    section = text.split("  - Tutorials:\n", 1)[1].split("\n  - ", 1)[0]
    return re.findall(r"tutorials/([\w-]+)\.md", section)


ORDER = nav_order()


def links(text: str) -> list[str]:
    """Stems of the tutorials a page links to, in order, each once."""
    seen = []
    for stem in re.findall(r"\]\((?:\.\./)?(?:tutorials/)?([\w-]+)\.md[#)]", text):
        if stem in ORDER and stem not in seen:
            seen.append(stem)
    return seen


def test_every_tutorial_is_in_the_nav_once():
    on_disk = sorted(p.stem for p in (DOCS / "tutorials").glob("*.md"))
    assert sorted(ORDER) == on_disk and len(set(ORDER)) == len(ORDER)


@pytest.mark.parametrize("number", range(1, len(ORDER) + 1))
def test_titles_and_previous_next_follow_the_nav(number):
    stem = ORDER[number - 1]
    text = (DOCS / "tutorials" / f"{stem}.md").read_text()
    assert text.startswith(f"# Tutorial {number}: ")
    nav = (ROOT / "mkdocs.yml").read_text()
    assert f'"{number}. ' in nav.split(f"tutorials/{stem}.md")[0].splitlines()[-1]
    last = text.rstrip().splitlines()[-1]
    expected = []
    if number > 1:
        expected.append(f"Previous: [Tutorial {number - 1}, ")
    if number < len(ORDER):
        expected.append(f"Next: [Tutorial {number + 1}, ")
    for piece in expected:
        assert piece in last, f"{stem}: its last line should hold {piece!r}, not {last!r}"
    assert links(last) == [ORDER[i - 1] for i in (number - 1, number + 1)
                           if 1 <= i <= len(ORDER)]
    assert ("Previous:" in last) == (number > 1) and ("Next:" in last) == (number < len(ORDER))


def test_the_learning_path_and_the_home_page_follow_the_nav():
    path = (DOCS / "learning-path.md").read_text().split("| session |", 1)[1].split("\n\n")[0]
    assert links(path) == ORDER
    home = (DOCS / "index.md").read_text().split("**tutorials**", 1)[1].split("**exercises**")[0]
    assert links(home) == ORDER


def test_a_numbered_link_points_to_that_tutorial():
    wrong = []
    for page in DOCS.rglob("*.md"):
        for number, stem in re.findall(r"\[[^\]]*Tutorial (\d+)[^\]]*\]\((?:\.\./)?(?:tutorials/)?"
                                       r"([\w-]+)\.md", page.read_text()):
            if stem in ORDER and ORDER.index(stem) + 1 != int(number):
                wrong.append((page.name, number, stem))
    assert not wrong


def test_every_derivation_the_path_reads_has_check_yourself_questions():
    """The learning path promises "check yourself" questions at the end of every derivation page
    it lists; each page has the section, with at least two questions (some are printed by a
    build-time block, so count the marker in the source)."""
    path = (DOCS / "learning-path.md").read_text()
    assert "Every derivation page ends with" in path
    pages = sorted(set(re.findall(r"\]\(derivations/([\w-]+)\.md[#)]", path)))
    assert len(pages) >= 10, pages
    texts = {p: (DOCS / "derivations" / f"{p}.md").read_text() for p in pages}
    missing = [p for p, text in texts.items() if "## Check yourself" not in text
               or text.split("## Check yourself", 1)[1].count("??? question") < 2]
    assert not missing, f"derivation pages of the path without check-yourself questions: {missing}"
