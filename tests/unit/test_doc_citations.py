"""Every citation in the code points inside the repository.

Comments, docstrings and rules files cite the project's own notes ("docs/domain-notes.md §1.3",
"docs/design-notes.md §2"); each cited section must be a heading of that page, and nothing may cite
the founders' notes outside the repository ("domain.md", "design.md") by their bare names.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITE = re.compile(r"docs/(domain|design)-notes\.md (?:§|section )(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?")
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", re.M)
OUTSIDE = re.compile(r"(?<![\w/-])(domain|design)\.md\b")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.split() if p.endswith((".py", ".json", ".md", ".toml", ".sql", ".html"))
            and p not in ("docs/benchmarks.md", "tests/unit/test_doc_citations.py")]


def _sections(page: str) -> set[str]:
    return set(HEADING.findall((ROOT / "docs" / f"{page}-notes.md").read_text(encoding="utf-8")))


def test_every_cited_section_is_a_heading_of_the_notes() -> None:
    sections = {"domain": _sections("domain"), "design": _sections("design")}
    missing, seen = [], 0
    for path in _tracked():
        for page, first, last in CITE.findall(path.read_text(encoding="utf-8", errors="replace")):
            seen += 1
            for number in filter(None, (first, last)):
                if number not in sections[page]:
                    missing.append(f"{path.relative_to(ROOT)}: {page}-notes §{number}")
    assert seen > 20, "the scan found too few citations: the pattern no longer matches the code"
    assert not missing, "cited sections without a heading:\n" + "\n".join(missing)


def test_nothing_cites_notes_outside_the_repository() -> None:
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in _tracked()
             for m in OUTSIDE.finditer(p.read_text(encoding="utf-8", errors="replace"))]
    assert not found, "citations of files outside the repository:\n" + "\n".join(found)
