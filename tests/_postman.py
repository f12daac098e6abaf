"""Response bodies from Lean's official Postman collection (GitHub
leantechnologies/lean-postman, UAE/Lean-API-UAE.postman_collection.json, 2026-05), recorded
against Lean's sandbox, transcribed as they are."""

from __future__ import annotations

CREATE_CUSTOMER = b"""{
    "customer_id": "a33a50fc-b29c-4c03-9cab-379280d7e500",
    "app_user_id": "lean_app_user_id_1"
}"""

CUSTOMER_ALREADY_EXISTS = b"""{
    "timestamp": "2026-05-13T19:52:24.986560Z",
    "status": "CUSTOMER_ALREADY_EXISTS",
    "message": "A customer already exists for the app_user_id you have provided.",
    "metadata": null
}"""

# GET /customers/v1?page_number=0&page_size=5
LIST_CUSTOMERS = b"""{
    "data": [
        {
            "customer_id": "a33a50fc-b29c-4c03-9cab-379280d7e500",
            "app_user_id": "lean_app_user_id_1"
        },
        {
            "customer_id": "75e2602c-1bd7-4536-aad4-7a6b19dda9b2",
            "app_user_id": "sandbox_user_id_1"
        },
        {
            "customer_id": "d7c58c6b-81d1-4b89-a58c-71ae45fd8d83",
            "app_user_id": "sandbox_user_1"
        },
        {
            "customer_id": "6005b400-8a6e-460b-9d98-6c9a9a72531b",
            "app_user_id": "maezulauf_2"
        },
        {
            "customer_id": "71cdbb28-5641-4a25-890e-1aa212f53d9a",
            "app_user_id": "maezulauf_1"
        }
    ],
    "page": {
        "number": 0,
        "size": 5,
        "total_elements": 33,
        "total_pages": 7,
        "sort": null
    }
}"""

# GET /customers/v1/app-user-id/{app_user_id} and GET /customers/v1/{customer_id}
GET_CUSTOMER = CREATE_CUSTOMER

# POST /payments/v1/destinations
CREATE_DESTINATION = b"""{
  "id": "88c71f16-2af3-4b06-979d-92b5354a9174",
  "status": "ACTIVE",
  "default": false,
  "branch_address": "45 Lansing Street, Dubai, United Arab Emirates",
  "name": "Fulani Al Fulani",
  "iban": "AE760260001015000000601",
  "display_name": "Al Fulani",
  "address": "1234 Sky Bldg.",
  "city": "Abu Dhabi",
  "country": "ARE",
  "swift_code": "EBILAEADXXX",
  "account_number": "1015000000601"
}"""

# GET /payments/v1/destinations
LIST_DESTINATIONS = b"""[
  {
    "id": "6910fddc-417c-f7fd-6e4b-4d7de3d0bc06",
    "status": "CONFIRMED",
    "default": false,
    "name": "Fake Corp.",
    "iban": "AE27LSWP9X25E4883A13998",
    "display_name": "Fake Corp. - AED",
    "address": "1234 Sky Bldg.",
    "city": "Abu Dhabi",
    "country": "ARE",
    "swift_code": "EBILEADXXX",
    "account_number": "000120203",
    "currency": "AED"
  },
  {
    "id": "432150ea-99d1-5bd8-aed3-35d4c7a2b4b4",
    "status": "CONFIRMED",
    "default": false,
    "name": "Fake Corp.",
    "iban": "AE27LSWP9X25E4883A139K7",
    "display_name": "Fake Corp. - USD",
    "address": "1234 Sky Bldg.",
    "city": "Abu Dhabi",
    "country": "ARE",
    "swift_code": "EBILEADXXX",
    "account_number": "000120202",
    "currency": "USD"
  }
]"""
