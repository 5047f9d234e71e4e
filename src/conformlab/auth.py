"""Auth strategies: one small requests `AuthBase` per way a device takes credentials.

Each strategy is attached to a session (or passed per request). Every secret a strategy holds is
registered with `conformlab.secrets` so reports and logs mask it.
"""

from __future__ import annotations

import base64

from requests.auth import AuthBase, HTTPBasicAuth

from conformlab import secrets


class BasicAuth(HTTPBasicAuth):
    """HTTP Basic; registers the password and the header value as secrets."""

    def __init__(self, username: str, password: str):
        super().__init__(username, password)
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        secrets.register(password, token)


def basic_auth(username: str, password: str) -> AuthBase | None:
    """Basic auth for a credential pair, or None when the device has none set."""
    if not username and not password:
        return None
    return BasicAuth(username, password)


class BearerAuth(AuthBase):
    """`Authorization: Bearer <token>`; registers the token as a secret."""

    def __init__(self, token: str):
        self.token = token
        secrets.register(token)

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def bearer_levels(read_token: str | None, write_token: str | None) -> dict[str, AuthBase]:
    """The auth strategy of each token level a target names ("read", "write")."""
    levels = {}
    if read_token:
        levels["read"] = BearerAuth(read_token)
    if write_token:
        levels["write"] = BearerAuth(write_token)
    return levels
