"""The business handlers, one module each; ``HANDLERS`` is the list fila's job system runs."""

from chalicelib.handlers.crm import update_crm
from chalicelib.handlers.emails import send_receipt_email, send_welcome_email
from chalicelib.handlers.invoice import generate_invoice_pdf
from chalicelib.handlers.slack import notify_slack

HANDLERS = (update_crm, notify_slack, generate_invoice_pdf, send_receipt_email, send_welcome_email)
