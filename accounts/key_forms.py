"""Forms for the limits on a key (accounts.limits): the keys page, the limits page, and the consent page's new key."""

from django import forms
from django.conf import settings
from django.utils import timezone

from accounts import limits
from accounts.forms import KeyNameForm

KEEP = "keep"
LIMIT_FIELDS = ("expiry", "expiry_date", "allowed_networks")


class KeyLimitsForm(forms.Form):
    """When a key expires and which addresses it works from; `cleaned_data["limits"]` once valid.

    Given `current` (a key whose limits are being changed), "keep its
    expiry" is offered first and the current allowlist is filled in.
    """

    expiry = forms.ChoiceField(label="Expires", error_messages={"invalid_choice": "Choose when the key expires."})
    expiry_date = forms.DateField(
        label="Expiry date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="With “On a date…”: the key stops working as that day begins (00:00 UTC).",
        error_messages={"invalid": "Enter the date as YYYY-MM-DD."},
    )
    allowed_networks = forms.CharField(
        label="Allowed addresses",
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
        help_text=(
            "Optional. IP addresses or networks (CIDR) the key works from, separated by commas or new lines, "
            "e.g. <code>203.0.113.0/24, 2001:db8::/32</code>. Empty: any address."
        ),
    )

    def __init__(self, data=None, *args, current=None, **kwargs) -> None:
        default_days = settings.API_KEY_DEFAULT_EXPIRY_DAYS
        default = KEEP if current is not None else limits.default_expiry_choice(default_days)
        if data is not None and "expiry" not in data:
            data = data.copy()
            data["expiry"] = default  # a form without the choice gets the pre-selected one
        super().__init__(data, *args, **kwargs)
        self.current = current
        choices = limits.expiry_choices(default_days)
        if current is not None:
            kept = f"{current.expires_at:%Y-%m-%d %H:%M} UTC" if current.expires_at else "never"
            choices = [(KEEP, f"Unchanged ({kept})"), *choices]
            self.fields["allowed_networks"].initial = "\n".join(current.allowed_networks)
        self.fields["expiry"].choices = choices
        self.fields["expiry"].initial = default
        self.fields["allowed_networks"].max_length = limits.MAX_ALLOWLIST_TEXT

    def clean(self):
        cleaned = super().clean()
        choice = cleaned.get("expiry")
        if choice is None or "expiry_date" in self.errors or "allowed_networks" in self.errors:
            return cleaned
        now = timezone.now()
        try:
            if choice == KEEP:
                expires_at = self.current.expires_at
            else:
                expires_at = limits.expires_at_for(choice, cleaned.get("expiry_date"), now=now)
        except ValueError as exc:
            self.add_error("expiry_date" if choice == limits.ON_DATE else "expiry", str(exc))
            return cleaned
        try:
            networks = limits.parse_allowlist(
                cleaned.get("allowed_networks") or "", max_entries=settings.API_KEY_MAX_ALLOWED_NETWORKS
            )
        except ValueError as exc:
            self.add_error("allowed_networks", str(exc))
            return cleaned
        cleaned["limits"] = limits.KeyLimits(expires_at=expires_at, allowed_networks=networks)
        return cleaned


class KeyCreateForm(KeyNameForm, KeyLimitsForm):
    """The keys page's "Create a key": a name and its limits."""
