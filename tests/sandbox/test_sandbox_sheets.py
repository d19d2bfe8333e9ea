"""The Google stand-in: the JWT-bearer token endpoint and the Sheets methods, in Google's shapes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def new_account(http: httpx.Client) -> dict[str, Any]:
    response = http.post("/control/google/service-accounts", json={"name": "reports-bot"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def assertion(account: dict[str, Any], **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": account["client_email"],
        "scope": SCOPE,
        "aud": account["token_uri"],
        "iat": now,
        "exp": now + 3600,
    }
    key = overrides.pop("key", account["private_key"])
    kid = overrides.pop("kid", account["private_key_id"])
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def grant(http: httpx.Client, account: dict[str, Any], token: str, grant_type: str = GRANT) -> httpx.Response:
    return http.post(account["token_uri"], data={"grant_type": grant_type, "assertion": token})


def access(http: httpx.Client, account: dict[str, Any]) -> dict[str, str]:
    response = grant(http, account, assertion(account))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 3600
    return {"Authorization": f"Bearer {body['access_token']}"}


def spreadsheet(http: httpx.Client, account: dict[str, Any], sheets: list[str] | None = None) -> str:
    body: dict[str, Any] = {"editors": [account["client_email"]], **({"sheets": sheets} if sheets else {})}
    return str(http.post("/control/google/spreadsheets", json=body).json()["spreadsheetId"])


def test_token_endpoint_checks_the_assertion(http: httpx.Client) -> None:
    account, other = new_account(http), new_account(http)
    assert account["token_uri"].endswith("/sandbox/google/oauth2/token")
    assert access(http, account)
    refusals = {
        "signed by another key": assertion(account, key=other["private_key"]),
        "unknown key id": assertion(account, kid="0" * 40),
        "wrong audience": assertion(account, aud="https://oauth2.googleapis.com/token"),
        "longer than an hour": assertion(account, exp=int(time.time()) + 7200),
        "expired": assertion(account, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "unknown account": assertion(account, iss="nobody@example.iam.gserviceaccount.com"),
        "not a jwt": "not-a-jwt",
    }
    for reason, token in refusals.items():
        response = grant(http, account, token)
        assert response.status_code == 400, reason
        assert response.json()["error"] == "invalid_grant", reason
    assert grant(http, account, assertion(account), "client_credentials").json()["error"] == "unsupported_grant_type"
    assert (
        grant(http, account, assertion(account, scope="https://www.googleapis.com/auth/drive")).json()["error"]
        == "invalid_scope"
    )
    http.post(f"/control/google/keys/{account['private_key_id']}/revoke")
    revoked = grant(http, account, assertion(account))
    assert revoked.status_code == 400 and revoked.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid JWT Signature.",
    }


def test_values_are_written_within_the_grid_and_read_back(http: httpx.Client) -> None:
    account = new_account(http)
    auth = access(http, account)
    sid = spreadsheet(http, account, ["It's mine"])
    base = f"/google/sheets/v4/spreadsheets/{sid}"
    body = {
        "valueInputOption": "USER_ENTERED",
        "data": [{"range": "'It''s mine'!B2", "values": [["a", "12", 1.5, True], [None, "=SUM(A1)", "3,5"]]}],
    }
    written = http.post(f"{base}/values:batchUpdate", json=body, headers=auth)
    assert written.status_code == 200, written.text
    assert (
        written.json()["totalUpdatedCells"] == 6
        and written.json()["responses"][0]["updatedRange"] == "'It''s mine'!B2:E3"
    )
    raw = http.get(f"{base}/values/'It''s mine'!A1:E3", params={"valueRenderOption": "UNFORMATTED_VALUE"}, headers=auth)
    assert raw.json()["values"] == [[], ["", "a", 12, 1.5, True], ["", "", "=SUM(A1)", 3.5]]
    shown = http.get(f"{base}/values/A2:C2", headers=auth).json()
    assert shown == {"range": "'It''s mine'!A2:C2", "majorDimension": "ROWS", "values": [["", "a", "12"]]}

    too_far = {"valueInputOption": "RAW", "data": [{"range": "A1000", "values": [["x"], ["y"]]}]}
    response = http.post(f"{base}/values:batchUpdate", json=too_far, headers=auth)
    assert response.status_code == 400 and "exceeds grid limits" in response.json()["error"]["message"]
    response = http.post(f"{base}/values:batchUpdate", json={"data": []}, headers=auth)
    assert response.status_code == 400 and "valueInputOption" in response.json()["error"]["message"]
    response = http.post(
        f"{base}/values:batchUpdate",
        json={"valueInputOption": "RAW", "data": [{"range": "Nope!A1", "values": [[1]]}]},
        headers=auth,
    )
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_batch_update_is_atomic_validated_and_recorded(http: httpx.Client) -> None:
    account = new_account(http)
    auth = access(http, account)
    sid = spreadsheet(http, account)
    url = f"/google/sheets/v4/spreadsheets/{sid}:batchUpdate"
    resize = {
        "updateSheetProperties": {
            "properties": {"sheetId": 0, "gridProperties": {"rowCount": 5, "frozenRowCount": 1}},
            "fields": "gridProperties.rowCount,gridProperties.frozenRowCount",
        }
    }
    bad = [resize, {"mergeCells": {"range": {"sheetId": 77, "startRowIndex": 0, "endRowIndex": 1}}}]
    response = http.post(url, json={"requests": bad}, headers=auth)
    assert response.status_code == 400 and "No grid with id: 77" in response.json()["error"]["message"]
    unknown = http.post(url, json={"requests": [{"makeItPretty": {}}]}, headers=auth)
    assert unknown.status_code == 400
    state = http.get(f"/control/google/spreadsheets/{sid}").json()
    assert state["sheets"][0]["gridProperties"]["rowCount"] == 1000 and state["requests"] == []  # nothing applied

    good = [
        {"addSheet": {"properties": {"sheetId": 42, "title": "Отчёт"}}},
        resize,
        {
            "mergeCells": {
                "range": {
                    "sheetId": 0,
                    "startRowIndex": 0,
                    "endRowIndex": 1,
                    "startColumnIndex": 0,
                    "endColumnIndex": 3,
                },
                "mergeType": "MERGE_ALL",
            }
        },
        {
            "repeatCell": {
                "range": {"sheetId": 0, "startRowIndex": 0, "endRowIndex": 1},
                "cell": {"userEnteredFormat": {"textFormat": {"bold": True}}},
                "fields": "userEnteredFormat.textFormat",
            }
        },
    ]
    response = http.post(url, json={"requests": good}, headers=auth)
    assert response.status_code == 200, response.text
    replies = response.json()["replies"]
    assert replies[0]["addSheet"]["properties"]["sheetId"] == 42 and replies[1:] == [{}, {}, {}]
    overlap = http.post(url, json={"requests": [good[2]]}, headers=auth)
    assert overlap.status_code == 400 and "overlap" in overlap.json()["error"]["message"]
    meta = http.get(f"/google/sheets/v4/spreadsheets/{sid}", headers=auth).json()
    first = meta["sheets"][0]
    assert first["properties"]["gridProperties"] == {"rowCount": 5, "columnCount": 26, "frozenRowCount": 1}
    assert first["merges"][0]["endColumnIndex"] == 3 and meta["sheets"][1]["properties"]["title"] == "Отчёт"
    assert http.get(f"/control/google/spreadsheets/{sid}").json()["requests"] == good


@pytest.mark.parametrize("token", [None, "Bearer ya29.nope"])
def test_calls_need_a_live_token(http: httpx.Client, token: str | None) -> None:
    account = new_account(http)
    sid = spreadsheet(http, account)
    headers = {"Authorization": token} if token else {}
    response = http.get(f"/google/sheets/v4/spreadsheets/{sid}", headers=headers)
    assert response.status_code == 401 and response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_faults_sharing_and_unknown_paths(http: httpx.Client) -> None:
    account = new_account(http)
    auth = access(http, account)
    sid = spreadsheet(http, account)
    assert http.put(f"/control/google/spreadsheets/{sid}/faults", json={"statuses": [429, 500]}).status_code == 200
    first = http.get(f"/google/sheets/v4/spreadsheets/{sid}", headers=auth)
    assert first.status_code == 429 and first.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert http.get(f"/google/sheets/v4/spreadsheets/{sid}", headers=auth).status_code == 500
    assert http.get(f"/google/sheets/v4/spreadsheets/{sid}", headers=auth).status_code == 200
    assert http.put(f"/control/google/spreadsheets/{sid}/faults", json={"statuses": [404]}).status_code == 422
    stranger = spreadsheet(http, new_account(http))
    denied = http.get(f"/google/sheets/v4/spreadsheets/{stranger}", headers=auth)
    assert denied.status_code == 403 and denied.json()["error"]["message"] == "The caller does not have permission"
    assert http.get("/google/sheets/v4/spreadsheets/nope", headers=auth).status_code == 404
    assert http.post(f"/google/sheets/v4/spreadsheets/{sid}:frobnicate", json={}, headers=auth).status_code == 404
