"""Forms of the accounts pages: sign-in (throttled), sign-up, key names."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from accounts import throttle
from accounts.audit import RequestContext, audit_record, client_ip
from accounts.models import ApiKey, AuditEvent, User


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
