"""The audit log seen from the person's side: one readable sentence per event about them.

"localhost got a new key", "An administrator disconnected bücher.example":
apps are named as on the consent page (accounts.clients.ClientName), and a
name an app gave itself is never dressed as a website (no host styling, in
quotes, "name not verified"). Keys appear by their visible prefix only.
"""

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString

from accounts.clients import ClientName
from accounts.models import AuditEvent

EVENTS_SHOWN = 50
# Written for every code and of no interest beside "consent granted" and "picked up".
HIDDEN_KINDS = (AuditEvent.Kind.CODE_ISSUED,)

_REVOKED_BY = {
    "user": "You disconnected {app}",
    "admin": "An administrator disconnected {app}",
    "replay": "{app} was disconnected: one of its authorization codes was used twice, as a stolen code would be",
    "client": "{app} gave its key back and was disconnected",
}


def app_html(recorded: str) -> SafeString:
    """An app in a sentence, as people see it everywhere else."""
    app = ClientName.of(recorded)
    if app.is_self_named:
        note = "an app on your computer" if app.is_loopback else "name not verified"
        return format_html('“<span class="self-name">{}</span>” ({})', app.display_host, note)
    if app.is_idn:
        return format_html('<span class="client-host">{}</span> ({})', app.display_host, app.host)
    return format_html('<span class="client-host">{}</span>', app.display_host)


def _key(event: AuditEvent) -> SafeString:
    name = event.detail.get("name")
    if name:
        return format_html("“{}” (<code>{}…</code>)", name, event.key_prefix)
    return format_html("<code>{}…</code>", event.key_prefix) if event.key_prefix else escape("a key")


def _sentence(template: str, event: AuditEvent, **parts) -> SafeString:
    app = app_html(event.client_id) if event.client_id else escape("an app")
    return format_html(template, app=app, key=_key(event), **parts)


def describe(event: AuditEvent) -> SafeString:
    """One event about the person, as a sentence."""
    detail, kind = event.detail, event.kind
    by_admin = event.actor_kind == AuditEvent.Actor.ADMIN
    match kind:
        case AuditEvent.Kind.CONSENT_GRANTED:
            how = " on a device sign-in" if detail.get("flow") == "device" else ""
            which = "a new key," if detail.get("new_key") else "your key"
            return _sentence(
                "You allowed {app} to get {which} <code>{prefix}…</code>{how}",
                event,
                which=which,
                prefix=event.key_prefix,
                how=how,
            )
        case AuditEvent.Kind.CONSENT_DENIED:
            return _sentence("You denied a request from {app}", event)
        case AuditEvent.Kind.TOKEN_ISSUED:
            return _sentence("{app} picked up the key <code>{prefix}…</code>", event, prefix=event.key_prefix)
        case AuditEvent.Kind.CODE_REPLAY:
            return _sentence("An authorization code of {app} was used twice: its access is revoked", event)
        case AuditEvent.Kind.GRANT_REVOKED:
            text = _REVOKED_BY.get(detail.get("by", ""), "{app} was disconnected")
            revoked = len(detail.get("keys_revoked", []))
            if revoked:
                text += f" and {revoked} key{'s' if revoked > 1 else ''} revoked"
            return _sentence(text, event)
        case AuditEvent.Kind.KEY_CREATED if event.client_id:
            return _sentence("A new key {key} was created for {app}", event)
        case AuditEvent.Kind.KEY_CREATED:
            return _sentence("You created the key {key}", event)
        case AuditEvent.Kind.KEY_RENAMED:
            return format_html(
                "You renamed the key <code>{}…</code> from “{}” to “{}”",
                event.key_prefix,
                detail.get("old_name", ""),
                detail.get("name", ""),
            )
        case AuditEvent.Kind.KEY_REVOKED:
            who = (
                "An administrator revoked"
                if by_admin
                else "The app gave back"
                if event.actor_kind == AuditEvent.Actor.CLIENT
                else "You revoked"
                if event.actor_kind == AuditEvent.Actor.USER
                else "Keygrant revoked"
            )
            if event.client_id:
                return _sentence(who + " the key {key} of {app}", event)
            return _sentence(who + " the key {key}", event)
        case AuditEvent.Kind.KEY_LIMITS_CHANGED:
            return _sentence("You changed when the key {key} expires or where it works", event)
        case AuditEvent.Kind.LOGIN_FAILED:
            return escape("A sign-in to your account failed")
        case AuditEvent.Kind.LOGIN_THROTTLED:
            return escape("Sign-ins to your account were paused after repeated failures")
        case AuditEvent.Kind.FACTOR_ADDED | AuditEvent.Kind.FACTOR_REMOVED:
            verb = "added" if kind == AuditEvent.Kind.FACTOR_ADDED else "removed"
            if detail.get("factor") == "passkey":
                return format_html("You {} the passkey “{}”", verb, detail.get("name", ""))
            return format_html("You {} an authenticator app", verb)
        case AuditEvent.Kind.FACTORS_RESET:
            return format_html("An administrator removed your second factors: “{}”", detail.get("reason", ""))
        case AuditEvent.Kind.RECOVERY_CODES_GENERATED:
            return escape("New recovery codes were made (earlier ones stopped working)")
        case AuditEvent.Kind.RECOVERY_CODE_USED:
            return format_html("A recovery code was used ({} left)", detail.get("left", 0))
        case AuditEvent.Kind.SECOND_FACTOR_FAILED:
            return escape("A second-factor check failed")
        case AuditEvent.Kind.SECOND_FACTOR_THROTTLED:
            return escape("Second-factor checks were paused after repeated failures")
        case AuditEvent.Kind.PASSKEY_SIGNIN:
            return format_html("You signed in with the passkey “{}”", detail.get("name", ""))
    return format_html("{}", event.get_kind_display())


def recent_events(user) -> list[tuple[AuditEvent, SafeString]]:
    """The newest events about `user`, at most EVENTS_SHOWN, each with its sentence."""
    events = AuditEvent.objects.filter(subject=user).exclude(kind__in=HIDDEN_KINDS)[:EVENTS_SHOWN]
    return [(event, describe(event)) for event in events]
