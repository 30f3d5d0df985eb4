"""Second factors, for people: the second step of signing in, passkey sign-in, the security page,
setting factors up and removing them, recovery codes, and the re-check before sensitive changes.

Every page works without JavaScript except what WebAuthn itself needs: a
passkey is created and used by the browser, so static/js/passkeys.js asks
for the ceremony's options (`passkey_options`), runs it, and posts the
answer in an ordinary form, which the server checks like any other form.
"""

import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import factor_services, passkeys, signin, throttle
from accounts import second_factor as rules
from accounts.audit import RequestContext, audit_record
from accounts.forms import PasskeyAddForm, SecondFactorForm, TotpSetupForm
from accounts.models import AuditEvent, Passkey, User
from accounts.views import safe_next


def _rp() -> rules.RelyingParty:
    return rules.relying_party(settings.OAUTH_ISSUER)


def _form_status(form) -> int:
    if getattr(form, "retry_after", 0):
        return 429
    return 400 if form.errors else 200


def _with_retry_after(response: HttpResponse, form) -> HttpResponse:
    if getattr(form, "retry_after", 0):
        response["Retry-After"] = str(form.retry_after)
    return response


def _login_again(request: HttpRequest) -> HttpResponse:
    messages.info(request, "Your sign-in took too long, or was not started in this browser. Sign in again.")
    next_url = signin.pending_next(request)
    signin.pending_end(request)
    login_url = reverse("accounts:login")
    return redirect(f"{login_url}?{urlencode({'next': next_url})}" if next_url else login_url)


def _signed_in_response(request: HttpRequest, *, user: User, method: str, next_url: str) -> HttpResponse:
    signin.signin_complete(request, user=user, method=method)
    response = HttpResponseRedirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))
    throttle.remember_browser(response, username=user.get_username())
    return response


# --- Signing in --------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("code", "credential")
@csrf_protect
@never_cache
def login_verify(request: HttpRequest) -> HttpResponse:
    """The second step: the password was right; a code, a passkey or a recovery code finishes the sign-in."""
    user = signin.pending_user(request, enrol=False)
    if user is None:
        return _login_again(request)
    form = SecondFactorForm(request.POST or None, request=request, user=user, purpose="signin")
    if request.method == "POST" and form.is_valid():
        return _signed_in_response(request, user=user, method=form.method, next_url=signin.pending_next(request))
    context = {"form": form, "factors": factor_services.factors_of(user), "passkeys_possible": _rp().passkeys_possible}
    response = render(request, "accounts/login_verify.html", context, status=_form_status(form))
    return _with_retry_after(response, form)


@require_POST
@sensitive_post_parameters("credential")
@csrf_protect
@never_cache
def login_passkey(request: HttpRequest) -> HttpResponse:
    """Sign in with a passkey alone (a discoverable credential that verified its user): no username, no password."""
    next_url = safe_next(request)
    user = _passkey_owner(request)
    if user is None:
        messages.error(request, "That passkey could not sign you in. Try again, or sign in with your password.")
        login_url = reverse("accounts:login")
        return redirect(f"{login_url}?{urlencode({'next': next_url})}" if next_url else login_url)
    return _signed_in_response(request, user=user, method="passkey", next_url=next_url)


def _passkey_owner(request: HttpRequest) -> User | None:
    """The person a usernameless passkey answer proves, or None (the failure is audited)."""
    challenge = signin.challenge_take(request, purpose="signin", user_id=None)
    context = RequestContext.from_request(request)
    passkey = None
    try:
        if challenge is None:
            raise passkeys.PasskeyError("no challenge")
        claimed = passkeys.assertion_read(request.POST.get("credential", ""))
        passkey = Passkey.objects.select_related("user").filter(credential_id=claimed.credential_id).first()
        # WebAuthn 7.2 step 6: without a username, the user handle must be there and be the passkey's owner's.
        if passkey is None or claimed.user_handle is None:
            raise passkeys.PasskeyError("unknown passkey")
        if not hmac.compare_digest(claimed.user_handle, passkey.user_handle) or not passkey.user.is_active:
            raise passkeys.PasskeyError("not this passkey's owner")
        count = passkeys.assertion_verify(
            _rp(),
            credential_json=request.POST.get("credential", ""),
            challenge=challenge.challenge,
            public_key=bytes(passkey.public_key),
            sign_count=passkey.sign_count,
            user_verification=True,
        )
        if not factor_services.passkey_signin(passkey=passkey, new_sign_count=count, context=context):
            raise passkeys.PasskeyError("sign count went back")
    except passkeys.PasskeyError:
        audit_record(
            kind=AuditEvent.Kind.SECOND_FACTOR_FAILED,
            context=context,
            subject=passkey.user if passkey is not None else None,
            detail={"method": "passkey", "purpose": "passkey_signin"},
        )
        return None
    return passkey.user


@require_POST
@csrf_protect
@never_cache
def passkey_options(request: HttpRequest) -> HttpResponse:
    """The options of a WebAuthn ceremony, as JSON, for static/js/passkeys.js; the challenge stays in the session."""
    rp, purpose = _rp(), request.POST.get("purpose", "")
    if not rp.passkeys_possible:
        return JsonResponse({"error": "Passkeys need a host name, not an IP address."}, status=400)
    if purpose == "register":
        user = _enrolling_user(request)
        if user is None:
            return JsonResponse({"error": "Sign in first."}, status=403)
        handle = factor_services.passkey_user_handle(user)
        existing = list(Passkey.objects.filter(user=user).values_list("credential_id", flat=True))
        options, challenge = passkeys.registration_options(
            rp, user_handle=handle, username=user.get_username(), display_name=user.get_full_name(), existing=existing
        )
        signin.challenge_store(request, purpose=purpose, challenge=challenge, user_id=user.pk, user_handle=handle)
    elif purpose in ("signin", "verify"):
        # "verify": the person is known when signing in or re-checking; on a password-reset page
        # they are not (yet), and any passkey of theirs will do (the form checks whose it is).
        user = (signin.pending_user(request, enrol=False) or request.user) if purpose == "verify" else None
        user = user if user is not None and user.is_authenticated else None
        allowed = list(Passkey.objects.filter(user=user).values_list("credential_id", flat=True)) if user else []
        options, challenge = passkeys.authentication_options(rp, allowed=allowed, user_verification=purpose == "signin")
        signin.challenge_store(request, purpose=purpose, challenge=challenge, user_id=user.pk if user else None)
    else:
        return JsonResponse({"error": "Unknown purpose."}, status=400)
    response = HttpResponse(options, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


# --- The security page and setting factors up ------------------------------------------------------


def _enrolling_user(request: HttpRequest) -> User | None:
    """Who may set a factor up: the signed-in person, or one signing in who must have a factor first."""
    if request.user.is_authenticated:
        return request.user
    return signin.pending_user(request, enrol=True)


def _security_page(request: HttpRequest, user: User, *, add_form: PasskeyAddForm | None = None, status: int = 200):
    context = {
        "account": user,
        "enrolling": not request.user.is_authenticated,
        "factors": factor_services.factors_of(user),
        "passkeys": Passkey.objects.filter(user=user),
        "required": signin.must_have_second_factor(user),
        "passkeys_possible": _rp().passkeys_possible,
        "add_form": add_form or PasskeyAddForm(),
    }
    return render(request, "accounts/security.html", context, status=status)


@require_GET
@never_cache
def security(request: HttpRequest) -> HttpResponse:
    user = _enrolling_user(request)
    if user is None:
        return redirect_to_login(request.get_full_path())
    return _security_page(request, user)


def _enrolled(request: HttpRequest, *, user: User, method: str, codes: list[str]) -> HttpResponse:
    """A factor was just set up: finish a sign-in that waited for it, and show new recovery codes once."""
    if request.user.is_authenticated:
        signin.factor_checked(request, method=method)
        continue_url = reverse("accounts:security")
        response = None
    else:
        continue_url = signin.pending_next(request) or resolve_url(settings.LOGIN_REDIRECT_URL)
        response = _signed_in_response(request, user=user, method=method, next_url=continue_url)
    if not codes:
        return response or redirect(continue_url)
    page = render(request, "accounts/recovery_codes.html", {"codes": codes, "continue_url": continue_url})
    page["Cache-Control"] = "no-store"
    if response is not None and throttle.KNOWN_BROWSER_COOKIE in response.cookies:
        page.cookies[throttle.KNOWN_BROWSER_COOKIE] = response.cookies[throttle.KNOWN_BROWSER_COOKIE]
    return page


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("code")
@csrf_protect
@never_cache
@signin.recent_check_required()
def totp_setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the QR code (or type the secret), then confirm with a first code."""
    user = _enrolling_user(request)
    if user is None:
        return redirect_to_login(request.get_full_path())
    if factor_services.factors_of(user).totp:
        messages.info(request, "Your authenticator app is already set up.")
        return redirect("accounts:security")
    device = factor_services.totp_enrol_begin(user=user)
    form = TotpSetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        context = RequestContext.from_request(request)
        codes = factor_services.totp_activate(user=user, code=form.cleaned_data["code"], context=context)
        if codes is not None:
            messages.success(request, "Your authenticator app is set up: sign-ins now ask for its code.")
            return _enrolled(request, user=user, method="totp", codes=codes)
        form.add_error("code", "That code is not right. Check that your phone's clock is right, and try the next code.")
    secret = device.secret()
    uri = rules.totp_uri(secret=secret, account=f"{user.get_username()}@{_rp().id}", issuer="Keygrant")
    context = {
        "form": form,
        "qr_svg": rules.qr_svg(uri),
        "secret": rules.secret_for_display(secret),
        "enrolling": not request.user.is_authenticated,
    }
    response = render(request, "accounts/totp_setup.html", context, status=400 if form.errors else 200)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@sensitive_post_parameters("credential")
@csrf_protect
@never_cache
@signin.recent_check_required(back_to="accounts:security")
def passkey_add(request: HttpRequest) -> HttpResponse:
    """Store the passkey the browser just created (static/js/passkeys.js posts its answer with a name)."""
    user = _enrolling_user(request)
    if user is None:
        return redirect_to_login(reverse("accounts:security"))
    form = PasskeyAddForm(request.POST)
    challenge = signin.challenge_take(request, purpose="register", user_id=user.pk)
    if form.is_valid():
        try:
            if challenge is None or not challenge.user_handle:
                raise passkeys.PasskeyError("no challenge")
            new = passkeys.registration_verify(
                _rp(), credential_json=form.cleaned_data["credential"], challenge=challenge.challenge
            )
            _, codes = factor_services.passkey_add(
                user=user,
                name=form.cleaned_data["name"],
                user_handle=challenge.user_handle,
                new=new,
                context=RequestContext.from_request(request),
            )
        except passkeys.PasskeyError:
            form.add_error(None, "Your passkey could not be registered. Try again.")
        except IntegrityError:
            form.add_error(None, "This passkey is already registered.")
        else:
            messages.success(request, f"Added the passkey “{form.cleaned_data['name']}”.")
            return _enrolled(request, user=user, method="passkey", codes=codes)
    return _security_page(request, user, add_form=form, status=400)


# --- Removing factors, new recovery codes --------------------------------------------------------


def _is_last_required_factor(user: User) -> bool:
    factors = factor_services.factors_of(user)
    return signin.must_have_second_factor(user) and int(factors.totp) + factors.passkeys <= 1


def _removal(request: HttpRequest, *, what: str, remove) -> HttpResponse:
    if _is_last_required_factor(request.user):
        messages.error(request, f"Your account must have a second factor: add another before removing {what}.")
        return redirect("accounts:security")
    if request.method == "GET":
        return render(request, "accounts/factor_remove.html", {"what": what})
    remove(context=RequestContext.from_request(request))
    messages.success(request, f"Removed {what}.")
    return redirect("accounts:security")


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
@signin.recent_check_required()
def totp_remove(request: HttpRequest) -> HttpResponse:
    if not factor_services.factors_of(request.user).totp:
        return redirect("accounts:security")
    return _removal(
        request,
        what="your authenticator app",
        remove=lambda context: factor_services.totp_remove(user=request.user, context=context),
    )


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
@signin.recent_check_required()
def passkey_remove(request: HttpRequest, passkey_id: int) -> HttpResponse:
    passkey = get_object_or_404(Passkey, user=request.user, pk=passkey_id)
    return _removal(
        request,
        what=f"the passkey “{passkey.name}”",
        remove=lambda context: factor_services.passkey_remove(passkey=passkey, context=context),
    )


@require_POST
@login_required
@never_cache
@signin.recent_check_required(back_to="accounts:security")
def recovery_codes_new(request: HttpRequest) -> HttpResponse:
    """New recovery codes, shown once (the old ones stop working)."""
    if not signin.has_second_factor(request.user):
        return redirect("accounts:security")
    codes = factor_services.recovery_codes_generate(user=request.user, context=RequestContext.from_request(request))
    response = render(
        request, "accounts/recovery_codes.html", {"codes": codes, "continue_url": reverse("accounts:security")}
    )
    response["Cache-Control"] = "no-store"
    return response


# --- The re-check ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
@sensitive_post_parameters("code", "credential")
@csrf_protect
@never_cache
def recheck(request: HttpRequest) -> HttpResponse:
    """Show the second factor again before a sensitive change (REAUTH_MAX_AGE_SECONDS), then go on to `next`."""
    next_url = safe_next(request) or reverse("accounts:security")
    if not signin.has_second_factor(request.user):
        return redirect(next_url)
    form = SecondFactorForm(request.POST or None, request=request, user=request.user, purpose="recheck")
    if request.method == "POST" and form.is_valid():
        signin.factor_checked(request, method=form.method)
        return redirect(next_url)
    context = {
        "form": form,
        "next": next_url,
        "factors": factor_services.factors_of(request.user),
        "passkeys_possible": _rp().passkeys_possible,
    }
    response = render(request, "accounts/recheck.html", context, status=_form_status(form))
    return _with_retry_after(response, form)
