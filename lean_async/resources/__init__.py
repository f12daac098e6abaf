"""API resources hung off the client as attributes."""

from .customers import Customers
from .payment_destinations import PaymentDestinations
from .payment_sources import PaymentSources

__all__ = ["Customers", "PaymentDestinations", "PaymentSources"]
