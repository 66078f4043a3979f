"""infra.security: the secrets `concord up` makes, and Trino's files from them."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509

from infra.security import (
    ROLES,
    SecretsError,
    cert_file,
    ensure_secrets,
    password,
    pbkdf2_line,
    secrets_dir,
    trino_security_config,
    users_file,
)
from shared.config import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_made_once_private_and_kept(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    made = ensure_secrets(settings)
    assert "trino-users.json" in made and "trino-cert.pem" in made
    users = json.loads(users_file(settings).read_text())
    assert sorted(users) == sorted(ROLES)
    assert len(set(users.values())) == 3 and all(len(p) >= 20 for p in users.values())
    assert _mode(secrets_dir(settings)) == 0o700
    assert {_mode(p) for p in secrets_dir(settings).iterdir()} == {0o600}
    before = {p.name: p.read_bytes() for p in secrets_dir(settings).iterdir()}
    assert ensure_secrets(settings) == []  # a second `up` changes nothing
    assert {p.name: p.read_bytes() for p in secrets_dir(settings).iterdir()} == before
    assert password(settings, "desk") == users["desk"]
    with pytest.raises(SecretsError, match="no password for Trino user 'nobody'"):
        password(settings, "nobody")


def test_missing_credentials_say_where_they_belong(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="trino-users.json: run `concord up`"):
        password(Settings(home=tmp_path), "ops")


def test_certificate_names_the_loopback_address(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    ensure_secrets(settings)
    cert = x509.load_pem_x509_certificate(cert_file(settings).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_password_file_lines_verify_with_pbkdf2() -> None:
    user, iterations, salt, digest = pbkdf2_line("analyst", "s3cret", b"\x01" * 16).split(":")
    assert user == "analyst" and int(iterations) >= 1000
    again = hashlib.pbkdf2_hmac("sha1", b"s3cret", bytes.fromhex(salt), int(iterations),
                                dklen=len(bytes.fromhex(digest)))
    assert again.hex() == digest


def test_trino_files_turn_on_https_passwords_and_rules(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, trino_https_port=18443)
    etc = tmp_path / "etc"
    etc.mkdir()
    lines = trino_security_config(settings, etc)
    assert "http-server.https.port=18443" in lines
    assert "http-server.authentication.type=PASSWORD" in lines
    assert {ln.split(":")[0] for ln in (etc / "password.db").read_text().split()} == set(ROLES)
    assert _mode(etc / "password.db") == 0o600
    rules = json.loads((etc / "rules.json").read_text())
    desk = [r for r in rules["tables"] if r.get("user") == "desk"]
    assert desk == [{"user": "desk", "catalog": "lake", "schema": "serving",
                     "privileges": ["SELECT"]}]
