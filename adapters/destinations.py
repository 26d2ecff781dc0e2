"""Where published files go: a local folder, S3-compatible object storage, and a CMS webhook.

Every destination delivers exactly once and intact: the bytes go to a temporary name, the checksum
is verified, and only then does the file appear under its real name (a rename on disk; a server-side
copy on S3, where an object is visible whole or not at all). Delivering a file that is already there
with the same sha256 does nothing. Nothing is ever deleted from the asset store.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from core import heavy
from core.files import atomic_path, sha256_file, write_bytes_atomic


class DeliveryError(OSError):
    """A delivery failed in a way worth retrying (network, server, checksum)."""


class WebhookRejected(Exception):
    """The webhook answered 4xx: retrying the same request will not help."""


class Destination(Protocol):
    name: str

    def uri_for(self, relpath: str) -> str: ...

    def deliver(self, src: Path, relpath: str, sha256: str) -> str: ...

    def put_bytes(self, relpath: str, data: bytes) -> str: ...


@dataclass
class LocalFolder:
    """Delivers into a folder: copy to a temporary name, verify the checksum, rename."""

    root: Path
    name: str = "local"

    def uri_for(self, relpath: str) -> str:
        return str(Path(self.root) / relpath)

    def deliver(self, src: Path, relpath: str, sha256: str) -> str:
        dest = Path(self.root) / relpath
        if dest.exists() and sha256_file(dest) == sha256:
            return str(dest)
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
            if sha256_file(tmp) != sha256:
                raise DeliveryError(f"{dest}: checksum mismatch after copy")
        return str(dest)

    def put_bytes(self, relpath: str, data: bytes) -> str:
        return str(write_bytes_atomic(Path(self.root) / relpath, data))


@dataclass
class S3Bucket:
    """S3-compatible object storage through fsspec/s3fs (``s3://bucket/prefix``).

    Upload to ``<prefix>/.incoming/<relpath>.<uuid>.part`` with the sha256 as object metadata, read it
    back and compare the sha256, server-side copy to the final key, check the final key's size and
    metadata, remove the temporary object. Credentials come from the usual AWS_* variables."""

    url: str
    endpoint_url: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.url.startswith("s3://") or len(self.url) <= 5:
            raise ValueError(f"an S3 destination looks like s3://bucket/prefix, got {self.url!r}")
        self.bucket, _, prefix = self.url[5:].partition("/")
        self.prefix = prefix.strip("/")
        self.name = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = heavy.s3fs().S3FileSystem(
                endpoint_url=self.endpoint_url, skip_instance_cache=True,
                # one place retries: the publish task (recorded per attempt), not three layers deep
                config_kwargs={"retries": {"max_attempts": 1, "mode": "standard"},
                               "connect_timeout": self.connect_timeout, "read_timeout": self.read_timeout})
            self._fs.retries = 1
        return self._fs

    def _key(self, relpath: str) -> str:
        return "/".join(p for p in (self.prefix, relpath) if p)

    def uri_for(self, relpath: str) -> str:
        return f"s3://{self.bucket}/{self._key(relpath)}"

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.fs.call_s3("head_object", Bucket=self.bucket, Key=key)
        except FileNotFoundError:
            return None
        except heavy.botocore_errors().ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _is_there(self, key: str, sha256: str, size: int) -> bool:
        head = self._head(key)
        return head is not None and head.get("ContentLength") == size and head.get("Metadata", {}).get("sha256") == sha256

    def deliver(self, src: Path, relpath: str, sha256: str) -> str:
        try:
            return self._deliver(Path(src), relpath, sha256)
        except (DeliveryError, FileNotFoundError, PermissionError):
            raise
        except Exception as exc:  # botocore/aiohttp connection errors are not OSErrors
            raise DeliveryError(f"{self.uri_for(relpath)}: {type(exc).__name__}: {exc}") from exc

    def _deliver(self, src: Path, relpath: str, sha256: str) -> str:
        key, size = self._key(relpath), src.stat().st_size
        if self._is_there(key, sha256, size):
            return self.uri_for(relpath)
        tmp = self._key(f".incoming/{relpath}.{uuid.uuid4().hex}.part")
        try:
            self.fs.put_file(str(src), f"{self.bucket}/{tmp}", Metadata={"sha256": sha256})
            got = hashlib.sha256(self.fs.cat_file(f"{self.bucket}/{tmp}")).hexdigest()
            if got != sha256:
                raise DeliveryError(f"{self.uri_for(relpath)}: checksum mismatch after upload ({got})")
            self.fs.copy(f"{self.bucket}/{tmp}", f"{self.bucket}/{key}")
            if not self._is_there(key, sha256, size):
                raise DeliveryError(f"{self.uri_for(relpath)}: not there with the right size and sha256 after copy")
        finally:
            try:
                self.fs.rm(f"{self.bucket}/{tmp}")
            except Exception:  # noqa: BLE001 — a leftover temporary object is invisible and harmless
                pass
        return self.uri_for(relpath)

    def put_bytes(self, relpath: str, data: bytes) -> str:
        with tempfile.NamedTemporaryFile(prefix="wanflow-", suffix=".part") as tmp:
            tmp.write(data)
            tmp.flush()
            return self.deliver(Path(tmp.name), relpath, hashlib.sha256(data).hexdigest())

    def keys(self) -> list[str]:
        """Every object key under the prefix (for checks and tests)."""
        root = f"{self.bucket}/{self.prefix}".rstrip("/")
        self.fs.invalidate_cache()
        return sorted(k.removeprefix(f"{self.bucket}/") for k in self.fs.find(root, withdirs=False))


@dataclass
class Webhook:
    """Notifies a CMS: POSTs a campaign's manifest as JSON with an ``Idempotency-Key`` header."""

    url: str
    timeout: float = 10.0

    def notify(self, manifest: dict[str, Any], idempotency_key: str) -> int:
        try:
            r = httpx.post(self.url, json=manifest, timeout=self.timeout,
                           headers={"Idempotency-Key": idempotency_key, "User-Agent": "wanflow"})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if r.status_code >= 500:
            raise DeliveryError(f"{self.url}: HTTP {r.status_code}: {r.text[:200]}")
        if r.status_code >= 400:
            raise WebhookRejected(f"{self.url}: HTTP {r.status_code}: {r.text[:200]}")
        return r.status_code


def destination_for(publish_to: str | None, local_dir: Path, s3_endpoint_url: str | None = None) -> Destination:
    """The destination named by settings: ``s3://bucket/prefix`` or a folder (default ``local_dir``)."""
    if publish_to and publish_to.startswith("s3://"):
        return S3Bucket(publish_to, endpoint_url=s3_endpoint_url)
    if publish_to and "://" in publish_to:
        raise ValueError(f"publish_to must be a folder or s3://bucket/prefix, got {publish_to!r}")
    return LocalFolder(Path(publish_to).expanduser().resolve() if publish_to else local_dir)
