"""Bearer-token authentication: where the token comes from, and a constant-time check of each request.

The token is read once at startup from a file (preferred: it never shows in ``ps`` or the unit file)
or from the environment. It is never logged and never echoed in an error message.
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
from pathlib import Path

from spatial_trace_ros.errors import ConfigError
from spatial_trace_ros.server.errors import RequestError
from spatial_trace_ros.server.settings import TOKEN_ENV_VAR

MIN_TOKEN_CHARS = 16
_MAKE_ONE = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
log = logging.getLogger(__name__)


def load_token(
    token_file: Path | None, allow_no_auth: bool = False, environ: dict[str, str] | None = None
) -> str | None:
    """The server's token, or None when the operator explicitly chose to run without one."""
    environ = os.environ if environ is None else environ
    if token_file is not None:
        path = Path(token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigError(f"token file {path} does not exist; create it ({_MAKE_ONE})") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"token file {path} cannot be read: {err.__class__.__name__}") from None
        source = f"token file {path}"
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("token file %s is readable by other users; chmod 600 it", path)
    elif environ.get(TOKEN_ENV_VAR):
        token = environ[TOKEN_ENV_VAR].strip()
        source = f"environment variable {TOKEN_ENV_VAR}"
    elif allow_no_auth:
        log.warning("serving WITHOUT authentication (--allow-no-auth): anyone who can reach the port can use it")
        return None
    else:
        raise ConfigError(
            f"no bearer token: pass --token-file PATH or set {TOKEN_ENV_VAR} ({_MAKE_ONE}); "
            "--allow-no-auth serves without one on a trusted network"
        )
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ConfigError(
            f"the token from the {source} must be at least {MIN_TOKEN_CHARS} characters without spaces; {_MAKE_ONE}"
        )
    return token


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` with a constant-time comparison."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token is not None else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def check(self, authorization: str | None) -> None:
        """Raise ``RequestError`` (401) unless the header carries the server's token."""
        if self._token is None:
            return
        challenge = {"WWW-Authenticate": "Bearer"}
        if not authorization:
            raise RequestError(401, "missing bearer token: send 'Authorization: Bearer <token>'", "unauthorized",
                               challenge)
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise RequestError(401, "the Authorization header must be 'Bearer <token>'", "unauthorized", challenge)
        if not hmac.compare_digest(presented.strip().encode(), self._token):
            raise RequestError(401, "invalid bearer token", "unauthorized", challenge)
