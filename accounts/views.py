"""Self-service pages: sign-in, sign-up, passwords, and the user's API keys.

The full key appears in exactly one response: the one answering the POST
that created it (never cached, never in a URL, never in the session).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import second_factor as rules
from accounts import signin, throttle
from accounts.activity import recent_events
from accounts.audit import RequestContext, client_ip
from accounts.clients import ClientName
from accounts.forms import KeyNameForm, SecondFactorSetPasswordForm, SignUpForm, ThrottledAuthenticationForm
from accounts.key_forms import KeyCreateForm, KeyLimitsForm
from accounts.models import ApiKey
from accounts.services import key_create, key_limits_change, key_rename, key_revoke

# --- Where to go after signing in ------------------------------------------------


def safe_next(request: HttpRequest) -> str:
    """The `next` parameter if it is a path on this site, else "".

    Only paths: no scheme, no host (not even ours), so `//evil.com`,
    `/\\evil.com`, `https://evil.com` and `javascript:` are all refused.
    Pages that would loop back to sign-in or sign-up are refused too.
    """
    target = request.POST.get("next", request.GET.get("next", ""))
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(
        target, allowed_hosts=set(), require_https=request.is_secure()
    ):
        return ""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if path in (reverse("accounts:login"), reverse("accounts:signup")):
        return ""
    return target


class LoginView(auth_views.LoginView):
    """Django's sign-in view with the throttled form and path-only `next`."""

    authentication_form = ThrottledAuthenticationForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_redirect_url(self, request=None) -> str:
        return safe_next(request or self.request)

    def form_valid(self, form):
        """The right password. An account with a second factor is not signed in yet: its second step is next."""
        user = form.get_user()
        if signin.has_second_factor(user):
            signin.pending_begin(self.request, user=user, next_url=self.get_redirect_url())
            return redirect("accounts:login_verify")
        if signin.must_have_second_factor(user):
            # TWO_FACTOR_REQUIRED: set one up first, then go on to `next`.
            signin.pending_begin(self.request, user=user, next_url=self.get_redirect_url(), enrol=True)
            return redirect("accounts:security")
        signin.signin_complete(self.request, user=user, method=None)
        response = HttpResponseRedirect(self.get_success_url())
        # Its owner is never locked out of this browser by other people's failures (accounts.throttle).
        throttle.remember_browser(response, username=user.get_username())
        return response

    def get_context_data(self, **kwargs):
        rp = rules.relying_party(settings.OAUTH_ISSUER)
        return super().get_context_data(
            signup_enabled=settings.SIGNUP_ENABLED, passkeys_possible=rp.passkeys_possible, **kwargs
        )

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password1", "password2")
@csrf_protect
@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        return render(request, "accounts/signup_closed.html", status=404)
    if request.user.is_authenticated:
        return redirect(safe_next(request) or settings.LOGIN_REDIRECT_URL)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        messages.success(request, f"Welcome, {user.get_username()}. Your account is ready.")
        if signin.must_have_second_factor(user):  # TWO_FACTOR_REQUIRED=all: set one up, then go on
            user.backend = signin.MODEL_BACKEND
            signin.pending_begin(request, user=user, next_url=safe_next(request), enrol=True)
            return redirect("accounts:security")
        auth_login(request, user, backend=signin.MODEL_BACKEND)
        return HttpResponseRedirect(safe_next(request) or resolve_url(settings.LOGIN_REDIRECT_URL))
    return render(request, "accounts/signup.html", {"form": form, "next": safe_next(request)})


# Django's password views, with our templates and namespaced URLs. A new password asks for the
# second factor again when the last check is old (accounts.signin.recent_check_required).
password_change = signin.recent_check_required()(
    auth_views.PasswordChangeView.as_view(
        template_name="accounts/password_change.html", success_url=reverse_lazy("accounts:password_change_done")
    )
)
password_change_done = auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_change_done.html")


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        email = form.cleaned_data["email"]
        # The owner's own browser (one they signed in from) is never held back by other people's requests.
        cookie = self.request.COOKIES.get(throttle.KNOWN_BROWSER_COOKIE)
        owner = any(throttle.known_browser(cookie, user.get_username()) for user in form.get_users(email))
        wait = 0 if owner else throttle.reset_request_wait(ip=client_ip(self.request))
        if wait:
            form.add_error(None, f"Too many password reset requests. Try again {throttle.describe_wait(wait)}.")
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = str(wait)
            return response
        if not owner and not throttle.reset_mail_allowed(email=email):
            # The same answer as always, and no more mail: this hour's earlier links still work.
            return HttpResponseRedirect(self.get_success_url())
        # Links in the email use the configured public URL, never the Host header.
        self.extra_email_context = {"base_url": settings.OAUTH_ISSUER}
        return super().form_valid(form)


password_reset = PasswordResetView.as_view()
password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The link alone never signs anyone in; an account with a second factor needs it (or a recovery code) too."""

    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def _needs_second_factor(self) -> bool:
        return getattr(self, "user", None) is not None and signin.has_second_factor(self.user)

    def get_form_class(self):
        return SecondFactorSetPasswordForm if self._needs_second_factor() else super().get_form_class()

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        if self._needs_second_factor():
            kwargs["request"] = self.request
        return kwargs

    def get_context_data(self, **kwargs):
        rp = rules.relying_party(settings.OAUTH_ISSUER)
        return super().get_context_data(passkeys_possible=rp.passkeys_possible, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        # Whoever holds the mailbox is the owner: their failed sign-ins are
        # forgotten, and this browser is theirs (accounts.throttle).
        username = form.user.get_username()
        throttle.reset_username(username, ip=client_ip(self.request))
        throttle.remember_browser(response, username=username)
        return response


password_reset_confirm = PasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/password_reset_complete.html"
)


# --- API keys ------------------------------------------------------------------


def _own_key(request: HttpRequest, key_id: int, *, active: bool = False) -> ApiKey:
    """One of the signed-in user's keys; anyone else's id is a 404, like a missing one."""
    keys = ApiKey.objects.filter(user=request.user)
    return get_object_or_404(keys.active() if active else keys, pk=key_id)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("accounts:keys")


def _keys_page(request: HttpRequest, form: KeyCreateForm, *, status: int = 200) -> HttpResponse:
    keys = list(ApiKey.objects.filter(user=request.user).order_by("revoked_at", "-created_at"))
    for key in keys:
        # As on the consent page: Unicode, with the stored form beside it when they differ.
        key.created_for = ClientName.of(key.created_for_client) if key.created_for_client else None
    return render(request, "accounts/keys.html", {"keys": keys, "form": form}, status=status)


@require_GET
@login_required
@never_cache
def key_list(request: HttpRequest) -> HttpResponse:
    return _keys_page(request, KeyCreateForm())


@require_POST
@login_required
@never_cache
@signin.recent_check_required(back_to="accounts:keys")
def key_new(request: HttpRequest) -> HttpResponse:
    """Create a key and show it, in this response only (no redirect, no session)."""
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, form, status=400)
    key, raw = key_create(
        user=request.user,
        name=form.cleaned_data["name"],
        context=RequestContext.from_request(request),
        limits=form.cleaned_data["limits"],
    )
    response = render(request, "accounts/key_created.html", {"key": key, "raw_key": raw})
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def key_rename_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _own_key(request, key_id, active=True)
    form = KeyNameForm(request.POST if request.method == "POST" else None, initial={"name": key.name})
    if request.method == "POST" and form.is_valid():
        old_name = key.name
        key_rename(
            key=key, name=form.cleaned_data["name"], context=RequestContext.from_request(request), actor=request.user
        )
        messages.success(request, f"Renamed “{old_name}” to “{key.name}”.")
        return redirect("accounts:keys")
    return render(request, "accounts/key_rename.html", {"key": key, "form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def key_limits_view(request: HttpRequest, key_id: int) -> HttpResponse:
    """Change when a key expires and where it works. An expired or revoked key stays as it is."""
    key = _own_key(request, key_id)
    if not key.is_usable():
        messages.info(request, f"“{key.name}” is {key.status}: its limits can no longer change.")
        return redirect("accounts:keys")
    form = KeyLimitsForm(request.POST if request.method == "POST" else None, current=key)
    if request.method == "POST" and form.is_valid():
        changed = key_limits_change(
            key=key,
            limits=form.cleaned_data["limits"],
            context=RequestContext.from_request(request),
            actor=request.user,
        )
        if changed:
            messages.success(request, f"Changed the limits of “{key.name}” ({key.masked}).")
        else:
            messages.info(request, f"“{key.name}” was revoked or expired meanwhile: nothing changed.")
        return redirect("accounts:keys")
    created_for = ClientName.of(key.created_for_client) if key.created_for_client else None
    context = {"key": key, "form": form, "created_for": created_for}
    return render(request, "accounts/key_limits.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
def key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    """GET asks for confirmation; POST revokes at once (the API refuses the key from then on)."""
    key = _own_key(request, key_id)
    if not key.is_active:
        messages.info(request, f"“{key.name}” was already revoked.")
        return redirect("accounts:keys")
    if request.method == "GET":
        created_for = ClientName.of(key.created_for_client) if key.created_for_client else None
        return render(request, "accounts/key_revoke.html", {"key": key, "created_for": created_for})
    key_revoke(key=key, context=RequestContext.from_request(request), actor=request.user)
    messages.success(request, f"Revoked “{key.name}” ({key.masked}). It no longer works on the API.")
    return redirect("accounts:keys")


# --- Recent activity ---------------------------------------------------------------


@require_GET
@login_required
@never_cache
def activity(request: HttpRequest) -> HttpResponse:
    """The audit log seen from the person's side: the newest events about them, as sentences."""
    return render(request, "accounts/activity.html", {"events": recent_events(request.user)})
