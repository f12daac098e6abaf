"""API resources hung off the client as attributes."""

from .payment_sources import PaymentSources

__all__ = ["PaymentSources"]
