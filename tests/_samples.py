"""Values shared by the tests: ids, secrets, a fast retry policy, and the reference page's
payment source example as published and repaired."""

from __future__ import annotations

from lean_async import RetryPolicy

# Secrets with distinctive values, so a test can search any text for them.
APP_TOKEN = "app-token-SECRET-7f3a9c"
ACCESS_TOKEN = "access-token-SECRET-e1d2"
CLIENT_ID = "client-id-4b1e"
CLIENT_SECRET = "client-secret-SECRET-c0ffee"
SECRETS = (APP_TOKEN, ACCESS_TOKEN, CLIENT_SECRET, "issued-token")

# Retries in milliseconds rather than seconds, so retry tests stay fast.
FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)

CUSTOMER_ID = "6db94cb7-3a02-4a57-a03a-e2a92ce86406"
SOURCE_ID = "d8d7a9b3-c401-49f6-81a4-386d8398aa2c"
UPPER_CASE_ID = "26891A75-9406-4E06-97BA-F4D6DA664F3C"

# Where the local server answers what.
LIST_PATH = f"/customers/v1/{CUSTOMER_ID}/payment-sources"
SOURCE_PATH = f"{LIST_PATH}/{SOURCE_ID}"
TOKEN_PATH = "/oauth2/token"

HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

# The single payment source example of Lean's reference page, byte for byte: not valid
# JSON (a comma is missing after "...8885" and another after "}]").
REFERENCE_SOURCE = (
    '{"id": "d8d7a9b3-c401-49f6-81a4-386d8398aa2c","customer_id": '
    '"6db94cb7-3a02-4a57-a03a-e2a92ce86406","app_id": "YOUR_APP_ID","status": '
    '"AWAITING_BENEFICIARY_COOL_OFF","beneficiary_cool_off_expiry": '
    '"2021-02-13T13:20:57.674299Z","bank_identifier": "ENBD_UAE","beneficiaries": [{"id": '
    '"26891A75-9406-4E06-97BA-F4D6DA664F3C","payment_destination_id": '
    '"f044c18b-3a51-49a2-bd3f-a585679d8885""status": '
    '"AWAITING_BENEFICIARY_COOL_OFF","beneficiary_cool_off_expiry": '
    '"2021-02-13T13:20:57.674299Z"}]"accounts": [{"id": '
    '"9acde98e-9d19-495d-934c-b2ff966262c8","account_id": '
    '"aaadbc4e-96a4-420f-ba01-597fa63502ee","account_name": "CURRENT '
    'ACCOUNT","account_number": "1015528734001","iban": "AE340260001015528734001","balance": '
    '35681.15,"currency": "AED","balance_last_updated": "2021-02-12T13:20:23.83922Z"}, {"id":'
    ' "1457d23a-c1f8-4aee-bc6f-2a253b2e617f","account_id": '
    '"69f22112-e95d-427e-8bd1-eb58b4db60ba","account_name": "CURRENCY PASSPORT SAVINGS '
    'AC","account_number": "0315528734002","iban": "AE790260000315528734002","balance": '
    '80871.00,"currency": "USD","balance_last_updated": "2021-02-12T13:20:57.370659Z"}]}'
)
REFERENCE_LIST = "[" + REFERENCE_SOURCE + "]"


def repair_commas(text: str) -> str:
    """The reference example with its two missing commas put back."""
    return text.replace('8885""status"', '8885","status"').replace('}]"accounts"', '}],"accounts"')


REPAIRED_SOURCE = repair_commas(REFERENCE_SOURCE)
REPAIRED_LIST = repair_commas(REFERENCE_LIST)
