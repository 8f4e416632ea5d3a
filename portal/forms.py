"""Forms of the tenant pages."""

import json

from django import forms
from django.conf import settings

from deployments.program import (
    Program,
    ProgramError,
    ProgramTooLarge,
    program_from_archive,
    program_from_files,
    program_from_source,
)
from workers.models import Worker
from workers.samples import SAMPLE_SOURCE
from workers_portal.models import label_validator


class SourceField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"})

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        kwargs.setdefault("required", False)  # an upload may replace it
        super().__init__(**kwargs)


class FilesInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class FilesField(forms.FileField):
    """Several files at once (Django's documented pattern): each a list item."""

    widget = FilesInput(attrs={"multiple": True})

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(FilesField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


ARCHIVES = (".zip", ".tar.gz", ".tgz")


class ProgramForm(forms.Form):
    """A new version: the entry module edited here (the other files kept from `base`), or
    uploaded files (several, or one .zip or .tar.gz), which replace them all."""

    source = SourceField(label="Entry module")
    upload = FilesField(
        label="Or upload files",
        required=False,
        help_text="Several .ts/.js files (with a package.json for dependencies if you like), "
        "or one .zip or .tar.gz of the worker's folder. They replace all files.",
    )
    update_lock = forms.BooleanField(
        label="Update packages to the newest versions their specifiers allow",
        required=False,
    )

    def __init__(self, *args, base=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.base = base  # the deployment whose other files a pasted entry keeps
        if base is not None and base.entry:
            self.fields["source"].label = f"Entry module ({base.entry})"

    @property
    def kept_files(self) -> list[str]:
        if self.base is None:
            return []
        return [p for p in self.base.files if p != self.base.entry]

    def clean(self):
        data = super().clean()
        uploads = data.get("upload") or []
        try:
            if uploads:
                data["program"] = self.uploaded(uploads)
            else:
                source = data.get("source") or ""
                if not source.strip():
                    raise forms.ValidationError("The module is empty: paste code or upload files.")
                if self.base is not None and self.base.files and self.base.entry:
                    files = {**self.base.files, self.base.entry: source}
                    data["program"] = program_from_files(files, self.base.entry)
                else:
                    data["program"] = program_from_source(source)
        except ProgramError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data

    def uploaded(self, uploads) -> Program:
        limit = settings.MAX_SOURCE_BYTES
        if len(uploads) == 1 and uploads[0].name.lower().endswith(ARCHIVES):
            return program_from_archive(uploads[0].read(limit * 4 + 1))
        files = {}
        for item in uploads:
            if item.size > limit:
                raise ProgramTooLarge(f"{item.name} is {item.size} bytes; the limit is {limit}.")
            try:
                files[item.name] = item.read().decode()
            except UnicodeDecodeError as exc:
                raise ProgramError(f"{item.name} is not UTF-8 text.") from exc
        return program_from_files(files)


class NewWorkerForm(ProgramForm):
    name = forms.CharField(
        max_length=30,
        validators=[label_validator],
        help_text="Lowercase letters, digits and hyphens (up to 30); part of the worker's URL.",
    )
    field_order = ["name", "source", "upload"]

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["source"].label = "TypeScript module (index.ts)"
        self.fields["source"].initial = SAMPLE_SOURCE
        del self.fields["update_lock"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip().lower()
        if Worker.objects.filter(tenant=self.tenant, name=name).exists():
            raise forms.ValidationError("A worker with this name exists already.")
        return name


DeployForm = ProgramForm


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
