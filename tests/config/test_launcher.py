"""`make run` gives working Web Push in local runs: a VAPID key pair is made once, kept
git-ignored under .data/, and handed to web and worker; configured keys are left alone."""

from __future__ import annotations

import base64
import stat
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from config.launcher import ROOT, VAPID_NAMES, vapid_env


def _point(public: str) -> ec.EllipticCurvePublicKey:
    raw = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def test_a_local_run_gets_a_vapid_pair_once_and_keeps_it(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    where = vapid_env(env, data_dir=tmp_path / ".data", dotenv=tmp_path / ".env")
    kept = tmp_path / ".data" / "vapid.env"
    assert where == str(kept)
    private, public = env[VAPID_NAMES[0]], env[VAPID_NAMES[1]]
    # The public key is the browser's applicationServerKey and belongs to the private key.
    key = int.from_bytes(base64.urlsafe_b64decode(private + "=" * (-len(private) % 4)), "big")
    derived = ec.derive_private_key(key, ec.SECP256R1()).public_key().public_numbers()
    assert derived == _point(public).public_numbers()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # a secret: owner only

    again: dict[str, str] = {}
    vapid_env(again, data_dir=tmp_path / ".data", dotenv=tmp_path / ".env")
    assert again == env  # the same pair next time: browsers' subscriptions stay valid


def test_configured_keys_are_left_alone(tmp_path: Path) -> None:
    env = {VAPID_NAMES[0]: "configured-private", VAPID_NAMES[1]: "configured-public"}
    assert vapid_env(env, data_dir=tmp_path, dotenv=tmp_path / ".env") == "configured"
    assert env == {VAPID_NAMES[0]: "configured-private", VAPID_NAMES[1]: "configured-public"}
    assert not (tmp_path / "vapid.env").exists()

    (tmp_path / ".env").write_text(f"# keys\n{VAPID_NAMES[0]}=from-dotenv\n{VAPID_NAMES[1]}=pub\n")
    empty: dict[str, str] = {}
    assert vapid_env(empty, data_dir=tmp_path, dotenv=tmp_path / ".env") == "configured"
    assert empty == {}  # the settings read .env themselves
    assert not (tmp_path / "vapid.env").exists()


def test_the_generated_keys_are_never_committed() -> None:
    answer = subprocess.run(  # noqa: S603
        ["git", "check-ignore", "-q", ".data/vapid.env"],  # noqa: S607
        cwd=ROOT,
        check=False,
    )
    assert answer.returncode == 0, ".data/vapid.env must be git-ignored"
