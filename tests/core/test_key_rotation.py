"""Rotating SECRET_KEY and the keyed-hash keys (issue 21, part 2): everything checked with a
keyed hash or a signature survives the rotation while the old key is still listed, and MFA
recovery codes, enrollment codes and invitations survive a SECRET_KEY rotation for good once
HASH_KEYS holds their key."""

from __future__ import annotations

import pyotp
import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import override_settings
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tenants.utils import tenant_context

from accounts.models import Invitation, RecoveryCode, Role, User
from accounts.services import invitations as invitation_services
from accounts.services import mfa as mfa_services
from accounts.services.passwords import password_reset_confirm
from core import crypto
from core.cursors import cursor_sign, cursor_unsign
from core.errors import ApplicationError
from patients import enrollment as enrollment_services
from tenants.models import Clinic

pytestmark = pytest.mark.django_db

OLD = "old-secret-key-" + "o" * 50
NEW = "new-secret-key-" + "n" * 50
HASH_KEY = "hash-key-" + "h" * 50
NEWER_HASH_KEY = "newer-hash-key-" + "k" * 50


def recovery_codes_for(user: User) -> list[str]:
    secret, _ = mfa_services.mfa_secret_issue(user=user)
    return mfa_services.mfa_confirm(user=user, otp=pyotp.TOTP(secret).now())


def invitation_token(clinic: Clinic, inviter: User) -> str:
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        invitation = invitation_services.invitation_create(
            clinic=clinic, email="newdoc@example.com", role=Role.CLINICIAN, invited_by=inviter
        )
    # The emailed token is not stored; make a known one with the key of the moment.
    token = "invitation-token-for-the-test"
    Invitation.objects.filter(pk=invitation.pk).update(
        token_hash=crypto.keyed_hash(token, purpose="invitation")
    )
    return token


def enrollment_code(clinic: Clinic, staff: User) -> str:
    with tenant_context(clinic):
        _, code = enrollment_services.enrollment_issue(
            clinic=clinic, patient=None, created_by=staff, created_by_role=Role.CLINICIAN
        )
    return code


def enrollment_opens(clinic: Clinic, code: str) -> bool:
    with tenant_context(clinic):
        try:
            enrollment_services._enrollment_open(code=code)
        except ApplicationError:
            return False
    return True


def invitation_opens(clinic: Clinic, token: str) -> bool:
    try:
        invitation_services.invitation_open(clinic=clinic, token=token)
    except ApplicationError:
        return False
    return True


def test_secret_key_rotation_with_a_fallback_keeps_every_code_link_and_cursor(
    dr_bob: User, carol: User, clinic_a: Clinic
) -> None:
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[], HASH_KEYS=[]):
        codes = recovery_codes_for(dr_bob)
        code = enrollment_code(clinic_a, dr_bob)
        token = invitation_token(clinic_a, carol)
        reset = default_token_generator.make_token(carol)
        cursor = cursor_sign({"v": 7}, salt="sync.pull")
        sealed_cursor = cursor_sign({"v": 8}, salt="sync.pull", encrypt=True)

    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD], HASH_KEYS=[]):
        assert mfa_services.mfa_verify(user=dr_bob, otp=codes[0])
        assert enrollment_opens(clinic_a, code)
        assert invitation_opens(clinic_a, token)
        assert cursor_unsign(cursor, salt="sync.pull") == {"v": 7}
        assert cursor_unsign(sealed_cursor, salt="sync.pull", encrypt=True) == {"v": 8}
        uid = urlsafe_base64_encode(force_bytes(carol.pk))
        assert (
            password_reset_confirm(uid=uid, token=reset, password="A new long passphrase 42").pk == carol.pk
        )

    # Without the fallback, what was made under the old key is refused (not silently accepted).
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[], HASH_KEYS=[]):
        assert not mfa_services.mfa_verify(user=dr_bob, otp=codes[1])
        assert not enrollment_opens(clinic_a, code)
        assert not invitation_opens(clinic_a, token)
        with pytest.raises(ApplicationError) as refused:
            cursor_unsign(cursor, salt="sync.pull")
        assert refused.value.code == "invalid_cursor"


def test_hash_keys_set_to_the_current_secret_key_keep_every_hash_and_survive_its_rotation(
    dr_bob: User, carol: User, clinic_a: Clinic
) -> None:
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[], HASH_KEYS=[]):
        codes = recovery_codes_for(dr_bob)
        code = enrollment_code(clinic_a, dr_bob)
        token = invitation_token(clinic_a, carol)
        legacy_hash = crypto.keyed_hash("x", purpose="recovery")

    # Step 1 of the plan: HASH_KEYS = the current SECRET_KEY gives the very same hashes.
    with override_settings(SECRET_KEY=OLD, HASH_KEYS=[OLD]):
        assert crypto.keyed_hash("x", purpose="recovery") == legacy_hash
    # Step 2: SECRET_KEY rotates, with no fallback at all: the hashed codes do not care.
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[], HASH_KEYS=[OLD]):
        assert mfa_services.mfa_verify(user=dr_bob, otp=codes[0])
        assert enrollment_opens(clinic_a, code)
        assert invitation_opens(clinic_a, token)


def test_a_hash_key_rotates_by_prepending_and_new_codes_use_the_newest(
    dr_bob: User, carol: User, clinic_a: Clinic
) -> None:
    with override_settings(SECRET_KEY=NEW, HASH_KEYS=[HASH_KEY]):
        codes = recovery_codes_for(dr_bob)
        old_code = enrollment_code(clinic_a, dr_bob)
    with override_settings(SECRET_KEY=NEW, HASH_KEYS=[NEWER_HASH_KEY, HASH_KEY]):
        assert mfa_services.mfa_verify(user=dr_bob, otp=codes[0])
        assert enrollment_opens(clinic_a, old_code)
        new_codes = recovery_codes_for(carol)
        stored = set(RecoveryCode.objects.filter(user=carol).values_list("code_hash", flat=True))
        assert crypto.keyed_hashes(new_codes[0], purpose="recovery")[0] in stored
    with override_settings(SECRET_KEY=NEW, HASH_KEYS=[NEWER_HASH_KEY]):  # the old hash key dropped
        assert not mfa_services.mfa_verify(user=dr_bob, otp=codes[1])
        assert mfa_services.mfa_verify(user=carol, otp=new_codes[0])


def test_keyed_hashes_list_every_key_once_newest_first() -> None:
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD], HASH_KEYS=[HASH_KEY, NEW]):
        assert crypto.hash_keys() == [HASH_KEY, NEW, OLD]
        hashes = crypto.keyed_hashes("abc", purpose="enrollment")
        assert hashes[0] == crypto.keyed_hash("abc", purpose="enrollment") and len(set(hashes)) == 3
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[], HASH_KEYS=[]):
        assert crypto.hash_keys() == [NEW]
