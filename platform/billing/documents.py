"""Invoice documents for the clinic's admins: the printable HTML page and the CSV export.
Amounts are integer minor units; `money` is the one place they become text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.template import engines

from billing.models import Invoice


def money(minor: int, currency: str) -> str:
    return f"{currency} {minor // 100:,}.{minor % 100:02d}" if minor >= 0 else f"-{money(-minor, currency)}"


_INVOICE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {{ invoice.number }}</title></head>
<body>
<h1>Invoice {{ invoice.number }}</h1>
<p>{{ invoice.clinic.name }} ({{ invoice.clinic.country }})<br>
Period: {{ invoice.period|date:"F Y" }}<br>Issued: {{ invoice.issued_at|date:"Y-m-d" }} · Due: {{ invoice.due_at|date:"Y-m-d" }}<br>
Status: {{ invoice.status }}</p>
<table>
<thead><tr><th>Description</th><th>Qty</th><th>Unit</th><th>Amount</th></tr></thead>
<tbody>{% for line in lines %}
<tr><td>{{ line.description }}</td><td>{{ line.quantity }}</td><td>{{ line.unit }}</td><td>{{ line.amount }}</td></tr>{% endfor %}
</tbody>
<tfoot>
<tr><td colspan="3">Subtotal</td><td>{{ subtotal }}</td></tr>
<tr><td colspan="3">Tax ({{ tax_rate }} %)</td><td>{{ tax }}</td></tr>
<tr><td colspan="3">Total</td><td>{{ total }}</td></tr>
</tfoot>
</table>
</body></html>
"""


def invoice_html(invoice: Invoice) -> str:
    """The invoice as a standalone HTML page (autoescaped)."""
    cur = invoice.currency
    context = {
        "invoice": invoice,
        "lines": [
            {
                "description": line.description,
                "quantity": line.quantity,
                "unit": money(line.unit_minor, cur),
                "amount": money(line.amount_minor, cur),
            }
            for line in invoice.lines.all()
        ],
        "subtotal": money(invoice.subtotal_minor, cur),
        "tax_rate": f"{invoice.tax_rate_bp / 100:g}",
        "tax": money(invoice.tax_minor, cur),
        "total": money(invoice.total_minor, cur),
    }
    return engines["django"].from_string(_INVOICE_HTML).render(context)


def invoices_csv(invoices: Iterable[Invoice]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "number",
            "period",
            "currency",
            "subtotal_minor",
            "tax_rate_bp",
            "tax_minor",
            "total_minor",
            "status",
            "issued_at",
            "paid_at",
        ]
    )
    for invoice in invoices:
        writer.writerow(
            [
                invoice.number,
                invoice.period.isoformat(),
                invoice.currency,
                invoice.subtotal_minor,
                invoice.tax_rate_bp,
                invoice.tax_minor,
                invoice.total_minor,
                invoice.status,
                invoice.issued_at.isoformat() if invoice.issued_at else "",
                invoice.paid_at.isoformat() if invoice.paid_at else "",
            ]
        )
    return out.getvalue()
