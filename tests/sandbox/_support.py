"""Helpers shared by the sandbox tests (no fixtures here; they live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SandboxSeller:
    """A seller created through the control API, with helpers to call its marketplace."""

    http: httpx.Client
    id: str
    marketplace: str
    credentials: dict[str, str]
    created: dict[str, Any] = field(default_factory=dict)

    @property
    def wb_headers(self) -> dict[str, str]:
        return {"Authorization": self.credentials["token"]}

    @property
    def ozon_headers(self) -> dict[str, str]:
        return {"Client-Id": self.credentials["client_id"], "Api-Key": self.credentials["api_key"]}

    def wb(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.wb_headers, **kwargs.pop("headers", {})}
        return self.http.request(method, f"/wb{path}", headers=headers, **kwargs)

    def ozon(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        headers = {**self.ozon_headers, **kwargs.pop("headers", {})}
        return self.http.post(f"/ozon{path}", json=body, headers=headers, **kwargs)

    def summary(self) -> dict[str, Any]:
        response = self.http.get(f"/control/sellers/{self.id}")
        assert response.status_code == 200, response.text
        return response.json()

    def truth(self) -> list[dict[str, Any]]:
        response = self.http.get(f"/control/sellers/{self.id}/stocks")
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def set_faults(self, **faults: Any) -> None:
        response = self.http.put(f"/control/sellers/{self.id}/faults", json=faults)
        assert response.status_code == 200, response.text

    def advance(self, hours: float) -> dict[str, Any]:
        response = self.http.post(f"/control/sellers/{self.id}/advance", json={"hours": hours})
        assert response.status_code == 200, response.text
        return response.json()


MakeSeller = Callable[..., SandboxSeller]
