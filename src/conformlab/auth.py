"""Auth strategies: one small requests `AuthBase` per way a device takes credentials.

Each strategy is attached to a session (or passed per request). Every secret a strategy holds is
registered with `conformlab.secrets` so reports and logs mask it.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from urllib3 import HTTPHeaderDict

from conformlab import secrets
from conformlab.client import bounded_session


class BasicAuth(HTTPBasicAuth):
    """HTTP Basic; registers the password and the header value as secrets."""

    def __init__(self, username: str, password: str):
        super().__init__(username, password)
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        # and the pair: mask() knows its base64 in Latin-1 too, which is what requests sends
        secrets.register(password, token, f"{username}:{password}")


def basic_auth(username: str, password: str) -> AuthBase | None:
    """Basic auth for a credential pair, or None when the device has none set."""
    if not username and not password:
        return None
    return BasicAuth(username, password)


class BearerAuth(AuthBase):
    """`Bearer <token>` in each of the given header names (`Authorization` unless a device reads
    another, e.g. the MC252 document's "Authorized"); registers the token as a secret."""

    def __init__(self, token: str, headers: tuple[str, ...] = ("Authorization",), *, secret: bool = True):
        self.token, self.headers = token, headers
        if secret:  # a made-up token a check expects to be refused stays readable in the report
            secrets.register(token)

    def __call__(self, request):
        for name in self.headers:
            request.headers[name] = f"Bearer {self.token}"
        return request


def bearer_levels(read_token: str | None, write_token: str | None) -> dict[str, AuthBase]:
    """The auth strategy of each token level a target names ("read", "write")."""
    levels = {}
    if read_token:
        levels["read"] = BearerAuth(read_token)
    if write_token:
        levels["write"] = BearerAuth(write_token)
    return levels


class HeaderKeyAuth(AuthBase):
    """An API key in a header of its own (WCC Lite: `apiKey`; WisDM: `X-API-KEY`); registers the key."""

    def __init__(self, header: str, key: str):
        self.header, self.key = header, key
        secrets.register(key)

    def __call__(self, request):
        request.headers[self.header] = self.key
        return request


class HeadersAuth(AuthBase):
    """Credentials as raw header lines, in order; a name may repeat (a header sent twice). For
    presentations no other strategy makes: a token without its scheme, in another scheme or another
    header (`conformlab.near_miss`). The caller registers the secrets the values hold."""

    def __init__(self, *lines: tuple[str, str]):
        self.lines = lines

    def __call__(self, request):
        headers = HTTPHeaderDict()
        for name, value in request.headers.items():
            headers.add(name, value)
        for name in {name.lower() for name, _ in self.lines}:
            headers.discard(name)
        for name, value in self.lines:
            headers.add(name, value)  # urllib3 sends every value of a repeated name as a line of its own
        request.headers = headers
        return request


class LoginError(requests.RequestException):
    """The device refused the login or answered the salt or login with something unusable."""


def salted_sha1(login: str, password: str, salt: str) -> str:
    """Lowercase hex SHA1 of login + password + salt (a password hash: registered as a secret)."""
    digest = hashlib.sha1(f"{login}{password}{salt}".encode()).hexdigest()
    secrets.register(digest)
    return digest


class SaltLoginSession(AuthBase):
    """A login session: salt, SHA1(login + password + salt), a Bearer session token.

    The session is obtained lazily, at the first request (once per run), and again when the device
    answers 401 because it lapsed; never per request. The token goes into every header name in
    `headers` (the MC252 document says "Authorized", the standard is "Authorization"). The password,
    every hash and every token are registered as secrets the moment they exist.
    """

    def __init__(self, login: str, password: str, *, prefix: str, salt_path: str, login_path: str,
                 logout_path: str | None = None, headers: tuple[str, ...] = ("Authorization",), timeout: float = 10.0):
        self.login, self.password = login, password
        self.prefix, self.salt_path, self.login_path, self.logout_path = prefix, salt_path, login_path, logout_path
        self.headers, self.timeout = headers, timeout
        self.token: str | None = None
        self.logins = 0
        secrets.register(password)

    def __call__(self, request):
        base = _origin(request.url) + self.prefix
        if self.token is None:
            self.log_in(base)
        self._attach(request)
        request.register_hook("response", self._again_after_401)
        return request

    def _attach(self, request) -> None:
        BearerAuth(self.token, self.headers)(request)

    def log_in(self, base: str) -> str:
        # A session of its own (the target's may be the one asking), bounded and to `base` only: a
        # redirect of the salt or the login is refused, or the salted hash would go to another host.
        with bounded_session(self.timeout, origin=base) as plain:
            salt = plain.get(base + self.salt_path)
            _not_redirected(salt, f"GET {self.prefix}{self.salt_path}")
            try:
                value = salt.json()["salt"] if salt.status_code == 200 else None
            except (ValueError, KeyError, TypeError):
                value = None
            if not isinstance(value, str) or not value:
                raise LoginError(f"GET {self.prefix}{self.salt_path} gave no salt "
                                 f"({salt.status_code} {secrets.mask(salt.text)[:80]!r})")
            answer = plain.post(base + self.login_path,
                                json={"username": self.login, "password": salted_sha1(self.login, self.password, value)})
            _not_redirected(answer, f"POST {self.prefix}{self.login_path}")
            if answer.status_code in (401, 403):
                raise LoginError(f"the device refused the login of {self.login!r} ({answer.status_code} on POST "
                                 f"{self.prefix}{self.login_path}): check the target's login and password")
            try:
                token = answer.json()["token"]
            except (ValueError, KeyError, TypeError):
                token = None
            if isinstance(token, str):
                secrets.register(token)  # before any message could quote the answer
            if answer.status_code != 200 or not isinstance(token, str) or not token:
                raise LoginError(f"POST {self.prefix}{self.login_path} gave no session token "
                                 f"({answer.status_code} {secrets.mask(answer.text)[:80]!r})")
        secrets.register(token)
        self.token = token
        self.logins += 1
        return token

    def log_out(self, base_url: str) -> None:
        """End the session at the end of a run (a session left open lapses by itself anyway)."""
        if self.token is None or self.logout_path is None:
            return
        token, self.token = self.token, None
        with bounded_session(self.timeout, origin=base_url) as plain:
            plain.post(base_url + self.logout_path, json={}, auth=BearerAuth(token, self.headers))

    def _again_after_401(self, response, **kwargs):
        """The session lapsed (401, or 403 on a device that says so): log in once more and send the
        request again (once)."""
        if response.status_code not in (401, 403) or getattr(response.request, "_conformlab_relogged", False):
            return response
        self.token = None
        self.log_in(_origin(response.request.url) + self.prefix)
        response.close()  # release the connection (a bounded session has read the answer; nothing more is read)
        retry = response.request.copy()
        retry._conformlab_relogged = True
        self._attach(retry)
        again = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return again


def _not_redirected(response, what: str) -> None:
    if 300 <= response.status_code < 400:
        raise LoginError(f"{what} answered {response.status_code}, a redirect: not followed (the login goes "
                         "to the device only)")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
