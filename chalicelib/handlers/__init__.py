"""The business handlers (contract §3), one module each; importing this registers them all."""

from chalicelib.handlers import crm, emails, invoice, slack

__all__ = ["crm", "emails", "invoice", "slack"]
