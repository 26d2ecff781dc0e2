"""C2PA content credentials (c2pa-python): sign every deliverable as AI-generated, and verify.

A signed file carries a manifest whose ``c2pa.actions`` say ``c2pa.created`` with the IPTC digital
source type *trainedAlgorithmicMedia*, the generator (Wan variant and registry version) as software
agent, the campaign and item, and the raw clip as an ingredient; an ``org.wanflow.lineage``
assertion holds the catalog ids. MP4, JPEG, WebP and GIF embed the manifest; WebM has no embedding
in C2PA, so it gets a sidecar ``<name>.c2pa`` bound to the file's bytes by a data hash.

Key and certificate chain come from settings. :func:`make_dev_ca` makes a *development* CA and
signer for tests and the demo; its certificates say so in their names and are trusted nowhere else.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from c2pa import Builder, C2paError, C2paSignerInfo, C2paSigningAlg, Context, Reader, Signer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.files import atomic_path, write_bytes_atomic

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
LINEAGE_LABEL = "org.wanflow.lineage"
SOFT_BINDING_LABEL = "c2pa.soft-binding"  # C2PA 2.x: a watermark or fingerprint that finds the manifest again
MIME = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
        ".gif": "image/gif", ".webm": "video/webm"}
SIDECAR_ONLY = {".webm"}


class ProvenanceError(Exception):
    """Signing is not configured, or a file could not be signed."""


@dataclass(frozen=True)
class SigningConfig:
    key: Path
    cert_chain: Path
    tsa_url: str | None = None
    alg: str = "es256"

    def check(self) -> None:
        for what, p in (("signing key (WANFLOW_C2PA_KEY)", self.key),
                        ("certificate chain (WANFLOW_C2PA_CERT_CHAIN)", self.cert_chain)):
            if not Path(p).is_file():
                raise ProvenanceError(f"C2PA {what} not found: {p}")


@dataclass(frozen=True)
class Credentials:
    """What a deliverable's manifest says about it."""

    title: str
    generator: str  # e.g. "Wan wan2.1-t2v-1.3b" or "wan-tiny (stand-in, random weights)"
    generator_version: str  # the registry version, e.g. "wan-t2v/3"
    campaign: str
    item: str
    lineage: dict[str, Any] = field(default_factory=dict)
    soft_binding: dict[str, Any] | None = None  # c2pa.soft-binding data: the invisible watermark and its payload


@dataclass(frozen=True)
class Verification:
    path: Path
    state: str  # "Trusted", "Valid" (signature fine, signer not in the trust list), "Invalid", "absent"
    failures: list[str]
    digital_source_types: list[str]
    generator: dict[str, Any] | None
    ingredients: list[dict[str, Any]]
    lineage: dict[str, Any] | None
    signer: dict[str, Any] | None
    sidecar: Path | None = None
    trust_checked: bool = False
    title: str | None = None  # the manifest's dc:title: the file's name as delivered
    soft_bindings: list[dict[str, Any]] = field(default_factory=list)  # c2pa.soft-binding assertions' data

    @property
    def ok(self) -> bool:
        """Trusted; or, when no trust list was given, a valid signature."""
        return self.state == "Trusted" or (self.state == "Valid" and not self.trust_checked and not self.failures)

    @property
    def ai_generated(self) -> bool:
        return TRAINED_ALGORITHMIC_MEDIA in self.digital_source_types


def sidecar_path(path: Path) -> Path:
    return Path(path).with_suffix(".c2pa")


def _manifest(claim: Credentials, fmt: str) -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": "wanflow", "version": _version()}],
        "title": claim.title,
        "format": fmt,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                "softwareAgent": {"name": claim.generator, "version": claim.generator_version},
                "parameters": {"campaign": claim.campaign, "item": claim.item},
            }]}},
            {"label": LINEAGE_LABEL, "data": {"campaign": claim.campaign, "item": claim.item, **claim.lineage}},
            *([{"label": SOFT_BINDING_LABEL, "data": claim.soft_binding}] if claim.soft_binding else []),
        ],
    }


def _version() -> str:
    try:
        return version("wanflow")
    except PackageNotFoundError:
        return "dev"


def _signer(cfg: SigningConfig):  # noqa: ANN202 — c2pa.Signer
    cfg.check()
    alg = getattr(C2paSigningAlg, cfg.alg.upper(), None)
    if alg is None:
        raise ProvenanceError(f"unknown C2PA signing algorithm {cfg.alg!r}")
    info = C2paSignerInfo(alg, Path(cfg.cert_chain).read_bytes(), Path(cfg.key).read_bytes(), cfg.tsa_url)
    return Signer.from_info(info)


def sign(src: Path, dest: Path, claim: Credentials, ingredient: Path, cfg: SigningConfig) -> dict[str, Any]:
    """Write ``src`` signed to ``dest`` (atomically; for WebM a copy plus a sidecar). Returns a record
    for the catalog: status, binding, manifest label, signer."""
    src, dest = Path(src), Path(dest)
    suffix = dest.suffix.lower()
    if suffix not in MIME:
        raise ProvenanceError(f"{dest}: no C2PA binding for {suffix!r} files")
    fmt = MIME[suffix]
    try:
        with atomic_path(dest) as tmp, _signer(cfg) as signer, Builder(_manifest(claim, fmt)) as builder:
            with open(ingredient, "rb") as f:
                builder.add_ingredient({"title": Path(ingredient).name, "relationship": "componentOf"},
                                       MIME.get(Path(ingredient).suffix.lower(), "video/mp4"), f)
            if suffix in SIDECAR_ONLY:
                builder.set_no_embed()
                with open(src, "rb") as s:
                    manifest_bytes = builder.sign(signer, fmt, s, io.BytesIO())
                write_bytes_atomic(sidecar_path(dest), manifest_bytes)
                shutil.copyfile(src, tmp)
            else:
                with open(src, "rb") as s, open(tmp, "w+b") as d:
                    builder.sign(signer, fmt, s, d)
    except C2paError as exc:
        raise ProvenanceError(f"{dest}: C2PA signing failed: {exc}") from exc
    v = verify(dest)
    if not v.ok or not v.ai_generated:
        raise ProvenanceError(f"{dest}: signed file does not verify: {v.state} {v.failures}")
    return {"status": "signed", "binding": "sidecar" if suffix in SIDECAR_ONLY else "embedded",
            "digital_source_type": TRAINED_ALGORITHMIC_MEDIA, "signer": v.signer,
            "sidecar": str(sidecar_path(dest)) if suffix in SIDECAR_ONLY else None}


def verify(path: Path, trust_anchors: Path | None = None) -> Verification:
    """Read and validate a file's C2PA manifest (embedded, or the ``.c2pa`` sidecar beside it).

    With ``trust_anchors`` (PEM), a signer chaining to one of them is ``Trusted``; without, a valid
    signature reads ``Valid`` and an untrusted signer is not counted as a failure."""
    path = Path(path)
    fmt = MIME.get(path.suffix.lower(), "application/octet-stream")
    sidecar = sidecar_path(path) if sidecar_path(path).is_file() and path.suffix.lower() in SIDECAR_ONLY else None
    ctx = Context.from_dict({"trust": {"trust_anchors": Path(trust_anchors).read_text()},
                             "verify": {"verify_trust": True}}) if trust_anchors else None
    try:
        with open(path, "rb") as f:
            data = sidecar.read_bytes() if sidecar else None
            reader = Reader(fmt, f, data, context=ctx) if ctx else Reader(fmt, f, data)
            with reader:
                store = json.loads(reader.json())
                state = reader.get_validation_state() or "Invalid"
                results = reader.get_validation_results() or {}
    except C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "ManifestNotFound" in str(exc):
            return Verification(path, "absent", ["no C2PA manifest"], [], None, [], None, None)
        return Verification(path, "Invalid", [f"{type(exc).__name__}: {exc}"], [], None, [], None, None)
    failures = [f"{r['code']}: {r.get('explanation', '')}" for r in
                results.get("activeManifest", {}).get("failure", [])
                if trust_anchors or r["code"] != "signingCredential.untrusted"]
    m = store["manifests"][store["active_manifest"]]
    actions = [a for x in m.get("assertions", []) if x["label"].startswith("c2pa.actions")
               for a in x["data"].get("actions", [])]
    created = next((a for a in actions if a.get("action") == "c2pa.created"), None)
    lineage = next((x["data"] for x in m.get("assertions", []) if x["label"] == LINEAGE_LABEL), None)
    return Verification(
        path=path, state=state, failures=failures,
        digital_source_types=[a["digitalSourceType"] for a in actions if a.get("digitalSourceType")],
        generator=created.get("softwareAgent") if created else None,
        ingredients=[{k: i.get(k) for k in ("title", "format", "relationship")} for i in m.get("ingredients", [])],
        lineage=lineage, signer=m.get("signature_info"), sidecar=sidecar, trust_checked=trust_anchors is not None,
        title=m.get("title"),
        soft_bindings=[x["data"] for x in m.get("assertions", []) if x["label"].startswith(SOFT_BINDING_LABEL)])


def make_dev_ca(folder: Path) -> SigningConfig:
    """A development CA (root) and a signer certificate under ``folder`` (made once, then reused).

    Files: ``dev-root-ca.pem`` (the trust anchor), ``dev-signer-chain.pem`` (signer + root), ``dev-signer.key``.
    For tests and the demo only: the names say DEVELOPMENT and no one else trusts the root."""
    folder = Path(folder)
    key_path, chain_path, root_path = folder / "dev-signer.key", folder / "dev-signer-chain.pem", folder / "dev-root-ca.pem"
    if key_path.is_file() and chain_path.is_file() and root_path.is_file():
        return SigningConfig(key=key_path, cert_chain=chain_path)
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wanflow DEVELOPMENT (not for production)"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def usage(ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(name("wanflow dev root CA")).issuer_name(name("wanflow dev root CA"))
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("wanflow dev signer")).issuer_name(root.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=730))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(root_path, root.public_bytes(pem))
    write_bytes_atomic(chain_path, leaf.public_bytes(pem) + root.public_bytes(pem))
    write_bytes_atomic(key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return SigningConfig(key=key_path, cert_chain=chain_path)


def dev_trust_anchor(folder: Path) -> Path:
    return Path(folder) / "dev-root-ca.pem"
