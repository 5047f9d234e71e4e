"""Near-miss credentials: almost the configured ones. A device must refuse each exactly like a wrong
credential, and nothing it carries may have an effect.

Sending only a missing and an obviously wrong credential misses where real firmware bugs live: in the
comparison (a compare over the given length, one that ignores case, trims, stops a character short
or at the stored length), in the parsing of the header (a scheme that is not checked, a credential
read from another header), in the login hash (accepted over another order, or over an empty
password). From a target's configured credentials (its [auth] table) this module derives a family
of such values, one family per way of presenting credentials; the device profile names the family
that applies (`DeviceProfile.near_misses`).

Each near miss has a stable name without any secret in it (the names are the test ids), a one-line
description, and what to send: a requests AuthBase for a protected request or, for a salt login, a
function from a fresh salt to the body of the login request. Every value derived from a secret is
registered with `conformlab.secrets` before it can be sent, so it is masked wherever the real one
would be. The values are derived from the real one and stay long (all but its last quarter, all
but its last character, ...: a short piece of a word-like secret would mask that word wherever it
stands); a near miss that would be too short to mask (under 3 characters) or that comes out as the right
value itself (a case swap of a password without letters, a hash order that gives the same text) is
NOT APPLICABLE to that credential.

What is not a near miss, by HTTP:
- whitespace around a header value: parsers strip it (RFC 9110, 5.5), so it is the same value on
  the wire. Whitespace is used only inside decoded values (a Basic password, a login field).
- the auth scheme in another case ("basic", "BEARER"): schemes are case-insensitive (RFC 7235, 2.1);
  nor the header name in another case (header names are case-insensitive).
A credential header sent twice (a wrong value first, then the right one) is settled by no device
document: it is in the families with `settled=False` and reported as a notice of what the device
did, never as a failure.

`assert_refused_like_wrong` is the one check every device suite wraps.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from conformlab import secrets
from conformlab.auth import BasicAuth, BearerAuth, HeadersAuth, salted_sha1
from conformlab.verdicts import not_applicable

if TYPE_CHECKING:  # (checks and dut import the profiles, which import this module)
    import requests

    from conformlab.checks import DeviceChecks
    from conformlab.dut import DeviceUnderTest

MASKABLE = secrets._MIN_LENGTH  # conformlab.secrets masks values of at least this many characters
WRONG_VALUE = "conformlab-wrong"  # the plainly wrong value that comes first in a duplicated header


class NotApplicable(Exception):
    """This near miss cannot be derived from this credential (the reason is the message)."""


@dataclass(frozen=True)
class NearMiss:
    name: str  # stable, without any secret: the test id
    description: str  # one line
    # (credentials, context) -> what to send: an AuthBase, or (login) salt -> login body.
    # Raises NotApplicable. `context` holds what only the run knows, e.g. "token": a callable that
    # returns the session token.
    present: Callable[[Mapping[str, str], Mapping[str, Any]], Any]
    login: bool = False  # sent as the body of the login request, not as the credentials of a request
    settled: bool = True  # False: no document says what the device must do (a notice, never a failure)
    reads_only: bool = False  # a near miss of a read-level credential: sent on read requests only


# -- values derived from a secret ---------------------------------------------------------------

# kind -> (description with {} for what the value is, how it is derived from the right value)
VARIANTS: dict[str, tuple[str, Callable[[str], str]]] = {
    "empty": ("an empty {}", lambda value: ""),
    # A long prefix (a short one of a word-like secret would mask that word wherever it stands).
    "prefix": ("the {} with its last quarter (at least 2 characters) cut off",
               lambda value: value[:len(value) - max(2, len(value) // 4)]),
    "truncated": ("the {} without its last character", lambda value: value[:-1]),
    "extended": ("the {} with one character appended", lambda value: value + "0"),
    "case-swapped": ("the {} with the case of every letter changed", str.swapcase),
    "trailing-space": ("the {} with a space appended", lambda value: value + " "),
}


def describe(kind: str, what: str) -> str:
    return VARIANTS[kind][0].format(what)


def variant(kind: str, value: str, what: str) -> str:
    """The `kind` variant of a secret `value`, registered as a secret; NotApplicable when it is
    the right value itself or too short to be masked."""
    derived = VARIANTS[kind][1](value)
    return derived_secret(derived, value, describe(kind, what))


def derived_secret(derived: str, right: str, what: str) -> str:
    if derived == right:
        raise NotApplicable(f"{what} is the right value itself for this credential")
    if derived and len(derived) < MASKABLE:
        raise NotApplicable(f"{what} would have {len(derived)} characters: too short to be masked in reports")
    secrets.register(derived)
    return derived


def _basic_token(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    secrets.register(token)
    return token


def _sha1_body(username: str, text: str) -> dict[str, str]:
    digest = hashlib.sha1(text.encode()).hexdigest()
    secrets.register(digest)
    return {"username": username, "password": digest}


# -- the families -------------------------------------------------------------------------------

VALUE_KINDS = ("prefix", "truncated", "extended", "case-swapped")  # of any secret compared as a string


def basic_family(user_key: str = "username", password_key: str = "password") -> tuple[NearMiss, ...]:
    """HTTP Basic (ESP32 EVSE). The user is no secret; the password and the header are."""
    def user(credentials):
        return credentials.get(user_key, "")

    def password(credentials):
        return credentials.get(password_key, "")

    def password_variant(kind: str) -> NearMiss:
        return NearMiss(f"password-{kind}", f"HTTP Basic with the right user and {describe(kind, 'password')}",
                        lambda c, _: BasicAuth(user(c), variant(kind, password(c), "password")))

    return (
        *(password_variant(kind) for kind in ("empty", *VALUE_KINDS, "trailing-space")),
        NearMiss("credentials-in-bearer-scheme", "the right user:password (base64) in the Bearer scheme instead of Basic",
                 lambda c, _: HeadersAuth(("Authorization", "Bearer " + _basic_token(user(c), password(c))))),
        NearMiss("credentials-in-proxy-authorization", "the right Basic credentials in Proxy-Authorization, not Authorization",
                 lambda c, _: HeadersAuth(("Proxy-Authorization", "Basic " + _basic_token(user(c), password(c))))),
        NearMiss("credentials-duplicate-header", "Authorization twice: a wrong password first, then the right one",
                 lambda c, _: HeadersAuth(("Authorization", "Basic " + _basic_token(user(c), WRONG_VALUE)),
                                          ("Authorization", "Basic " + _basic_token(user(c), password(c)))),
                 settled=False),
    )


# form -> (description, header lines from (token, header names)); the right token, presented wrongly
TOKEN_FORMS: dict[str, tuple[str, Callable[[str, tuple[str, ...]], tuple[tuple[str, str], ...]]]] = {
    "empty": ("the Bearer scheme with no token", lambda token, headers: tuple((h, "Bearer") for h in headers)),
    "without-scheme": ('the right token without "Bearer "', lambda token, headers: tuple((h, token) for h in headers)),
    "in-basic-scheme": ("the right token in the Basic scheme instead of Bearer",
                        lambda token, headers: tuple((h, "Basic " + token) for h in headers)),
    "in-proxy-authorization": ("the right Bearer token in Proxy-Authorization instead of Authorization",
                               lambda token, headers: (("Proxy-Authorization", "Bearer " + token),)),
}


def _token_family(roles: tuple[tuple[str, Callable[[Mapping[str, str], Mapping[str, Any]], str]], ...],
                  headers: tuple[str, ...], values: tuple[str, ...], forms: tuple[str, ...],
                  duplicate: bool = False) -> tuple[NearMiss, ...]:
    """Near misses of Bearer tokens sent in `headers`. `roles`: (name, how to get the token) of each
    token, the most powerful first; with one token the name is "". The comparison near misses
    (`values`) are derived from every token, those of the other tokens are read-level; the header's
    form (`forms`, a `duplicate` header) does not depend on the token and uses the first one."""
    def value_variant(kind: str, role: str, token_of, what: str, reads_only: bool) -> NearMiss:
        return NearMiss(f"{role}-token-{kind}" if role else f"token-{kind}", f"Bearer with {describe(kind, what)}",
                        lambda c, ctx: BearerAuth(variant(kind, token_of(c, ctx), what), headers, secret=False),
                        reads_only=reads_only)

    def form(kind: str) -> NearMiss:
        description, lines = TOKEN_FORMS[kind]
        return NearMiss(f"token-{kind}", description, lambda c, ctx: HeadersAuth(*lines(first(c, ctx), headers)))

    first = roles[0][1]
    family = [value_variant(kind, role, token_of, f"{role.upper()} token" if role else "session token", index > 0)
              for index, (role, token_of) in enumerate(roles) for kind in values]
    family += [form(kind) for kind in forms]
    if duplicate:
        family.append(NearMiss("token-duplicate-header", f"{headers[0]} twice: a wrong token first, then the right one",
                               lambda c, ctx: HeadersAuth(*((h, f"Bearer {WRONG_VALUE}") for h in headers),
                                                          *((h, "Bearer " + first(c, ctx)) for h in headers)),
                               settled=False))
    return tuple(family)


def bearer_family(tokens: tuple[tuple[str, str], ...] = (("write", "write_token"), ("read", "read_token")),
                  header: str = "Authorization") -> tuple[NearMiss, ...]:
    """Bearer tokens of several levels (WattWächter READ and WRITE). The comparison near misses are
    derived from every token (a level's comparison may be the buggy one); the header's form does not
    depend on the token, so those use the first (the most powerful) one. Near misses of the other
    tokens are sent on read requests only (on a write request a READ token is refused with 403)."""
    def of(key: str):
        return lambda credentials, context: credentials[key]

    return _token_family(tuple((role, of(key)) for role, key in tokens), (header,), VALUE_KINDS,
                         ("empty", "without-scheme", "in-basic-scheme", "in-proxy-authorization"), duplicate=True)


def header_key_family(header: str = "apiKey", key: str | Callable[[dict], str] = "api_key") -> tuple[NearMiss, ...]:
    """An API key in a header of its own (WCC Lite `apiKey`, WisDM `X-API-KEY`); `key` names the
    credential, or finds it in the target's credentials (WisDM: the run's key of its list)."""
    def right(credentials) -> str:
        return key(credentials) if callable(key) else credentials[key]

    def key_variant(kind: str) -> NearMiss:
        return NearMiss(f"key-{kind}", f"{header} with {describe(kind, 'key')}",
                        lambda c, _: HeadersAuth((header, variant(kind, right(c), "key"))))

    return (
        *(key_variant(kind) for kind in ("empty", *VALUE_KINDS)),
        NearMiss("key-in-authorization-header", f"the right key in Authorization instead of {header}",
                 lambda c, _: HeadersAuth(("Authorization", right(c)))),
        NearMiss("key-with-bearer-scheme", f'{header}: "Bearer " and the right key',
                 lambda c, _: HeadersAuth((header, "Bearer " + right(c)))),
        NearMiss("key-duplicate-header", f"{header} twice: a wrong key first, then the right one",
                 lambda c, _: HeadersAuth((header, WRONG_VALUE), (header, right(c))), settled=False),
    )


def salt_login_family(token_headers: tuple[str, ...], login_key: str = "login",
                      password_key: str = "password") -> tuple[NearMiss, ...]:
    """Salt + SHA1(login + password + salt) login and a Bearer session token (Overvis MC252).

    The login near misses are bodies of the login request (made per fresh salt); the token near
    misses are derived from the run's session token (context "token": a callable)."""
    def login_of(c):
        return c[login_key]

    def password_of(c):
        return c.get(password_key, "")

    def hash_order(order: tuple[str, str, str]) -> NearMiss:
        def present(c, _):
            def text(salt: str) -> str:
                parts = {"login": login_of(c), "password": password_of(c), "salt": salt}
                return "".join(parts[part] for part in order)

            placeholder = "\x00salt\x00"  # in no login or password: texts equal with it are equal with any salt
            if text(placeholder) == login_of(c) + password_of(c) + placeholder:
                raise NotApplicable(f"with this login and password, {' + '.join(order)} is the right text itself")
            return lambda salt: _sha1_body(login_of(c), text(salt))
        return NearMiss(f"hash-order-{'-'.join(order)}", f"the login hash over {' + '.join(order)} instead of login + password + salt",
                        present, login=True)

    def empty_password(c, _):
        if not password_of(c):
            raise NotApplicable("the password is empty: the hash of an empty password is the right one")
        return lambda salt: _sha1_body(login_of(c), login_of(c) + salt)

    def login_case_swapped(c, _):
        swapped = login_of(c).swapcase()
        if swapped == login_of(c):
            raise NotApplicable("the login has no letters whose case could change")
        return lambda salt: {"username": swapped, "password": salted_sha1(login_of(c), password_of(c), salt)}

    def password_trailing_space(c, _):
        return lambda salt: _sha1_body(login_of(c), login_of(c) + password_of(c) + " " + salt)

    def session_token(c, context) -> str:
        token = context["token"]
        return token() if callable(token) else token

    return (
        hash_order(("password", "login", "salt")),
        hash_order(("salt", "login", "password")),
        NearMiss("hash-empty-password", "the login hash over the login and the salt, with an empty password",
                 empty_password, login=True),
        NearMiss("login-case-swapped", "the login with the case of every letter changed (the hash over the right one)",
                 login_case_swapped, login=True),
        NearMiss("password-trailing-space", "the login hash over the password with a space appended",
                 password_trailing_space, login=True),
        *_token_family((("", session_token),), token_headers, ("truncated", "case-swapped"),
                       ("without-scheme", "in-basic-scheme")),
    )


# -- lookups ------------------------------------------------------------------------------------


def names(profile) -> list[str]:
    return [near.name for near in profile.near_misses]


def find(profile, name: str) -> NearMiss:
    for near in profile.near_misses:
        if near.name == name:
            return near
    raise KeyError(f"{profile.name} has no near miss {name!r}; it has {', '.join(names(profile))}")


def derive(profile, name: str, credentials: Mapping[str, str], **context) -> Any:
    """What to send for near miss `name` of these credentials (NotApplicable if there is none)."""
    return find(profile, name).present(credentials, context)


# -- the check ----------------------------------------------------------------------------------


def require_credentials(device: DeviceUnderTest) -> None:
    if not device.has_credentials:
        not_applicable("the target has no credentials")


@dataclass(frozen=True)
class Probe:
    """A protected request the near misses are sent on."""

    what: str  # e.g. "GET /info", for messages
    send: Callable[[Any], requests.Response]  # presents a credential: an AuthBase, or (login) salt -> body
    op: Any = None  # the Operation of a write: refused with no effect (DeviceChecks.assert_refused)
    after: Callable[[requests.Response], None] | None = None  # e.g. log out a session a faulty login handed out

    def __call__(self, credential) -> requests.Response:
        response = self.send(credential)
        if self.after is not None:
            self.after(response)
        return response


def read_probe(device: DeviceUnderTest, path: str) -> Probe:
    return Probe(f"GET {path}", lambda auth: device.client.get(path, auth=auth))


def write_probe(device: DeviceUnderTest, op, body) -> Probe:
    """A harmless write: `body` holds the values the device has now (see checks.current_body)."""
    return Probe(f"{op} (the current values written back)",
                 lambda auth: device.client.request(op.method, op.path, json=body, auth=auth), op=op)


# The words of error envelopes: the devices' ("error", "message"; WisDM's emulator "code"), those of
# cloud APIs and of RFC 9457 problem details. Anything else in a refusal is data.
ENVELOPE_KEYS = frozenset({"error", "message", "code", "status", "statusCode", "detail", "title", "type",
                           "instance", "path", "timestamp", "requestId"})


def assert_no_data(response: requests.Response, why: str) -> None:
    """A refusal serves nothing: a JSON answer is at most an error envelope (ENVELOPE_KEYS); text is
    the short error page firmware answers with."""
    from conformlab.checks import answer

    try:
        value = response.json() if response.content.strip() else None
    except ValueError:
        return
    data = {k: v for k, v in value.items() if k not in ENVELOPE_KEYS} if isinstance(value, dict) else value
    assert not data, f"{why}: the refusal carries data: {answer(response)}"


def assert_refused_like_wrong(device: DeviceUnderTest, name: str, *, probes: list[Probe], wrong,
                              refusal: Callable[[requests.Response, str], None], checks: DeviceChecks,
                              notice: Callable[[str], None], **context) -> None:
    """Near miss `name` of the target's credentials, on each probe: answered with the status a
    plainly `wrong` credential gets on the same request, in the documented refusal form (`refusal`),
    with no data, and (a write) with no effect. A near miss no document settles is reported as a
    notice of what the device did."""
    from conformlab.checks import answer

    require_credentials(device)
    near = find(device.profile, name)
    try:
        presented = near.present(device.credentials, context)
    except NotApplicable as exc:
        not_applicable(f"{name}: {exc}")
    for probe in probes:
        if near.reads_only and probe.op is not None:
            continue
        like = probe(wrong)
        why = f"{near.name} ({near.description}) on {probe.what}"
        if not near.settled:
            notice(_unsettled(device, probe, presented, like, checks, why))
            continue
        if probe.op is not None:
            response = checks.assert_refused(device, probe.op, like.status_code,
                                             f"{why}: must be refused like a wrong credential", lambda: probe(presented))
        else:
            response = probe(presented)
            assert response.status_code == like.status_code, (
                f"{why}: must be refused like a wrong credential ({like.status_code}), got {answer(response)}")
        refusal(response, why)
        assert_no_data(response, why)


def _unsettled(device, probe: Probe, presented, like, checks, why: str) -> str:
    if probe.op is not None:
        with checks.restoring(device, probe.op):
            response = probe(presented)
    else:
        response = probe(presented)
    if response.status_code == like.status_code:
        did = f"refused it like a wrong credential ({response.status_code})"
    elif 200 <= response.status_code < 300:
        did = f"accepted it ({response.status_code})"
    else:
        did = f"answered {response.status_code} (a wrong credential: {like.status_code})"
    return f"{why}: the device {did}; no document says which of the two values counts"
