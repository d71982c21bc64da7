"""The secret key behind every keyed digest of real data: the snapshot fingerprint and the holdout split.

A plain hash of a table is not safe to publish: someone who knows every row but one can try candidates for
the missing row until the hash matches. Keyed with a secret, the same digest identifies a snapshot (lineage,
change detection) for those who hold the key, and tells nobody else anything.

The key comes from, in order: ``SYNTHGATE_FINGERPRINT_KEY`` (environment), the Prefect Secret block named by
``SYNTHGATE_FINGERPRINT_KEY_BLOCK``, or, for the embedded one-machine set-up, a random key file
``$SYNTHGATE_HOME/secrets/fingerprint.key`` created on first use with owner-only permissions. Keep it away
from readers of the synthetic tables, MLflow and lineage; rotating it makes every next snapshot look new.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from pathlib import Path

from synthgate.errors import OutputError, SpecError
from synthgate.secret_blocks import read_secret_block
from synthgate.settings import Settings

_KEY_BYTES = 32
#: The shortest key taken from any source (the key file holds 32 random bytes as 44 base64 characters).
MIN_KEY_CHARACTERS = 32


def fingerprint_key(settings: Settings) -> bytes:
    """The secret key (raw bytes) from the environment, a Prefect Secret block or the embedded key file; at least
    :data:`MIN_KEY_CHARACTERS` characters from any of them (an empty or short key is one anybody can try)."""
    if settings.fingerprint_key is not None:
        return _long_enough(settings.fingerprint_key.get_secret_value().encode(), "SYNTHGATE_FINGERPRINT_KEY")
    if settings.fingerprint_key_block:
        block = settings.fingerprint_key_block
        return _long_enough(_from_block(block).encode(), f"the Prefect Secret block {block!r}")
    path = settings.secrets_dir / "fingerprint.key"
    if _flow_job_on_kubernetes() and not path.is_file():
        # a key made in a flow run's Job dies with its pod: every run would read its source as changed, train and
        # spend again, and split its holdout anew
        raise SpecError(
            "no fingerprint key in this flow run's Kubernetes Job: set SYNTHGATE_FINGERPRINT_KEY_BLOCK (the name of a "
            "Prefect Secret block holding the key) or SYNTHGATE_FINGERPRINT_KEY for the flow runs, e.g. `synthgate "
            "deploy --env SYNTHGATE_FINGERPRINT_KEY_BLOCK=synthgate-fingerprint-key`"
        )
    key = _key_file(path)
    if len(key) < MIN_KEY_CHARACTERS:  # written by hand, or truncated: never a file this module made
        raise SpecError(
            f"the fingerprint key file {path} holds fewer than {MIN_KEY_CHARACTERS} characters: delete it (a new key "
            "is made; every next snapshot then looks new) or put a key of at least that length in it"
        )
    return key


def _long_enough(key: bytes, source: str) -> bytes:
    if len(key) < MIN_KEY_CHARACTERS:
        raise SpecError(
            f"the fingerprint key from {source} is shorter than {MIN_KEY_CHARACTERS} characters: anybody could try "
            "every such key; use a random one, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return key


def _flow_job_on_kubernetes() -> bool:
    """Whether this process is a flow run a Prefect worker started in a Kubernetes pod (a Job of a Kubernetes work
    pool): Prefect names the flow run in its environment, and Kubernetes its API. A notebook or CI job in a pod is not
    one of them."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("PREFECT__FLOW_RUN_ID"))


def _from_block(block: str) -> str:
    try:
        return read_secret_block(block)
    except Exception as exc:  # noqa: BLE001 - any failure means the key is unavailable
        raise SpecError(
            f"cannot read the fingerprint key from Prefect Secret block {block!r} ({type(exc).__name__}): create the "
            "block or unset SYNTHGATE_FINGERPRINT_KEY_BLOCK"
        ) from None


def _key_file(path: Path) -> bytes:
    try:
        return _read_or_create(path)
    except OSError as exc:
        raise OutputError(
            f"cannot create or read the fingerprint key {path}: {exc.strerror or type(exc).__name__}. Set "
            "SYNTHGATE_FINGERPRINT_KEY, or fix the permissions of SYNTHGATE_HOME"
        ) from None


def _read_or_create(path: Path) -> bytes:
    """The key file's bytes, made first if there is none: written whole to a file of its own, then linked into place
    (``os.link`` fails where the name exists), so a reader never sees a key half written, and of two processes
    making it at once (``refresh-all``'s tables, two scheduled runs) one key wins and both use it. Where the file
    system has no hard links (FAT, some FUSE mounts) the key is written in place, and a reader that finds it short
    waits for its maker to finish."""
    if path.is_file():
        return _whole(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = base64.b64encode(secrets.token_bytes(_KEY_BYTES))
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=".fingerprint.key.")  # owner-only (0o600)
    try:
        _write(fd, key)
        try:
            os.link(draft, path)
        except FileExistsError:  # another process made it first: use theirs
            pass
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            _write_in_place(path, key)
    finally:
        os.unlink(draft)
    return _whole(path)


#: ``os.link``'s errors on a file system without hard links.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def _write_in_place(path: Path, key: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process is making it: :func:`_whole` waits for it
        return
    _write(fd, key)


def _write(fd: int, key: bytes) -> None:
    """``key`` into the open file ``fd``, on disk before it is closed."""
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())


def _whole(path: Path, *, seconds: float = 2.0) -> bytes:
    """The key file's bytes, waiting up to ``seconds`` while it is shorter than a key (being written in place)."""
    deadline = time.monotonic() + seconds
    key = path.read_bytes()
    while len(key) < MIN_KEY_CHARACTERS and time.monotonic() < deadline:
        time.sleep(0.05)
        key = path.read_bytes()
    return key


def derive(key: bytes, purpose: str) -> bytes:
    """An independent sub-key for one purpose (HMAC-SHA256 of the purpose under the key)."""
    return hmac.new(key, purpose.encode(), hashlib.sha256).digest()


def keyed_digest(key: bytes, message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``key``, hex."""
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def row_hash_key(key: bytes) -> str:
    """The 16-character key pandas' SipHash row hashing takes, derived from the secret key (96 bits)."""
    return base64.b64encode(derive(key, "row-hash")).decode()[:16]
