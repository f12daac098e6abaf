"""lean-async: an asyncio-first client for Lean Technologies' open-banking API."""

from typing import TYPE_CHECKING, Any

from ._client import LeanClient
from ._config import ClientConfig
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
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
    WebhookSignatureError,
)
from ._observe import RequestEvent, RetryEvent
from ._paging import Pager
from ._retry import RetryPolicy
from ._sweep import SweepProgress, SweepResult
from ._version import __version__
from .resources.payment_sources import DeleteReason
from .types import Customer, PaymentDestination, PaymentDestinationStatus
from .types.payment_sources import (
    AccessToken,
    Account,
    Beneficiary,
    BeneficiaryStatus,
    PaymentSource,
    PaymentSourceStatus,
    decode_payment_source,
    decode_payment_sources,
)

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
    "ClientClosedError",
    "ClientConfig",
    "ConfigurationError",
    "ConflictError",
    "Customer",
    "DecodeError",
    "DeleteReason",
    "InvalidIdError",
    "LeanClient",
    "LeanError",
    "NotFoundError",
    "Pager",
    "PaymentDestination",
    "PaymentDestinationStatus",
    "PaymentSource",
    "PaymentSourceStatus",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestEvent",
    "ResponseTooLargeError",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "WebhookSignatureError",
    "SweepProgress",
    "SweepResult",
    "__version__",
    "decode_payment_source",
    "decode_payment_sources",
    "testing",
    "webhooks",
]

if TYPE_CHECKING:
    from . import testing, webhooks


def __getattr__(name: str) -> Any:
    # Submodules that import aiohttp.web load on first use, keeping `import lean_async` light.
    if name in ("webhooks", "testing"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
