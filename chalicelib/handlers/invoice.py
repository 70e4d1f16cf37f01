"""``generate-invoice-pdf``: a real PDF in the documents bucket, then the receipt email, chained."""

from __future__ import annotations

from typing import Any

from chalicelib.handlers.slack import money
from chalicelib.jobs import Job, handler, now_iso
from chalicelib.targets import documents


def render(data: dict[str, Any]) -> bytes:
    from fpdf import FPDF  # heavy: imported by the job that needs it, not on cold start

    pdf = FPDF()
    pdf.set_title(f"Invoice {data.get('reference') or data['event_id']}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 14, "Invoice", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=12)
    for label, value in (("Billed to", f"{data.get('name') or ''} <{data.get('email') or ''}>"),
                         ("Reference", data.get("reference") or "-"),
                         ("Event", f"{data['source']}/{data['event_id']} ({data.get('type')})"),
                         ("Issued", now_iso()[:10]),
                         ("Amount paid", money(data.get("amount"), data.get("currency")))):
        pdf.cell(40, 9, f"{label}:")
        text = str(value).encode("latin-1", "replace").decode("latin-1")  # the core fonts are Latin-1
        pdf.cell(0, 9, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@handler("generate-invoice-pdf", attempts=3)
def generate_invoice_pdf(job: Job) -> dict[str, Any]:
    key = f"invoices/{job.data['source']}/{job.data['event_id']}/invoice.pdf"  # same key on a retry
    documents.put(key, render(job.data), "application/pdf")
    job.chain("send-receipt-email", {**job.data, "pdf_key": key})
    return {"bucket": documents.bucket, "key": key}
