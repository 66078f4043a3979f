"""Who may do what in the serving layer: Trino users, passwords, certificate, rules.

Three roles, enforced by Trino itself (file-based access control, infra/trino/rules.json):

    analyst  reads lake.raw, lake.batch, lake.serving; writes nothing
    desk     reads lake.serving only
    ops      everything: DDL, INSERT/DELETE, procedures (register_table, vacuum, ...);
             the platform's own jobs connect as ops (CONCORD_TRINO_USER)

Clients authenticate with a password over HTTPS (127.0.0.1:$CONCORD_TRINO_HTTPS_PORT,
8443). Plain HTTP ($CONCORD_TRINO_PORT, 8080) stays open for health checks (/v1/info)
and Trino's own internal traffic; any query over it is refused (403), since Trino
never accepts a password over plain HTTP.

The first `concord up` makes, under $CONCORD_HOME/secrets/ (mode 0700, files 0600):
    trino-users.json    {"analyst": "...", "desk": "...", "ops": "..."}: random passwords
    trino-cert.pem      the self-signed certificate clients verify (127.0.0.1, localhost)
    trino-server.pem    its private key and the certificate: Trino's keystore
    trino-internal.secret  Trino's internal-communication shared secret
Nothing here is committed: it lives in CONCORD_HOME. Delete the folder and the next
`up` (with Trino stopped) makes new ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.config import Settings

ROLES = ("analyst", "desk", "ops")
INFRA = Path(__file__).resolve().parent
PBKDF2_ITERATIONS = 10_000  # Trino caches a verified password; this is paid once per user


class SecretsError(RuntimeError):
    pass


def secrets_dir(settings: Settings) -> Path:
    return settings.home / "secrets"


def users_file(settings: Settings) -> Path:
    return secrets_dir(settings) / "trino-users.json"


def cert_file(settings: Settings) -> Path:
    return secrets_dir(settings) / "trino-cert.pem"


def _keystore_file(settings: Settings) -> Path:
    return secrets_dir(settings) / "trino-server.pem"


def _internal_secret_file(settings: Settings) -> Path:
    return secrets_dir(settings) / "trino-internal.secret"


def internal_secret(settings: Settings) -> str:
    """The secret Trino's nodes sign their internal requests with (ensure_secrets)."""
    ensure_secrets(settings)
    return _internal_secret_file(settings).read_text().strip()


def write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def ensure_secrets(settings: Settings) -> list[str]:
    """Make what is missing of the passwords, certificate and shared secret; the names made."""
    folder = secrets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    made = []
    if not users_file(settings).is_file():
        users = {role: secrets.token_urlsafe(18) for role in ROLES}
        write_private(users_file(settings), (json.dumps(users, indent=2) + "\n").encode())
        made.append(users_file(settings).name)
    if not (cert_file(settings).is_file() and _keystore_file(settings).is_file()):
        key_pem, cert_pem = self_signed_certificate()
        write_private(_keystore_file(settings), key_pem + cert_pem)
        write_private(cert_file(settings), cert_pem)
        made.append(cert_file(settings).name)
    if not _internal_secret_file(settings).is_file():
        write_private(_internal_secret_file(settings), secrets.token_urlsafe(48).encode())
        made.append(_internal_secret_file(settings).name)
    return made


def passwords(settings: Settings) -> dict[str, str]:
    path = users_file(settings)
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        raise SecretsError(f"no Trino credentials at {path}: run `concord up` (it creates "
                           "them) or put {\"<user>\": \"<password>\"} there") from None
    if not isinstance(found, dict):
        raise SecretsError(f"{path} must hold one JSON object of user -> password")
    return {str(k): str(v) for k, v in found.items()}


def password(settings: Settings, user: str) -> str:
    found = passwords(settings)
    if user not in found:
        raise SecretsError(f"no password for Trino user {user!r} in {users_file(settings)} "
                           f"(it has: {', '.join(sorted(found)) or 'none'})")
    return found[user]


def pbkdf2_line(user: str, secret: str, salt: bytes | None = None) -> str:
    """A line of Trino's password file: `user:iterations:salt_hex:hash_hex` (PBKDF2,
    HMAC-SHA1, the hash as long as Trino reads it back)."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha1", secret.encode(), salt, PBKDF2_ITERATIONS, dklen=64)
    return f"{user}:{PBKDF2_ITERATIONS}:{salt.hex()}:{digest.hex()}"


def self_signed_certificate(days: int = 825) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) for 127.0.0.1 and localhost, EC P-256."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def trino_security_config(settings: Settings, etc: Path) -> str:
    """Write Trino's password file, authenticator, access control and rules into `etc`;
    the config.properties lines that turn them on (HTTPS, passwords, internal secret)."""
    ensure_secrets(settings)
    lines = [pbkdf2_line(user, secret) for user, secret in sorted(passwords(settings).items())]
    write_private(etc / "password.db", ("\n".join(lines) + "\n").encode())
    (etc / "password-authenticator.properties").write_text(
        "password-authenticator.name=file\n"
        f"file.password-file={etc / 'password.db'}\n"
        "file.refresh-period=5s\n"
    )
    shutil.copyfile(INFRA / "trino" / "rules.json", etc / "rules.json")
    (etc / "access-control.properties").write_text(
        "access-control.name=file\n"
        f"security.config-file={etc / 'rules.json'}\n"
        "security.refresh-period=10s\n"
    )
    secret = internal_secret(settings)
    return (
        "http-server.https.enabled=true\n"
        f"http-server.https.port={settings.trino_https_port}\n"
        f"http-server.https.keystore.path={_keystore_file(settings)}\n"
        "http-server.authentication.type=PASSWORD\n"
        f"internal-communication.shared-secret={secret}\n"
        f"password-authenticator.config-files={etc / 'password-authenticator.properties'}\n"
        f"access-control.config-files={etc / 'access-control.properties'}\n"
    )
