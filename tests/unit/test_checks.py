"""The command's TLS check: each mistake named in one line, before any socket is bound."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vestespy._checks import check_tls
from vestespy._config import StartupError, UsageError

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A certificate and its key, another certificate's key, an encrypted key, a combined file."""
    from cryptography.hazmat.primitives import serialization

    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    one = ca.issue_cert("localhost")
    other = ca.issue_cert("localhost")
    paths = {name: str(directory / f"{name}.pem") for name in ("cert", "key", "other", "both")}
    one.cert_chain_pems[0].write_to_path(paths["cert"])
    one.private_key_pem.write_to_path(paths["key"])
    other.private_key_pem.write_to_path(paths["other"])
    Path(paths["both"]).write_bytes(one.private_key_pem.bytes() + one.cert_chain_pems[0].bytes())
    key = serialization.load_pem_private_key(one.private_key_pem.bytes(), None)
    paths["encrypted"] = str(directory / "encrypted.pem")
    Path(paths["encrypted"]).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    paths["dir"] = str(directory)
    return paths


def test_good_files_pass(files: dict[str, str]) -> None:
    check_tls(files["cert"], files["key"])
    check_tls(files["both"], None)
    check_tls(files["cert"], files["encrypted"], password="secret")
    check_tls(None, None)


def _message(certfile: str | None, keyfile: str | None, password: str | None = None) -> str:
    with pytest.raises(StartupError) as info:
        check_tls(certfile, keyfile, password)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(files: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    assert _message(missing, None) == f"--certfile {missing}: no such file"
    assert _message(files["cert"], missing) == f"--keyfile {missing}: no such file"


def test_directory(files: dict[str, str]) -> None:
    assert _message(files["dir"], None) == f"--certfile {files['dir']}: is a directory, not a file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable(files: dict[str, str], tmp_path: Path) -> None:
    locked = tmp_path / "locked.pem"
    locked.write_bytes(Path(files["cert"]).read_bytes())
    locked.chmod(0)
    assert _message(str(locked), files["key"]).endswith("cannot be read (permission denied)")


def test_key_given_as_certificate(files: dict[str, str]) -> None:
    message = _message(files["key"], files["key"])
    assert message.startswith(f"--certfile {files['key']}: is a private key, not a certificate")


def test_certificate_given_as_key(files: dict[str, str]) -> None:
    message = _message(files["cert"], files["cert"])
    assert message == f"--keyfile {files['cert']}: is a certificate, not a private key"


def test_no_key_anywhere(files: dict[str, str]) -> None:
    message = _message(files["cert"], None)
    assert (
        message == f"--certfile {files['cert']}: no private key in it; give the key with --keyfile"
    )


def test_key_not_matching(files: dict[str, str]) -> None:
    message = _message(files["cert"], files["other"])
    assert message.startswith(f"--keyfile {files['other']}: does not match --certfile")


def test_encrypted_key_without_password(files: dict[str, str]) -> None:
    message = _message(files["cert"], files["encrypted"])
    assert message == (
        f"--keyfile {files['encrypted']}: the private key is encrypted and no password is given"
    )


def test_wrong_password(files: dict[str, str]) -> None:
    message = _message(files["cert"], files["encrypted"], password="wrong")
    assert message.startswith(f"--keyfile {files['encrypted']}:")


def test_not_pem(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"hello")
    assert _message(str(junk), None) == f"--certfile {junk}: no PEM certificate in it"


def test_keyfile_without_certfile(files: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=r"--keyfile .*: needs --certfile"):
        check_tls(None, files["key"])
