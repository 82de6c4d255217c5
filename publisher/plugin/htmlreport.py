"""`HtmlColumns`: each version's outcome and reason as columns of pytest-html's results table
(`--html report.html`), so that "published" and "already in the hub" read differently there.
Registered on the controller only when pytest-html is present; its cells are HTML, so the text is
made printable (`publisher.printable`) and then escaped.
"""

from __future__ import annotations

import html
from typing import Any

import pytest

from publisher.plugin.worker import REPORT_ATTR
from publisher.printable import printable

HTML_PLUGIN = "html"  # pytest-html's entry point name
HTML_COLUMNS_PLUGIN = "policyhub-html-columns"
# A sortable column's key in pytest-html's row data: `col-<key>` on the cell, `data-column-type`
# on the header; named so as not to meet pytest-html's own keys (`result`, `testId`, ...).
OUTCOME_KEY = "policyOutcome"


class HtmlColumns:
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, f'<th class="sortable" data-column-type="{OUTCOME_KEY}">Outcome</th>')
        cells.insert(3, "<th>Reason</th>")

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        # Every row needs the cells, also the setup and teardown rows of a failing item.
        data: dict[str, Any] = getattr(report, REPORT_ATTR, None) or {}
        outcome = html.escape(printable(data.get("outcome") or ""))
        reason = html.escape(printable(data.get("reason") or ""))
        cells.insert(2, f'<td class="col-{OUTCOME_KEY}">{outcome}</td>')
        cells.insert(3, f'<td class="col-reason">{reason}</td>')
