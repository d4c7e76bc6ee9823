"""The comparison report as one self-contained HTML page (report.html).

MLflow's artifact viewer shows an HTML artifact in a sandboxed frame that cannot follow
relative links, so the page carries everything itself: the Markdown report rendered to HTML
(markdown-it-py, CommonMark + tables, raw HTML disabled so no metric name, label or error
message can inject markup), a small inline stylesheet, and every figure embedded as a base64
``data:`` URI. A figure the Markdown references (``![front](front.png)``) is embedded where it
is referenced; the others are appended under "Figures", each captioned with its file stem.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp", ".svg": "image/svg+xml"}

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       max-width: 1200px; margin: 2rem auto; padding: 0 1.25rem; line-height: 1.5; color: #1f2328; background: #fff; }
h1, h2, h3 { line-height: 1.25; margin-top: 1.6em; }
h1 { font-size: 1.6rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.3rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; background: #f3f4f6; padding: .1em .3em; border-radius: 4px; }
pre { background: #f6f8fa; padding: .8em 1em; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
.table { overflow: auto; max-height: 80vh; margin: 1em 0; border: 1px solid #d0d7de; border-radius: 6px; }
table { border-collapse: separate; border-spacing: 0; font-size: .88rem; width: max-content; min-width: 100%; }
th, td { border-right: 1px solid #d0d7de; border-bottom: 1px solid #d0d7de; padding: .35em .6em; vertical-align: top; }
th:last-child, td:last-child { border-right: none; }
tbody tr:last-child td { border-bottom: none; }
th { position: sticky; top: 0; z-index: 1; background: #eef1f4; text-align: left; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #f6f8fa; }
tbody tr:hover td { background: #fff8c5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { max-width: 100%; height: auto; }
figure { margin: 1.5em 0; }
figcaption { color: #57606a; font-size: .9rem; margin-top: .3em; }
.missing { color: #9a6700; }
"""

# a cell that is a number, a mean ± spread, a count like "2 (1 failed)", a size like "1.234M", or "—"
NUMBER = r"[-+−]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?[%MkKG]?"
NUMERIC_CELL = re.compile(rf"<td>\s*(?:—|{NUMBER}(?:\s*±\s*{NUMBER})?(?:\s*\(\d+ failed\))?)\s*</td>")


def render_html(markdown: str, title: str, images: list[Path]) -> str:
    """One HTML page: ``markdown`` rendered (raw HTML in it shown as text), then ``images``
    embedded as base64 data URIs. An image of ``images`` that the Markdown references by file
    name (``![caption](front.png)``, any folder prefix) is embedded in place; the rest follow in
    a "Figures" section, captioned with their file stem. Images that cannot be read are listed
    as missing. ``title`` (escaped) is the page's title, and its heading when the Markdown has no
    top-level heading."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    files: dict[str, Path] = {}
    for image in images:
        files.setdefault(Path(image).name, Path(image))
    env: dict = {}
    tokens = md.parse(markdown, env)
    embedded: set[str] = set()
    missing: list[str] = []
    for token in tokens:
        for child in token.children or []:
            if child.type != "image":
                continue
            name = _file_name(str(child.attrs.get("src", "")))
            if name not in files:
                continue
            uri = _data_uri(files[name])
            if uri is None:
                missing.append(name)
                continue
            child.attrs["src"] = uri
            child.attrs.setdefault("title", files[name].stem)
            embedded.add(name)
    body = md.renderer.render(tokens, md.options, env)
    body = body.replace("<table>", '<div class="table"><table>').replace("</table>", "</table></div>")
    body = NUMERIC_CELL.sub(lambda m: m.group(0).replace("<td>", '<td class="num">', 1), body)
    rest = [(name, path) for name, path in files.items() if name not in embedded and name not in missing]
    figures = []
    for name, path in rest:
        uri = _data_uri(path)
        if uri is None:
            missing.append(name)
            continue
        stem = html.escape(path.stem)
        figures.append(f'<figure id="{html.escape(_anchor(path.stem))}"><img src="{uri}" alt="{stem}"><figcaption>{stem}</figcaption></figure>')
    parts = [body]
    if figures:
        parts += ['<h2 id="figures">Figures</h2>', *figures]
    if missing:
        parts.append('<p class="missing">Figures that could not be read: ' + ", ".join(html.escape(n) for n in sorted(set(missing))) + ".</p>")
    heading = "" if re.search(r"<h1[ >]", body) else f"<h1>{html.escape(title)}</h1>\n"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{heading}" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def _file_name(src: str) -> str:
    """``./report/front%20plot.png?x`` -> ``front plot.png``."""
    return PurePosixPath(unquote(urlsplit(src).path)).name


def _data_uri(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    mime = MIME.get(path.suffix.lower(), "image/png")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _anchor(text: str) -> str:
    return "figure-" + re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
