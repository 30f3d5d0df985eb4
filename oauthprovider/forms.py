"""The consent page's form: Allow or Deny, which key the app gets, and the limits of a new key."""

from django import forms
from django.utils import timezone

from accounts.key_forms import LIMIT_FIELDS, KeyLimitsForm
from accounts.limits import NO_LIMITS
from accounts.models import ApiKey, User

NEW_KEY = "new"
_KEY_ERROR = "Choose one of your active keys, or a new key."


class KeyChoiceField(forms.Field):
    """One of `user`'s usable keys by id, or NEW_KEY (cleaned to None): one query, whatever the number of keys."""

    default_error_messages = {"required": _KEY_ERROR, "invalid_choice": _KEY_ERROR}
    user: User | None = None  # set by the form

    def clean(self, value):
        if value == NEW_KEY:
            return None
        self.validate(value)  # "required"
        # ASCII digits only (int() also reads "١" and "１" as 1), and no longer than a key id can be.
        if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18):
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        key = ApiKey.objects.usable_by_id(int(value), user=self.user, now=timezone.now())
        if key is None:
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return key


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
    key = KeyChoiceField()

    def __init__(self, data=None, *, user: User) -> None:
        if data is not None and "key" not in data:
            data = data.copy()
            data["key"] = NEW_KEY  # a form without the choice asks for the recommended default
        super().__init__(data)
        # Only usable keys: an app would get a key that no longer works. The page lists them itself.
        self.fields["key"].user = user

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
