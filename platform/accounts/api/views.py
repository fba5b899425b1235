"""Identity endpoints on clinic hosts (`/api/v1/auth/…`, `/api/v1/admin/invitations/…`) and
password reset on every host. Patient enrollment lives with the patient record (patients/)."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib.auth import logout
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services, sessions
from accounts.api.base import ClinicAdminApi, ClinicApi, ClinicianApi
from accounts.authentication import (
    ClinicSessionAuthentication,
    request_amr,
    request_clinic,
    request_user,
)
from accounts.models import STAFF_ROLE_CHOICES, Role
from core.api.base import BaseApi, StrictSerializer
from core.api.throttling import ScopedRateThrottle
from core.errors import ApplicationError, ErrorCode
from core.qr import qr_png


class _PublicAuthApi(BaseApi):
    """Unauthenticated endpoints of a clinic host (sign-in, invitations, enrollment)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    def clinic_or_404(self, request: Request) -> Any:
        clinic = request_clinic(request)
        if clinic is None:
            raise ApplicationError(
                code=ErrorCode.NOT_FOUND, status_code=404, detail="Sign in on your clinic's address."
            )
        return clinic


class TokenPairSerializer(serializers.Serializer[Any]):
    access = serializers.CharField()
    refresh = serializers.CharField()


class CredentialsSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    otp = serializers.CharField(max_length=32, required=False, allow_blank=True)


class TokenObtainApi(_PublicAuthApi):
    atomic_requests = False  # failed attempts must persist (lockout)
    InputSerializer = CredentialsSerializer

    @extend_schema(request=CredentialsSerializer, responses={200: TokenPairSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        clinic = self.clinic_or_404(request)
        data = self.validated(self.InputSerializer, request.data)
        sign_in = services.credentials_check(
            request=request._request,
            clinic=clinic,
            email=data["email"],
            password=data["password"],
            otp=data.get("otp") or None,
        )
        tokens = services.sign_in_tokens(request=request._request, clinic=clinic, sign_in=sign_in)
        return Response(TokenPairSerializer(tokens).data)


class TokenRefreshApi(_PublicAuthApi):
    atomic_requests = False  # a reused token's family revocation must commit with the 401

    class InputSerializer(StrictSerializer):
        refresh = serializers.CharField(max_length=2048)

    @extend_schema(request=InputSerializer, responses={200: TokenPairSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        clinic = self.clinic_or_404(request)
        data = self.validated(self.InputSerializer, request.data)
        return Response(TokenPairSerializer(services.token_refresh(raw=data["refresh"], clinic=clinic)).data)


class LogoutApi(_PublicAuthApi):
    """Ends the caller's sign-in: blacklists the given refresh token and/or ends the session.
    Its own throttle scope: the sign-in budget being spent never keeps anyone signed in."""

    throttle_scope = "logout"

    authentication_classes = [ClinicSessionAuthentication]

    class InputSerializer(StrictSerializer):
        refresh = serializers.CharField(max_length=2048, required=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        clinic = self.clinic_or_404(request)
        data = self.validated(self.InputSerializer, request.data)
        if data.get("refresh"):
            services.token_revoke(raw=data["refresh"], clinic=clinic)
        elif not (request.user and request.user.is_authenticated):
            raise ApplicationError(
                code=ErrorCode.VALIDATION_ERROR, field="refresh", detail="Give the refresh token."
            )
        if request.user and request.user.is_authenticated:
            logout(request._request)
        response = Response(status=status.HTTP_204_NO_CONTENT)
        # The browser forgets what this clinic's origin kept (IndexedDB, caches, service
        # worker): the next person on this device finds nothing of the last one (DESIGN.md §11).
        response["Clear-Site-Data"] = '"cache", "storage"'
        return response


class CsrfApi(_PublicAuthApi):
    throttle_classes: list[Any] = []

    class OutputSerializer(serializers.Serializer[Any]):
        csrf_token = serializers.CharField()

    @extend_schema(responses={200: OutputSerializer}, auth=[])
    def get(self, request: Request) -> Response:
        """Sets the CSRF cookie; browsers send the token back in `X-CSRFToken`."""
        return Response({"csrf_token": get_token(request._request)})


class SessionLoginApi(_PublicAuthApi):
    atomic_requests = False  # failed attempts must persist (lockout)
    InputSerializer = CredentialsSerializer

    @extend_schema(request=CredentialsSerializer, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        clinic = self.clinic_or_404(request)
        # Login CSRF: the sign-in form must come from our own page.
        ClinicSessionAuthentication().enforce_csrf(request)
        data = self.validated(self.InputSerializer, request.data)
        sign_in = services.credentials_check(
            request=request._request,
            clinic=clinic,
            email=data["email"],
            password=data["password"],
            otp=data.get("otp") or None,
        )
        sessions.session_sign_in(request=request._request, user=sign_in.user, clinic=clinic, amr=sign_in.amr)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeUserSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


class MeClinicSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    timezone = serializers.CharField()


class MeApi(ClinicApi):
    allow_without_mfa = True

    class OutputSerializer(serializers.Serializer[Any]):
        user = MeUserSerializer()
        clinic = MeClinicSerializer()
        role = serializers.ChoiceField(choices=Role.choices)
        auth_method = serializers.ChoiceField(choices=["jwt", "session"])
        mfa_enabled = serializers.BooleanField()
        mfa_setup_required = serializers.BooleanField()
        email_verified = serializers.BooleanField(
            help_text="Whether the address is confirmed: until it is, the account cannot sign in again"
        )

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        clinic, membership = self.clinic(request), self.membership(request)
        body = {
            "user": request_user(request),
            "clinic": clinic,
            "role": membership.role,
            "auth_method": "session" if request.auth is None else "jwt",
            # Read with the membership that authenticated this request (no second query).
            "mfa_enabled": membership.mfa_enabled,
            "mfa_setup_required": services.mfa_setup_pending(membership=membership, clinic=clinic),
            "email_verified": request_user(request).email_verified_at is not None,
        }
        return Response(self.OutputSerializer(body).data)


class PasswordChangeApi(ClinicApi):
    allow_without_mfa = True
    atomic_requests = False  # wrong current passwords must count toward the lockout

    class InputSerializer(StrictSerializer):
        current_password = serializers.CharField(max_length=128, trim_whitespace=False)
        new_password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        """Changes the password, revokes every token and session, returns a new pair for this
        client (a browser session stays signed in after its own change)."""
        data = self.validated(self.InputSerializer, request.data)
        services.password_change(request=request._request, user=request_user(request), **data)
        if request.auth is None:
            sessions.session_password_changed(request=request._request, user=request_user(request))
        clinic, membership = self.clinic(request), self.membership(request)
        tokens = services.tokens_issue(
            user=request_user(request), clinic=clinic, role=membership.role, amr=request_amr(request)
        )
        return Response(tokens)


class PasswordResetRequestApi(_PublicAuthApi):
    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(request=InputSerializer, responses={202: None}, auth=[])
    def post(self, request: Request) -> Response:
        """Always 202: the answer does not reveal whether the email is registered."""
        data = self.validated(self.InputSerializer, request.data)
        services.password_reset_request(email=data["email"], clinic=request_clinic(request))
        return Response(status=status.HTTP_202_ACCEPTED)


class EmailVerificationResendApi(_PublicAuthApi):
    """Throttled per client (scope `verify_resend`, apart from the sign-in budget, which resend
    clicks must not spend); the per-recipient cap of the verification emails limits what one
    address receives."""

    throttle_scope = "verify_resend"

    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(request=InputSerializer, responses={202: None}, auth=[])
    def post(self, request: Request) -> Response:
        """Always 202: the answer does not reveal whether the address has an account here, or
        whether it is confirmed."""
        clinic = self.clinic_or_404(request)
        data = self.validated(self.InputSerializer, request.data)
        services.email_verification_resend_request(email=data["email"], clinic=clinic)
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(_PublicAuthApi):
    class InputSerializer(StrictSerializer):
        uid = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=128)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        services.password_reset_confirm(**self.validated(self.InputSerializer, request.data))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MfaSetupApi(ClinicianApi):
    allow_without_mfa = True
    atomic_requests = False  # wrong passwords must count toward the lockout

    class InputSerializer(StrictSerializer):
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer[Any]):
        secret = serializers.CharField()
        otpauth_uri = serializers.CharField()
        qr_png = serializers.CharField(help_text="data: URI of a PNG QR code of otpauth_uri")

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        """Starts TOTP enrolment; the current password is required (a stolen token or session
        must not bind its own authenticator)."""
        data = self.validated(self.InputSerializer, request.data)
        secret, uri = services.mfa_setup(
            request=request._request, user=request_user(request), password=data["password"]
        )
        qr = "data:image/png;base64," + base64.b64encode(qr_png(uri)).decode()
        return Response({"secret": secret, "otpauth_uri": uri, "qr_png": qr})


class MfaConfirmApi(ClinicianApi):
    allow_without_mfa = True

    class InputSerializer(StrictSerializer):
        otp = serializers.CharField(max_length=16)

    class OutputSerializer(serializers.Serializer[Any]):
        recovery_codes = serializers.ListField(child=serializers.CharField())
        access = serializers.CharField(help_text="A new pair for this client: earlier ones are revoked")
        refresh = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        """Confirms TOTP. Every earlier token and session of the user is revoked; this client
        gets a new pair (and a browser session stays signed in) with `amr` `pwd+otp`."""
        codes = services.mfa_confirm(
            user=request_user(request), otp=self.validated(self.InputSerializer, request.data)["otp"]
        )
        clinic, membership = self.clinic(request), self.membership(request)
        tokens = services.tokens_issue(
            user=request_user(request), clinic=clinic, role=membership.role, amr=services.AMR_MFA
        )
        if request.auth is None:
            sessions.session_mfa_confirmed(request=request._request)
        return Response({"recovery_codes": codes, **tokens})


class InvitationOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class InvitationListCreateApi(ClinicAdminApi):
    class InputSerializer(StrictSerializer):
        email = serializers.EmailField(max_length=254)
        role = serializers.ChoiceField(choices=STAFF_ROLE_CHOICES)

    @extend_schema(responses={200: InvitationOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        invitations = selectors.invitations_of(clinic=self.clinic(request))
        return Response(InvitationOutputSerializer(invitations, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: InvitationOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.validated(self.InputSerializer, request.data)
        invitation = services.invitation_create(
            clinic=self.clinic(request), invited_by=request_user(request), **data
        )
        return Response(InvitationOutputSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationRevokeApi(ClinicAdminApi):
    @extend_schema(request=None, responses={200: InvitationOutputSerializer})
    def post(self, request: Request, invitation_id: str) -> Response:
        invitation = selectors.invitation_get(clinic=self.clinic(request), invitation_id=invitation_id)
        return Response(InvitationOutputSerializer(services.invitation_revoke(invitation=invitation)).data)


class SignUpOutputSerializer(TokenPairSerializer):
    user_id = serializers.UUIDField()
    role = serializers.ChoiceField(choices=Role.choices)


class _JoinClinicApi(_PublicAuthApi):
    """Invitation accept and enrollment: a new account, or an existing one proven by password
    (+ TOTP), joins the clinic and gets tokens."""

    atomic_requests = False  # password checks of existing accounts must count toward the lockout

    @staticmethod
    def joined(user: Any, membership: Any, clinic: Any, amr: str) -> Response:
        tokens = services.tokens_issue(user=user, clinic=clinic, role=membership.role, amr=amr)
        body = {**tokens, "user_id": user.pk, "role": membership.role}
        return Response(body, status=status.HTTP_201_CREATED)


class InvitationAcceptApi(_JoinClinicApi):
    class InputSerializer(StrictSerializer):
        token = serializers.CharField(max_length=128)
        full_name = serializers.CharField(max_length=200)
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        otp = serializers.CharField(max_length=32, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={201: SignUpOutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        clinic = self.clinic_or_404(request)
        data = self.validated(self.InputSerializer, request.data)
        data["otp"] = data.get("otp") or None
        joined = services.invitation_accept(clinic=clinic, request=request._request, **data)
        return self.joined(joined.user, joined.membership, clinic, joined.amr)
