"""Forms of the accounts pages: sign-in (throttled), sign-up, key names, second factors."""

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm, UserCreationForm
from django.core.exceptions import ValidationError

from accounts import factor_services, passkeys, signin, throttle
from accounts import second_factor as rules
from accounts.audit import RequestContext, audit_record, client_ip
from accounts.models import ApiKey, AuditEvent, Passkey, User


class LoginThrottleMixin:
    """Refuses sign-in attempts while a username or address is throttled (accounts.throttle).

    Mix into any AuthenticationForm: the site's login form below, and the
    admin's (ThrottledAdminAuthenticationForm), so that no login page is a
    way around the limit. The attempt is counted before the password is
    checked, and taken back when the password is right.
    """

    THROTTLED_MESSAGE = "Too many failed attempts. Try again %(when)s."
    retry_after = 0

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        password = self.cleaned_data.get("password")
        if not username or not password:
            return self.cleaned_data
        ip = client_ip(self.request)
        browser = throttle.known_browser(self.request.COOKIES.get(throttle.KNOWN_BROWSER_COOKIE), username)
        attempt = throttle.attempt_begin(username=username, ip=ip, browser=browser)
        if attempt.refused_for:
            self._refuse(attempt, wait=attempt.refused_for)
        try:
            super().clean()
        except ValidationError:
            wait = attempt.failed()
            self._audit(AuditEvent.Kind.LOGIN_FAILED, username=username, detail={"next_attempt_delay": wait})
            if wait:
                self._refuse(attempt, wait=wait, audit=False)
            raise
        attempt.succeeded()
        return self.cleaned_data

    def _refuse(self, attempt: throttle.Attempt, *, wait: int, audit: bool = True) -> None:
        self.retry_after = wait
        if audit and throttle.first_refusal(attempt):
            self._audit(AuditEvent.Kind.LOGIN_THROTTLED, username=attempt.username, detail={"retry_after": wait})
        raise ValidationError(self.THROTTLED_MESSAGE, code="throttled", params={"when": throttle.describe_wait(wait)})

    def _audit(self, kind: str, *, username: str, detail: dict) -> None:
        # The subject is the account when the username exists. What was typed
        # is never stored: a username field sometimes receives a password.
        subject = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        audit_record(
            kind=kind,
            context=RequestContext.from_request(self.request),
            actor_kind=AuditEvent.Actor.USER,
            subject=subject,
            detail={**detail, "known_username": subject is not None},
        )


class ThrottledAuthenticationForm(LoginThrottleMixin, AuthenticationForm):
    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].widget.attrs.setdefault("autocomplete", "username")
        self.fields["password"].widget.attrs.setdefault("autocomplete", "current-password")


class ThrottledAdminAuthenticationForm(LoginThrottleMixin, AdminAuthenticationForm):
    """For `admin.site.login_form`: the admin login counts toward the same limits."""


class SignUpForm(UserCreationForm):
    """Username, email (for password reset) and a password checked by AUTH_PASSWORD_VALIDATORS."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["email"].help_text = "Used only to reset your password."
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["email"].widget.attrs["autocomplete"] = "email"


class KeyNameForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=ApiKey._meta.get_field("name").max_length,
        help_text="Something to recognise it by, e.g. “laptop” or “CI server”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError("Enter a name.")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name):
            raise ValidationError("The name contains control characters.")
        return name


# --- Second factors ---------------------------------------------------------------------------


class SecondFactorForm(forms.Form):
    """One second-factor check: a code (authenticator or recovery, told apart by shape) or a passkey.

    Codes are counted like passwords before they are checked
    (accounts.throttle.factor_attempt_begin); every failure is audited. A
    passkey answer is checked against the challenge this session was given
    for `purpose` "verify" and must be one of `user`'s passkeys.
    `method` says what passed: "totp", "recovery_code" or "passkey".
    """

    THROTTLED_MESSAGE = LoginThrottleMixin.THROTTLED_MESSAGE

    code = forms.CharField(
        label="Code",
        required=False,
        max_length=64,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
    )
    credential = forms.CharField(required=False, widget=forms.HiddenInput, max_length=passkeys.MAX_CREDENTIAL_JSON)

    def __init__(self, *args, request, user: User, purpose: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.request, self.user, self.purpose = request, user, purpose
        self.method: str | None = None
        self.retry_after = 0
        factors = factor_services.factors_of(user)
        self.fields["code"].label = (
            "Code from your authenticator app, or a recovery code" if factors.totp else "Recovery code"
        )
        self.fields["code"].help_text = (
            "Six digits, or one of the recovery codes you saved (xxxx-xxxx-xxxx-xxxx)."
            if factors.totp
            else "One of the recovery codes you saved (xxxx-xxxx-xxxx-xxxx)."
        )

    def clean(self):
        credential, code = self.cleaned_data.get("credential"), (self.cleaned_data.get("code") or "").strip()
        if credential:
            self._check_passkey(credential)
        elif code:
            self._check_code(code)
        else:
            raise ValidationError("Enter a code, or use your passkey.", code="required")
        return self.cleaned_data

    def _check_passkey(self, credential: str) -> None:
        rp = rules.relying_party(settings.OAUTH_ISSUER)
        challenge = signin.challenge_take(self.request, purpose="verify", user_id=self.user.pk)
        try:
            if challenge is None:
                raise passkeys.PasskeyError("no challenge")
            claimed = passkeys.assertion_read(credential)
            passkey = Passkey.objects.filter(user=self.user, credential_id=claimed.credential_id).first()
            if passkey is None:
                raise passkeys.PasskeyError("not this account's passkey")
            count = passkeys.assertion_verify(
                rp,
                credential_json=credential,
                challenge=challenge.challenge,
                public_key=bytes(passkey.public_key),
                sign_count=passkey.sign_count,
                user_verification=False,
            )
            if not factor_services.passkey_use(passkey=passkey, new_sign_count=count):
                raise passkeys.PasskeyError("sign count did not grow")
        except passkeys.PasskeyError:
            self._audit_failure("passkey")
            raise ValidationError(
                "That passkey could not be verified. Try again, or use a code.", code="passkey"
            ) from None
        self.method = "passkey"

    def _check_code(self, code: str) -> None:
        kind = rules.code_kind(code)
        if kind is None:
            raise ValidationError(
                "Enter the 6-digit code from your authenticator app, or a recovery code.", code="format"
            )
        if kind == "totp" and not factor_services.factors_of(self.user).totp:
            raise ValidationError("This account has no authenticator app: enter a recovery code.", code="format")
        ip = client_ip(self.request)
        attempt = throttle.factor_attempt_begin(user_id=self.user.pk, username=self.user.get_username(), ip=ip)
        if attempt.refused_for:
            self._refuse(attempt, wait=attempt.refused_for)
        context = RequestContext.from_request(self.request)
        replayed = False
        if kind == "totp":
            check = factor_services.totp_use(user=self.user, code=code)
            passed, replayed = check.accepted, check.replayed
        else:
            passed = factor_services.recovery_code_use(user=self.user, code=code, context=context, purpose=self.purpose)
        if passed:
            attempt.succeeded()
            self.method = "totp" if kind == "totp" else "recovery_code"
            return
        wait = attempt.failed()
        self._audit_failure(kind, replayed=replayed, next_attempt_delay=wait)
        if wait:
            self._refuse(attempt, wait=wait, audit=False)
        if replayed:
            raise ValidationError("That code was already used. Wait for the next one.", code="replayed")
        raise ValidationError("That code is not right.", code="wrong")

    def _refuse(self, attempt: throttle.Attempt, *, wait: int, audit: bool = True) -> None:
        self.retry_after = wait
        if audit and throttle.first_refusal(attempt):
            audit_record(
                kind=AuditEvent.Kind.SECOND_FACTOR_THROTTLED,
                context=RequestContext.from_request(self.request),
                subject=self.user,
                detail={"purpose": self.purpose, "retry_after": wait},
            )
        raise ValidationError(self.THROTTLED_MESSAGE, code="throttled", params={"when": throttle.describe_wait(wait)})

    def _audit_failure(self, method: str, **detail) -> None:
        audit_record(
            kind=AuditEvent.Kind.SECOND_FACTOR_FAILED,
            context=RequestContext.from_request(self.request),
            subject=self.user,
            detail={"method": "recovery_code" if method == "recovery" else method, "purpose": self.purpose, **detail},
        )


class TotpSetupForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=16,
        help_text="Six digits, as the app shows them now.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self) -> str:
        code = rules.normalise_totp_code(self.cleaned_data["code"])
        if code is None:
            raise ValidationError("Enter the six digits the app shows.")
        return code


class PasskeyAddForm(KeyNameForm):
    """A name for the new passkey, and the browser's answer (filled in by static/js/passkeys.js)."""

    credential = forms.CharField(required=False, widget=forms.HiddenInput, max_length=passkeys.MAX_CREDENTIAL_JSON)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].help_text = "Something to recognise it by, e.g. “laptop” or “phone”."
        self.fields["name"].max_length = 100

    def clean_credential(self) -> str:
        if not self.cleaned_data.get("credential"):
            raise ValidationError("Your browser did not create a passkey. Passkeys need JavaScript.")
        return self.cleaned_data["credential"]


class SecondFactorSetPasswordForm(SetPasswordForm):
    """A password reset of an account with a second factor: the new password needs the factor too."""

    code = SecondFactorForm.base_fields["code"]
    credential = SecondFactorForm.base_fields["credential"]

    def __init__(self, user, *args, request, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.factor = SecondFactorForm(self.data or None, request=request, user=user, purpose="password_reset")
        self.fields["code"] = self.factor.fields["code"]
        self.fields["credential"] = self.factor.fields["credential"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:  # a mistyped password does not use up a code
            return cleaned
        if not self.factor.is_valid():
            for field, errors in self.factor.errors.as_data().items():
                for error in errors:
                    self.add_error(None if field == "__all__" else field, error)
        return cleaned
