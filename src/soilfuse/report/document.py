"""Self-contained HTML reports: headings, text, tables and figures in one file.

Figures are embedded as base64 PNG so the report opens anywhere without its folder.

Usage
-----
>>> import pandas as pd
>>> rep = HtmlReport("demo")
>>> rep.section("Scores").table(pd.DataFrame({"rmse": [1.5]}))  # doctest: +ELLIPSIS
<...HtmlReport...>
>>> "<table" in rep.render()
True
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from pathlib import Path
from typing import Any

import pandas as pd

from soilfuse import __version__

__all__ = ["HtmlReport"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { border-bottom: 2px solid #2b6a8f; } h2 { color: #2b6a8f; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #eef3f7; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; } .meta { color: #777; font-size: 0.85em; }
"""


class HtmlReport:
    """Accumulates report parts and renders them as one HTML document.

    Parameters
    ----------
    title : str
        Document title and top heading.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []

    def section(self, heading: str) -> HtmlReport:
        """Start a section with a level-2 heading."""
        self._parts.append(f"<h2>{html.escape(heading)}</h2>")
        return self

    def text(self, paragraph: str) -> HtmlReport:
        """Add a paragraph of plain text (escaped)."""
        self._parts.append(f"<p>{html.escape(paragraph)}</p>")
        return self

    def table(self, df: pd.DataFrame, *, caption: str | None = None, float_format: str = "{:.3f}") -> HtmlReport:
        """Add a table; floats are formatted with ``float_format``."""
        body = df.to_html(float_format=lambda v: float_format.format(v), border=0, na_rep="–")
        if caption:
            end = body.index(">") + 1  # end of the opening <table ...> tag
            body = f"{body[:end]}<caption>{html.escape(caption)}</caption>{body[end:]}"
        self._parts.append(body)
        return self

    def figure(self, fig: Any, *, caption: str = "", dpi: int = 110) -> HtmlReport:
        """Embed a matplotlib figure as a PNG (the figure is closed afterwards)."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        self._parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        return self

    def render(self) -> str:
        """The whole document as a string."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>"
            f"<p class='meta'>soilfuse {__version__} · generated {stamp}</p>"
        )
        return head + "\n".join(self._parts) + "</body></html>"

    def write(self, path: str | Path) -> Path:
        """Write the document (atomically) and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        tmp.replace(path)
        return path
