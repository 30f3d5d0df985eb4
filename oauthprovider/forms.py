"""The consent page's form: Allow or Deny, which key the app gets, and the limits of a new key."""

from django import forms

from accounts.key_forms import LIMIT_FIELDS, KeyLimitsForm
from accounts.limits import NO_LIMITS
from accounts.models import ApiKey, User

NEW_KEY = "new"
_KEY_ERROR = "Choose one of your active keys, or a new key."


class KeyChoiceField(forms.ModelChoiceField):
    """One of the person's active keys by id, or NEW_KEY (cleaned to None): one query, whatever the number of keys."""

    def clean(self, value):
        if value == NEW_KEY:
            return None
        # ASCII digits only: int() also reads "١" and "１" as 1.
        if isinstance(value, str) and value and not (value.isascii() and value.isdigit()):
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().clean(value)


class ConsentForm(KeyLimitsForm):
    """DESIGN.md flow step 3: a new key for the app (the default), or one of the user's active keys.

    A new key gets the limits chosen beside it (expiry pre-selected from
    API_KEY_DEFAULT_EXPIRY_DAYS); they are checked only when they matter (Allow
    with a new key), so a typo in them never stands in the way of Deny.
    `cleaned_data["limits"]` is NO_LIMITS otherwise.
    """

    decision = forms.ChoiceField(
        choices=[("allow", "Allow"), ("deny", "Deny")],
        error_messages={"required": "Choose Allow or Deny.", "invalid_choice": "Choose Allow or Deny."},
    )
    key = KeyChoiceField(
        queryset=ApiKey.objects.none(), error_messages={"required": _KEY_ERROR, "invalid_choice": _KEY_ERROR}
    )

    def __init__(self, data=None, *, user: User) -> None:
        if data is not None and "key" not in data:
            data = data.copy()
            data["key"] = NEW_KEY  # a form without the choice asks for the recommended default
        super().__init__(data)
        if self.is_bound:  # only a posted choice is checked: the page lists keys itself (views/consent.py)
            # Expired keys are not offered: an app would get a key that no longer works.
            self.fields["key"].queryset = ApiKey.objects.usable().filter(user=user)

    def clean(self):
        cleaned = self.cleaned_data
        if cleaned.get("decision") == "allow" and "key" in cleaned and cleaned["key"] is None:
            return super().clean()
        for name in LIMIT_FIELDS:  # limits of a key nobody creates: not this form's business
            self._errors.pop(name, None)
        cleaned["limits"] = NO_LIMITS
        return cleaned

    @property
    def allowed(self) -> bool:
        return self.cleaned_data["decision"] == "allow"
