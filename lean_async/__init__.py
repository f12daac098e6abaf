"""lean-async: an asyncio-first client for Lean Technologies' open-banking API."""

from ._client import LeanClient
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    DecodeError,
    InvalidIdError,
    LeanError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
)
from ._retry import RetryPolicy
from ._sweep import SweepProgress, SweepResult
from ._version import __version__
from .models import (
    AccessToken,
    Account,
    Beneficiary,
    BeneficiaryStatus,
    PaymentSource,
    PaymentSourceStatus,
    decode_payment_source,
    decode_payment_sources,
)
from .resources.payment_sources import DeleteReason

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccessToken",
    "Account",
    "AuthenticationError",
    "BadRequestError",
    "Beneficiary",
    "BeneficiaryStatus",
    "ConfigurationError",
    "ConflictError",
    "DecodeError",
    "DeleteReason",
    "InvalidIdError",
    "LeanClient",
    "LeanError",
    "NotFoundError",
    "PaymentSource",
    "PaymentSourceStatus",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "SweepProgress",
    "SweepResult",
    "__version__",
    "decode_payment_source",
    "decode_payment_sources",
]
