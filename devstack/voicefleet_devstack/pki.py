"""The few keys and certificates a local control plane needs, made with `cryptography`."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=365)


def write_key(path: Path) -> rsa.RSAPrivateKey:
    """A new RSA key in PEM at `path` (and its public half beside it as .pub)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.with_suffix(".pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key


def write_client_ca(directory: Path, name: str, user: str, group: str) -> None:
    """A CA (`name`-ca.crt) and a client certificate it signed for `user` in `group`
    (`name`.crt and `name`.key): how the API server proves itself to a kubelet."""
    ca_key = write_key(directory / f"{name}-ca.key")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-ca")])
    ca = _certificate(ca_name, ca_key, ca_name, ca_key.public_key(),
                      x509.BasicConstraints(ca=True, path_length=0))  # fmt: skip
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, group),
            x509.NameAttribute(NameOID.COMMON_NAME, user),
        ]
    )
    key = write_key(directory / f"{name}.key")
    client_auth = x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH])
    client = _certificate(ca_name, ca_key, subject, key.public_key(), client_auth)
    (directory / f"{name}-ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.crt").write_bytes(client.public_bytes(serialization.Encoding.PEM))


def _certificate(
    issuer: x509.Name,
    signer: rsa.RSAPrivateKey,
    subject: x509.Name,
    key: rsa.RSAPublicKey,
    extension: x509.ExtensionType,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(extension, critical=isinstance(extension, x509.BasicConstraints))
        .sign(signer, hashes.SHA256())
    )
