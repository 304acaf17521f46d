"""C2PA signing credentials: a configured certificate chain and key, or a demo chain made once.

C2PA validators refuse a self-signed end-entity certificate, so the demo chain is a small CA
(key usage keyCertSign) that issues an ES256 (P-256) signing certificate with key usage
digitalSignature and the emailProtection EKU (one of those the C2PA trust model accepts).
Manifests signed with it validate ("Valid"); they become "Trusted" only where the demo CA is
given to the reader as a trust anchor (``read_manifest(trust_anchors=...)``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEMO_ORGANIZATION = "Generative Vision Arena (demo, self-signed)"
DEMO_CHAIN_FILE = "signer-chain.pem"
DEMO_KEY_FILE = "signer-key.pem"
DEMO_CA_FILE = "ca.pem"


class CredentialsError(Exception):
    """The signing certificate or key is missing, unreadable or unfit for C2PA."""


@dataclass(frozen=True)
class SigningCredentials:
    chain_pem: bytes  # end-entity certificate first, then its issuers (PEM)
    key_pem: bytes  # the end-entity private key (PKCS#8 PEM, unencrypted)
    algorithm: str  # "es256" (P-256) or "ps256" (RSA)
    demo: bool  # True for the demo chain made by ``demo_credentials``
    anchor_pem: bytes = b""  # the demo CA (a trust anchor for our own reader), else empty

    @property
    def subject(self) -> str:
        cert = x509.load_pem_x509_certificates(self.chain_pem)[0]
        return cert.subject.rfc4514_string()


def _key_usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )


def _certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    """A builder valid from an hour before `now` for `days`, with its subject key identifier."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )


def make_demo_chain(*, organization: str = DEMO_ORGANIZATION) -> tuple[bytes, bytes, bytes]:
    """A fresh (chain PEM, key PEM, CA PEM): a CA valid 10 years issuing a 2-year ES256 signer."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("arena demo root CA", organization)
    ca = (
        _certificate(
            subject=ca_name, issuer=ca_name, public_key=ca_key.public_key(), now=now, days=3650
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False, ca=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _certificate(
            subject=_name("arena sample signer", organization),
            issuer=ca_name,
            public_key=key.public_key(),
            now=now,
            days=730,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(pem) + ca_pem, key_pem, ca_pem


def demo_credentials(directory: Path) -> SigningCredentials:
    """The demo chain under `directory`, made on first use (key file mode 0600).

    Two processes racing on first use each write complete files via rename, so a reader never
    sees half a key; the last writer wins and both then read the same files.
    """
    directory = Path(directory)
    chain, key, ca = (directory / f for f in (DEMO_CHAIN_FILE, DEMO_KEY_FILE, DEMO_CA_FILE))
    if not (chain.is_file() and key.is_file() and ca.is_file()):
        directory.mkdir(parents=True, exist_ok=True)
        chain_pem, key_pem, ca_pem = make_demo_chain()
        for path, data, mode in (
            (key, key_pem, 0o600),
            (ca, ca_pem, 0o644),
            (chain, chain_pem, 0o644),
        ):
            partial = path.with_suffix(".tmp")
            partial.write_bytes(data)
            partial.chmod(mode)
            partial.replace(path)
    return SigningCredentials(
        chain_pem=chain.read_bytes(),
        key_pem=key.read_bytes(),
        algorithm="es256",
        demo=True,
        anchor_pem=ca.read_bytes(),
    )


def configured_credentials(*, cert_path: Path, key_path: Path) -> SigningCredentials:
    """Credentials from a PEM chain (end entity first) and a PEM private key (EC P-256 or RSA)."""
    for label, path in (("C2PA_SIGNING_CERT", cert_path), ("C2PA_SIGNING_KEY", key_path)):
        if not Path(path).is_file():
            raise CredentialsError(f"{label}={path} is not a readable file")
    chain_pem, key_pem = Path(cert_path).read_bytes(), Path(key_path).read_bytes()
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise CredentialsError(f"C2PA_SIGNING_CERT={cert_path} is not a PEM chain: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialsError(
            f"C2PA_SIGNING_KEY={key_path} is not an unencrypted PEM private key: {exc}"
        ) from exc
    if certs[0].public_key().public_numbers() != key.public_key().public_numbers():
        raise CredentialsError(
            f"C2PA_SIGNING_KEY={key_path} does not belong to the first certificate of "
            f"C2PA_SIGNING_CERT={cert_path}"
        )
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        algorithm = "es256"
    elif hasattr(key, "key_size") and not isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = "ps256"
    else:
        raise CredentialsError(
            f"C2PA_SIGNING_KEY={key_path}: use an EC P-256 (es256) or RSA (ps256) key"
        )
    return SigningCredentials(chain_pem=chain_pem, key_pem=key_pem, algorithm=algorithm, demo=False)
