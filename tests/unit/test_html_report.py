"""The self-contained HTML report: tables, figures embedded as data URIs, nothing injectable."""

from __future__ import annotations

import base64
import re

import pytest
from PIL import Image

from polytask.results.html_report import render_html

MARKDOWN = """# Study `quickstart`

Validation metrics, mean ± std over seeds.

| candidate | trials | subjectivity accuracy | note |
|---|---|---|---|
| ★ tuned [0.60, 1.40] | 1 | 0.930 | seed 1, Pareto-optimal of 3 |
| equal | 2 (1 failed) | 0.920 ± 0.028 | |

![the Pareto front](report/front.png)

![not ours](elsewhere.png)
"""


@pytest.fixture
def images(tmp_path):
    paths = []
    for name, colour in [("front", "red"), ("task bars", "blue")]:
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (4, 3), colour).save(path)
        paths.append(path)
    return paths


def uri(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def test_the_table_is_rendered(images):
    page = render_html(MARKDOWN, "quickstart", images)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<th>subjectivity accuracy</th>" in page
    assert "<td>★ tuned [0.60, 1.40]</td>" in page
    assert '<td class="num">0.920 ± 0.028</td>' in page  # numbers right-aligned
    assert '<td class="num">2 (1 failed)</td>' in page
    assert "<td>seed 1, Pareto-optimal of 3</td>" in page
    assert "<code>quickstart</code>" in page
    assert "<style>" in page and "position: sticky" in page


def test_images_are_embedded_in_place_and_the_rest_under_figures(images):
    front, bars = images
    page = render_html(MARKDOWN, "quickstart", images)
    figures = page.index('<h2 id="figures">Figures</h2>')
    in_place = page.index(f'<img src="{uri(front)}" alt="the Pareto front"')
    assert in_place < figures  # where the Markdown put it, not again at the end
    assert page.count(uri(front)) == 1
    assert page.index(f'<img src="{uri(bars)}" alt="task bars">') > figures
    assert "<figcaption>task bars</figcaption>" in page
    assert '<img src="elsewhere.png" alt="not ours"' in page  # not one of ours: left alone
    assert "src=\"report/front.png\"" not in page
    assert not re.search(r'src="(?!data:|elsewhere\.png)', page)  # no other relative links


def test_a_referenced_name_is_matched_through_folders_and_percent_encoding(images):
    page = render_html("![bars](figures/task%20bars.png)\n", "t", images)
    assert f'<img src="{uri(images[1])}" alt="bars"' in page
    assert page.index(uri(images[1])) < page.index("Figures")  # in place; only front is left for the end


def test_no_figures_section_without_images():
    page = render_html("# Report\n\ntext\n", "t", [])
    assert "Figures" not in page and "<img" not in page
    assert page.count("<h1>") == 1  # the Markdown's heading; the title is not repeated


def test_missing_images_are_listed_not_fatal(tmp_path, images):
    page = render_html("text\n", "t", [*images, tmp_path / "gone.png"])
    assert "could not be read: gone.png" in page
    assert page.count("<figure") == 2


def test_nothing_can_inject_markup():
    markdown = (
        "# Study <script>alert(1)</script>\n\n"
        "| candidate | note |\n|---|---|\n| <img src=x onerror=alert(2)> | <script>alert(3)</script> |\n\n"
        "<script>alert(4)</script>\n\n[click](javascript:alert(5))\n"
    )
    page = render_html(markdown, "</title><script>alert(6)</script>", [])
    assert "<script" not in page and "<img" not in page
    assert "<title>&lt;/title&gt;&lt;script&gt;alert(6)&lt;/script&gt;</title>" in page
    assert "<h1>Study &lt;script&gt;alert(1)&lt;/script&gt;</h1>" in page
    assert "<td>&lt;script&gt;alert(3)&lt;/script&gt;</td>" in page
    assert "&lt;script&gt;alert(4)&lt;/script&gt;" in page
    assert "javascript:" not in page.replace("[click](javascript:alert(5))", "")  # left as text, never an href


def test_the_title_is_the_heading_when_the_markdown_has_none():
    page = render_html("| a |\n|---|\n| 1 |\n", "Study <x>", [])
    assert "<h1>Study &lt;x&gt;</h1>" in page
