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
)
from tenancy.models import label_validator
from workers.models import Worker
from workers.samples import SAMPLE_SOURCE


def lf(text: str) -> str:
    """Browsers post a textarea's lines with CRLF; a file keeps the LF it was written with."""
    return text.replace("\r\n", "\n")


class SourceField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"})

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        kwargs.setdefault("required", False)  # an upload may replace it
        super().__init__(**kwargs)

    def to_python(self, value):
        return lf(super().to_python(value))


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


LANGUAGES = {".ts": "typescript", ".tsx": "typescript", ".mts": "typescript", ".json": "json",
             ".jsonc": "json", ".js": "javascript", ".mjs": "javascript", ".jsx": "javascript"}  # fmt: skip


# New files the editor takes per save.
NEW_FILES = 3


class EditorTab:
    """One file in the editor: its path, text, language and the last build's problems."""

    def __init__(self, index: int, path: str, text: str, diagnostics=(), entry=False):
        self.index, self.path, self.text, self.entry = index, path, text, entry
        self.field = "source" if entry else f"f{index}"
        self.language = next((v for k, v in LANGUAGES.items() if path.endswith(k)), "plaintext")
        self.diagnostics = [d for d in diagnostics if d.get("file") == path]


class ProgramForm(forms.Form):
    """A new version, written in the editor (one tab per file: the entry module as `source`,
    every other file as the pair p<i> (path) / f<i> (text), removed with remove<i>, up to
    NEW_FILES new files as new_path_<n> / new_text_<n>), or uploaded (several files, or one
    .zip or .tar.gz), which replaces them all."""

    source = SourceField(label="Entry module")
    entry_path = forms.CharField(required=False, widget=forms.HiddenInput)
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
        # The deployment the editor starts from (its files, and the problems of its build).
        self.base = base
        entry = base.entry if base is not None and base.entry else "index.ts"
        self.fields["entry_path"].initial = entry
        self.fields["source"].label = entry
        # New files, several per save (the form works without JavaScript, so a few slots).
        for n in range(1, NEW_FILES + 1):
            self.fields[f"new_path_{n}"] = forms.CharField(
                required=False,
                label=f"Path of new file {n}",
                widget=forms.TextInput(
                    attrs={"placeholder": f"lib/helpers{n if n > 1 else ''}.ts"}
                ),
            )
            self.fields[f"new_text_{n}"] = SourceField(label=f"Content of new file {n}")

    @property
    def new_files(self) -> list[dict]:
        """The new-file slots as the editor draws them, with what was typed into them."""
        return [
            {
                "n": n,
                "path": self[f"new_path_{n}"],
                "text": self.data.get(f"new_text_{n}", "") if self.is_bound else "",
            }
            for n in range(1, NEW_FILES + 1)
        ]

    @property
    def tabs(self) -> list[EditorTab]:
        """The files as they are in the editor: posted back, or the base deployment's."""
        diagnostics = self.base.diagnostics if self.base is not None else []
        entry = self.data.get("entry_path") or self.fields["entry_path"].initial
        if self.is_bound:
            text = self.data.get("source", "")
        else:
            text = self.initial.get("source", self.fields["source"].initial or "")
        tabs = [EditorTab(0, entry, text, diagnostics, entry=True)]
        for index, (path, text) in enumerate(self.other_files(), start=1):
            tabs.append(EditorTab(index, path, text, diagnostics))
        return tabs

    def other_files(self) -> list[tuple[str, str]]:
        if self.is_bound and any(key.startswith("p") and key[1:].isdigit() for key in self.data):
            return [
                (self.data[f"p{i}"], lf(self.data.get(f"f{i}", "")))
                for i in range(1, settings.MAX_PROGRAM_FILES + 1)
                if f"p{i}" in self.data and not self.data.get(f"remove{i}")
            ]
        if self.base is None:
            return []
        return sorted((p, t) for p, t in self.base.files.items() if p != self.base.entry)

    def clean(self):
        data = super().clean()
        uploads = data.get("upload") or []
        try:
            if uploads:
                data["program"] = self.uploaded(uploads)
            else:
                source = data.get("source") or ""
                if not source.strip():
                    raise forms.ValidationError("The module is empty: write code or upload files.")
                entry = data.get("entry_path") or self.fields["entry_path"].initial
                files = {entry: source, **dict(self.other_files())}
                files[entry] = source
                for n in range(1, NEW_FILES + 1):
                    path = (data.get(f"new_path_{n}") or "").strip()
                    text = data.get(f"new_text_{n}") or ""
                    if not path and text.strip():
                        raise forms.ValidationError(
                            f"New file {n} has content but no path: give it one, such as "
                            "lib/helpers.ts."
                        )
                    if path and path in files:
                        raise forms.ValidationError(
                            f"{path} exists already: edit it in its own tab, or choose "
                            "another path for the new file."
                        )
                    if path:
                        files[path] = text
                data["program"] = program_from_files(files, entry)
        except ProgramError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data

    def uploaded(self, uploads) -> Program:
        limit = settings.MAX_SOURCE_BYTES
        if len(uploads) == 1 and uploads[0].name.lower().endswith(ARCHIVES):
            if uploads[0].size > limit * 4:
                raise ProgramTooLarge(
                    f"{uploads[0].name} is {uploads[0].size} bytes; an archive may be at most "
                    f"{limit * 4} bytes."
                )
            return program_from_archive(uploads[0].read())
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
    field_order = ["name"]

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
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
