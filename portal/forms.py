"""Forms of the tenant pages."""

import json

from django import forms
from django.conf import settings

from workers.models import Worker
from workers.samples import SAMPLE_SOURCE
from workers_portal.models import label_validator


class SourceField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"})

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def validate(self, value):
        super().validate(value)
        size = len(value.encode())
        if size > settings.MAX_SOURCE_BYTES:
            raise forms.ValidationError(
                f"The module is {size} bytes; the limit is {settings.MAX_SOURCE_BYTES} bytes."
            )
        if not value.strip():
            raise forms.ValidationError("The module is empty.")


class NewWorkerForm(forms.Form):
    name = forms.CharField(
        max_length=30,
        validators=[label_validator],
        help_text="Lowercase letters, digits and hyphens (up to 30); part of the worker's URL.",
    )
    source = SourceField(label="TypeScript module", initial=SAMPLE_SOURCE)

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def clean_name(self):
        name = self.cleaned_data["name"].strip().lower()
        if Worker.objects.filter(tenant=self.tenant, name=name).exists():
            raise forms.ValidationError("A worker with this name exists already.")
        return name


class DeployForm(forms.Form):
    source = SourceField(label="TypeScript module")


class InvokeForm(forms.Form):
    function = forms.ChoiceField()
    payload = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code"}),
        initial="{}",
        required=False,
        strip=False,
        help_text="JSON, passed to the function as its argument.",
    )

    def __init__(self, *args, functions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["function"].choices = [(f, f) for f in functions]

    def clean_payload(self):
        text = self.cleaned_data["payload"] or "null"
        try:
            json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if len(text.encode()) > settings.RUNTIME_MAX_BODY_BYTES:
            raise forms.ValidationError(
                f"The payload is larger than {settings.RUNTIME_MAX_BODY_BYTES} bytes."
            )
        return text
