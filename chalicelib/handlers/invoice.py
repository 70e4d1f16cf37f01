"""``generate-invoice-pdf``: a real PDF in the documents bucket, then the receipt email, chained."""

from __future__ import annotations

from typing import Any

from chalicelib import clock, display
from chalicelib.handlers.slack import money
from chalicelib.jobs import Job
from chalicelib.system import handler
from chalicelib.targets import documents


def render(data: dict[str, Any]) -> bytes:
    from fpdf import FPDF  # heavy: imported by the job that needs it, not on cold start

    pdf = FPDF()
    pdf.set_title(display.pdf(f"Invoice {data.get('reference') or data['event_id']}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 14, "Invoice", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=12)
    for label, value in (("Billed to", f"{display.pdf(data.get('name'))} <{display.pdf(data.get('email'))}>"),
                         ("Reference", display.pdf(data.get("reference")) or "-"),
                         ("Event", display.pdf(f"{data['source']}/{data['event_id']} ({data.get('type')})",
                                               display.FIELD_LIMITS["event"])),
                         ("Issued", clock.iso()[:10]),
                         ("Amount paid", display.pdf(money(data.get("amount"), data.get("currency"))))):
        pdf.cell(40, 9, f"{label}:")
        pdf.cell(0, 9, value, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


@handler("generate-invoice-pdf", attempts=3)
def generate_invoice_pdf(job: Job) -> dict[str, Any]:
    key = f"invoices/{job.data['source']}/{job.data['event_id']}/invoice.pdf"  # same key on a retry
    pdf = render(job.data)
    job.progress(50)
    job.log(f"rendered {len(pdf)} bytes")
    documents.put(key, pdf, "application/pdf")
    job.progress(100)
    job.log(f"stored as {key}")
    job.chain("send-receipt-email", {**job.data, "pdf_key": key})
    return {"bucket": documents.bucket, "key": key}
