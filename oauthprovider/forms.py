"""The consent page's form: Allow or Deny, and which key the app gets."""

from django import forms

from accounts.models import ApiKey

NEW_KEY = "new"


class ConsentForm(forms.Form):
    """DESIGN.md flow step 3: a new key for the app (the default), or one of the user's active keys."""

    decision = forms.ChoiceField(
        choices=[("allow", "Allow"), ("deny", "Deny")],
        error_messages={"required": "Choose Allow or Deny.", "invalid_choice": "Choose Allow or Deny."},
    )
    key = forms.ChoiceField(
        error_messages={
            "required": "Choose one of your active keys, or a new key.",
            "invalid_choice": "Choose one of your active keys, or a new key.",
        }
    )

    def __init__(self, data=None, *, keys: list[ApiKey]) -> None:
        if data is not None and "key" not in data:
            data = data.copy()
            data["key"] = NEW_KEY  # a form without the choice asks for the recommended default
        super().__init__(data)
        self.keys = {str(key.pk): key for key in keys}
        self.fields["key"].choices = [(NEW_KEY, "A new key"), *((pk, key.name) for pk, key in self.keys.items())]

    @property
    def allowed(self) -> bool:
        return self.cleaned_data["decision"] == "allow"

    def clean_key(self) -> ApiKey | None:
        """The chosen key, or None for a new one."""
        return self.keys.get(self.cleaned_data["key"])
