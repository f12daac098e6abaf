"""Every tunable default of the library, in one place."""

from __future__ import annotations

from typing import Final

# (environment, region) -> (API base URL, OAuth2 token URL).
# Uncertain entries (see LEAN_API_NOTES.md) are overridable with base_url= / auth_url=.
HOSTS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("sandbox", "uae"): (
        "https://sandbox.leantech.me",
        "https://auth.sandbox.leantech.me/oauth2/token",
    ),
    ("production", "uae"): (
        "https://api2.leantech.me",
        "https://auth.leantech.me/oauth2/token",
    ),
    ("sandbox", "ksa"): (
        "https://sandbox.sa.leantech.me",
        "https://auth.sandbox.sa.leantech.me/oauth2/token",
    ),
    ("production", "ksa"): (
        "https://api2.sa.leantech.me",
        "https://auth.sa.leantech.me/oauth2/token",
    ),
}
# The environments and regions are the table's keys, in the order first listed.
ENVIRONMENTS: Final = tuple(dict.fromkeys(environment for environment, _ in HOSTS))
REGIONS: Final = tuple(dict.fromkeys(region for _, region in HOSTS))

# Environment variables read when no credential is passed explicitly.
ENV_APP_TOKEN: Final = "LEAN_APP_TOKEN"
ENV_ACCESS_TOKEN: Final = "LEAN_ACCESS_TOKEN"
ENV_CLIENT_ID: Final = "LEAN_CLIENT_ID"
ENV_CLIENT_SECRET: Final = "LEAN_CLIENT_SECRET"
# Host overrides read when base_url= / auth_url= are not passed (e.g. a proxy or a mock).
ENV_BASE_URL: Final = "LEAN_BASE_URL"
ENV_AUTH_URL: Final = "LEAN_AUTH_URL"

# Timeouts, in seconds, for one attempt (not the whole call with its retries).
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0

# Retries.
DEFAULT_MAX_RETRIES: Final = 2
RETRY_INITIAL_DELAY: Final = 0.5
RETRY_MAX_DELAY: Final = 5.0
# A Retry-After longer than this fails the call at once instead of sleeping.
MAX_RETRY_AFTER: Final = 60.0
# A Retry-After up to this (seconds) on a 429 holds back the request it answered, not
# every start of the client: a per-second limit rounds its wait up to a whole second.
SHORT_RETRY_AFTER: Final = 1.0
# Besides these, every 5xx is retried.
RETRYABLE_4XX: Final = frozenset({408, 429})

# Connection pool.
DEFAULT_MAX_CONNECTIONS: Final = 100
DNS_CACHE_TTL: Final = 300

# Largest response body read into memory; real answers are a few KiB.
DEFAULT_MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024

# OAuth2: a token is refreshed this fraction of its lifetime before expiry,
# but never more than TOKEN_REFRESH_MAX_MARGIN seconds early.
TOKEN_REFRESH_FRACTION: Final = 0.1
TOKEN_REFRESH_MAX_MARGIN: Final = 60.0
DEFAULT_TOKEN_SCOPE: Final = "api"

# Headers.
APP_TOKEN_HEADER: Final = "lean-app-token"
REQUEST_ID_HEADER: Final = "lean-correlation-id"
TRACE_ID_HEADER: Final = "lean-trace-id"

# An app_user_id is 1 to this many characters (Lean's documented limit).
APP_USER_ID_MAX_LENGTH: Final = 255
# Customers per page when listing them; Lean documents no maximum (its examples use 100).
DEFAULT_CUSTOMER_PAGE_SIZE: Final = 100
DEFAULT_SWEEP_CONCURRENCY: Final = 32

# Sweep: a customer turned away with 429 this many times in a row, with no other customer
# of the sweep succeeding in between, fails with its RateLimitError.
SWEEP_STALLED_429_LIMIT: Final = 3
# A sweep stops with one error after this many customers in a row failed to connect
# (refused, unresolvable, timed out, token endpoint down) while none has got an answer.
SWEEP_UNREACHABLE_AFTER: Final = 8

# The client's rate control (one per LeanClient, shared by its calls and sweeps).
RATE_INITIAL_WINDOW: Final = 8  # requests in flight before the first answers come back
RATE_MAX_WINDOW: Final = 4096
# A window limit's window, as the client assumes it: a spent quota's estimate is what
# was admitted over this many seconds.
RATE_ESTIMATE_WINDOW: Final = 1.0
RATE_PACED_ROUND_TRIPS: Final = 4  # the span of the starts an estimate counts, round trips
RATE_MIN_SPAN: Final = 0.05  # the shortest span an estimate divides by, seconds
# The gentle start widens the window by one per this many successes: x1.25 per round trip,
# so that a window limit (which admits everything until its quota is spent) finds the
# client with few requests in flight when it starts refusing.
RATE_SLOW_START_SUCCESSES: Final = 4
RATE_MIN_SAMPLES: Final = 8  # fewer successes than this in the window: no estimate
RATE_BACKOFF: Final = 0.9  # after a 429, pace this fraction of what was admitted
# Growth after a cut, CUBIC-like: back to the admitted rate in cbrt((1 - BACKOFF) / C)
# seconds, a plateau there, then probing faster and faster.
RATE_CUBIC_C: Final = 0.4
# ... in seconds, or, below this rate, in the time this many requests take: a probe costs
# about as many 429s at any rate, so it comes as seldom, counted in requests.
RATE_CURVE_REQUESTS: Final = 150
# 429s to requests sent since the last cut, every one of those sent refused: the server
# has stopped admitting (a window's quota is spent): every start pauses. Within a round
# trip of a cut, this many more 429s are one more congestion event (the cut was not enough).
RATE_REFUSING_MARGIN: Final = 3
# After a spent quota: the pace holds at this share of what the last window admitted...
RATE_SPENT_SHARE: Final = 0.97
# ... for this many seconds before it probes above it again (BBR's ProbeBW: at the
# estimate most of the time), so that a window limit's next windows are not spent, and
# then gently: +5% a second later, +40% two seconds later.
RATE_CRUISE: Final = 6.0
RATE_PROBE_C: Final = 0.05
# A 429 while holding at that estimate: it was too high; the next is at most this share.
RATE_BELOW_ESTIMATE: Final = 0.97
# The first pause of every start when the server refuses everything (no Retry-After, or a
# whole-second rounding of one), doubling at each such event in a row: a window's reset
# is found within about this much.
RATE_PAUSE_INITIAL: Final = 0.1
# A limit on requests in progress: 429s from some number in flight on, and below it at
# most this share of refusals among the successes.
RATE_IN_PROGRESS_NOISE: Final = 0.1
# ... and 429s from it on weighing at least this much (recent history, halved at each
# congestion event): two in a row, one event apart; one alone is no evidence.
RATE_IN_PROGRESS_REFUSALS: Final = 1.5
RATE_MIN: Final = 0.5  # starts per second: the slowest pace
RATE_CATCH_UP: Final = 2  # intervals a late start may make up for at once
RATE_WINDOW_GROWTH_PERIOD: Final = 1.0  # seconds per +1 of a window cut for in-flight limits
LOGGER_NAME: Final = "lean_async"

# Webhook receiver. Real deliveries are well under 1 KiB.
WEBHOOK_MAX_BODY_SIZE: Final = 1024 * 1024
# How long shutdown waits for running webhook handlers before cancelling them.
WEBHOOK_DRAIN_TIMEOUT: Final = 30.0
# Failed events kept for inspection; older ones stay only in the log.
WEBHOOK_MAX_FAILED: Final = 1000
# Event ids MemoryEventStore remembers; Lean's last retry comes 4.3 hours after the first try.
WEBHOOK_STORE_SIZE: Final = 100_000
# After cancelling handlers at shutdown, how long to wait for them to unwind.
WEBHOOK_CANCEL_GRACE: Final = 1.0
# A request body must arrive within this many seconds (Lean's come with their headers).
WEBHOOK_BODY_TIMEOUT: Final = 5.0
# Bytes of request bodies one receiver holds in memory at once, across connections.
WEBHOOK_BODY_MEMORY: Final = 32 * 1024 * 1024
# Bodies up to this size may use the whole body memory; larger ones three quarters of it.
WEBHOOK_SMALL_BODY: Final = 64 * 1024
# Handlers an inbox's worker runs at once.
WEBHOOK_HANDLER_CONCURRENCY: Final = 16
# Runs of a failing handler before its event is parked as failed; the delays between
# them double from the first to at most the last.
WEBHOOK_MAX_ATTEMPTS: Final = 10
WEBHOOK_RETRY_INITIAL_DELAY: Final = 1.0
WEBHOOK_RETRY_MAX_DELAY: Final = 300.0
# The worker looks at its inbox this often when nothing wakes it (events added by another
# process or by a backfill, retries coming due).
WEBHOOK_INBOX_POLL: Final = 0.5
# Events a backfill adds in one commit.
WEBHOOK_BACKFILL_BATCH: Final = 100
# How long a SQLite inbox waits for another process's lock before failing.
WEBHOOK_SQLITE_BUSY_TIMEOUT: Final = 5.0
# Events asked for per page of GET /events/v1 (Lean's own example asks for 50).
DEFAULT_EVENTS_PAGE_SIZE: Final = 50
# The webhook secret of the `lean-async webhooks` commands.
ENV_WEBHOOK_SECRET: Final = "LEAN_WEBHOOK_SECRET"
# After this many bytes of bodies, and then this many quiet seconds, a receiver gives the
# memory freed since back to the system (glibc would keep it).
WEBHOOK_TRIM_BURST: Final = 16 * 1024 * 1024
WEBHOOK_TRIM_QUIET: Final = 2.0
# A receiver logs each kind of refused request at most once per this many seconds (with a
# count of the others), so that a flood of them does not flood the log.
WEBHOOK_REFUSAL_LOG_INTERVAL: Final = 10.0
