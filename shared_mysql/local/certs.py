"""A private CA and a server certificate for the embedded server (SAN ::1 plus the wanted hosts).

They are regenerated, CA included, when the certificate does not name every wanted host, expires within
RENEW_BEFORE, or the files are missing, unreadable or do not belong together. The CA's private key is never
kept: nothing else is ever signed with it, so a new server certificate always comes with a new CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from ..secrets.file import write_private

RENEW_BEFORE = dt.timedelta(days=30)
CA_DAYS = 3650
CERT_DAYS = 825


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def certificate_paths(tls_dir: Path) -> dict[str, Path]:
    return {"ca": tls_dir / "ca.pem", "cert": tls_dir / "server-cert.pem", "key": tls_dir / "server-key.pem"}


def wanted_names(hosts: tuple[str, ...]) -> tuple[str, ...]:
    """The SANs a certificate for `hosts` carries: ::1 first, then the hosts in order, without duplicates."""
    return tuple(dict.fromkeys(["::1", *(_canonical(h) for h in hosts)]))


def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def renewal_reason(tls_dir: Path, hosts: tuple[str, ...], *, now: dt.datetime | None = None) -> str | None:
    """Why the certificates in `tls_dir` cannot be used for `hosts` (one short phrase), or None when they can."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    paths = certificate_paths(tls_dir)
    missing = [p.name for p in paths.values() if not p.exists()]
    if missing:
        return f"{', '.join(missing)} missing"
    try:
        ca = x509.load_pem_x509_certificate(paths["ca"].read_bytes())
        cert = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
        key = serialization.load_pem_private_key(paths["key"].read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        return f"the certificate files cannot be read ({exc.__class__.__name__})"
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        return "server-key.pem does not match server-cert.pem"
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return "server-cert.pem is not signed by ca.pem"
    now = now or dt.datetime.now(dt.timezone.utc)
    for name, c in (("ca.pem", ca), ("server-cert.pem", cert)):
        if c.not_valid_after_utc - now < RENEW_BEFORE:
            return f"{name} expires on {c.not_valid_after_utc:%Y-%m-%d}"
        if c.not_valid_before_utc > now:
            return f"{name} is not valid before {c.not_valid_before_utc:%Y-%m-%d}"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "server-cert.pem has no subject alternative names"
    have = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    have |= {d.lower() for d in san.get_values_for_type(x509.DNSName)}
    lacking = [n for n in wanted_names(hosts) if n not in have]
    if lacking:
        return f"server-cert.pem does not name {', '.join(lacking)}"
    return None


def _public_der(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def ensure_certificates(tls_dir: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> dict[str, Path]:
    """Keep usable certificates; otherwise write a new CA and server certificate (call only while stopped)."""
    paths = certificate_paths(tls_dir)
    if renewal_reason(tls_dir, hosts) is None:
        return paths
    _generate(paths, hosts)
    return paths


def _generate(paths: dict[str, Path], hosts: tuple[str, ...]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shared-mysql local CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in wanted_names(hosts):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    from ..secrets.file import private_dirs

    private_dirs(paths["ca"].parent)
    # Key first, CA last: an interrupted run leaves a mismatch that the next run detects and repairs.
    # The CA's private key is not kept: nothing else is ever signed with it.
    write_private(paths["key"], _pem_key(key))
    write_private(paths["cert"], cert.public_bytes(serialization.Encoding.PEM))
    write_private(paths["ca"], ca.public_bytes(serialization.Encoding.PEM))
    paths["ca"].chmod(0o644)  # the CA certificate is public: clients need it
