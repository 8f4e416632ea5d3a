"""Programs in the portal: several files uploaded (or a .zip/.tar.gz), a pasted entry module
that keeps the other files, and a deployment's files and pinned packages on its page."""

import io
import json
import tarfile
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from deployments.models import Deployment
from workers.models import Worker

from .helpers import GREETER

LIB = "export const shout = (s: string) => s.toUpperCase();\n"
INDEX = 'import { shout } from "./lib.ts";\nexport async function hi() { return shout("hi"); }\n'


def upload(name: str, content: str | bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode() if isinstance(content, str) else content)


def test_a_new_worker_from_several_uploaded_files(owner_client, tenant):
    files = [upload("index.ts", INDEX), upload("lib.ts", LIB)]
    answer = owner_client.post(
        reverse("new-worker"), {"name": "two", "source": "", "upload": files}
    )
    assert answer.status_code == 302, answer.content.decode()
    deployment = Worker.objects.get(tenant=tenant, name="two").deployments.get()
    assert deployment.files == {"index.ts": INDEX, "lib.ts": LIB}
    assert deployment.entry == "index.ts" and deployment.source == INDEX


def test_a_zip_of_a_folder_replaces_every_file(owner_client, worker):
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("shop/src/main.ts", INDEX.replace("./lib.ts", "./util/lib.ts"))
        archive.writestr("shop/src/util/lib.ts", LIB)
        archive.writestr("shop/package.json", json.dumps({"main": "src/main.ts"}))
    url = reverse("redeploy", args=[worker.code])
    answer = owner_client.post(
        url, {"source": "", "upload": [upload("shop.zip", packed.getvalue())]}
    )
    assert answer.status_code == 302
    deployment = worker.deployments.first()
    assert sorted(deployment.files) == ["package.json", "src/main.ts", "src/util/lib.ts"]
    assert deployment.entry == "src/main.ts"


def test_a_pasted_entry_keeps_the_other_files_and_the_choice_of_lock(owner_client, worker):
    serving = Deployment.objects.create(
        worker=worker, tenant=worker.tenant, files={"main.ts": INDEX, "lib.ts": LIB},
        entry="main.ts", source=INDEX, lockfile='{"version": "5"}', status="ready",
    )  # fmt: skip
    Worker.objects.filter(pk=worker.pk).update(production=serving)
    page = owner_client.get(reverse("worker-deployments", args=[worker.code])).content.decode()
    assert '<label for="tab-0" role="tab">main.ts <span class="tag">entry</span>' in page
    assert '<input type="hidden" name="p1" value="lib.ts">' in page
    edited = INDEX.replace('"hi"', '"hello"')
    url = reverse("redeploy", args=[worker.code])
    assert owner_client.post(url, {"source": edited}).status_code == 302
    newest = worker.deployments.first()
    assert newest.files == {"main.ts": edited, "lib.ts": LIB} and newest.entry == "main.ts"
    assert newest.lockfile == '{"version": "5"}'  # the lock production runs with
    assert not newest.update_lock
    assert owner_client.post(url, {"source": edited, "update_lock": "on"}).status_code == 302
    assert worker.deployments.first().update_lock and worker.deployments.first().lockfile == ""


def test_an_upload_that_is_no_program_says_why_and_deploys_nothing(owner_client, worker):
    url = reverse("redeploy", args=[worker.code])
    bad = [upload("notes.md", "# hi")]
    answer = owner_client.post(url, {"source": "", "upload": bad})
    assert answer.status_code == 400
    assert "No code: the upload has no .ts or .js file." in answer.content.decode()
    broken = [upload("w.tar.gz", b"not a tarball")]
    answer = owner_client.post(url, {"source": "", "upload": broken})
    assert "could not be read as .tar.gz" in answer.content.decode()
    linked = io.BytesIO()
    with tarfile.open(fileobj=linked, mode="w:gz") as archive:
        info = tarfile.TarInfo("index.ts")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/hostname"
        archive.addfile(info)
    answer = owner_client.post(url, {"source": "", "upload": [upload("w.tgz", linked.getvalue())]})
    assert "only regular files and folders (no links or devices)" in answer.content.decode()
    assert worker.deployments.count() == 0


def test_the_deployment_page_shows_its_files_and_pinned_packages(owner_client, worker):
    lock = {
        "version": "5",
        "specifiers": {"npm:zod@3": "3.23.8"},
        "npm": {"zod@3.23.8": {"integrity": "sha512-x"}},
    }
    deployment = Deployment.objects.create(
        worker=worker, tenant=worker.tenant, files={"index.ts": GREETER, "lib/a.ts": LIB},
        entry="index.ts", source=GREETER, lockfile=json.dumps(lock), status="ready",
        functions=["hello"], http=True,
    )  # fmt: skip
    page = owner_client.get(reverse("deployment", args=[deployment.code])).content.decode()
    assert "<code>lib/a.ts</code>" in page and "toUpperCase" in page
    assert "<td><code>zod</code></td><td>3.23.8</td><td>npm</td>" in page
    assert "a fetch handler serves every other path" in page
    assert "Packages (pinned): <code>zod@3.23.8</code>" in page


def test_the_editor_edits_removes_and_adds_files_and_marks_problems(owner_client, worker):
    Deployment.objects.create(
        worker=worker, tenant=worker.tenant, status="error",
        files={"index.ts": INDEX, "lib.ts": LIB, "old.ts": "export const old = 1;\n"},
        entry="index.ts", source=INDEX, error_message="1 type error",
        diagnostics=[{"file": "lib.ts", "line": 1, "column": 14, "message": "TS2322 Type 'string' is not assignable to type 'number'."}],
    )  # fmt: skip
    page = owner_client.get(reverse("worker-deployments", args=[worker.code])).content.decode()
    # Each file in its tab, highlighted as its language; the build's problem in its file's
    # tab and on its line number.
    assert (
        '<code-input template="code" language="typescript" class="line-numbers" id="editor-1">'
        in page
    )
    assert 'lib.ts <span class="problems" title="problems in the last build">1</span>' in page
    assert "<li>line 1, column 14: TS2322 Type &#x27;string&#x27; is not assignable" in page
    assert "#editor-1 .line-numbers-rows > span:nth-child(1)::before," in page
    fixed = "export const shout = (s: string): string => s.toUpperCase();\n"
    posted = {
        "entry_path": "index.ts", "source": INDEX,
        "p1": "lib.ts", "f1": fixed,
        "p2": "old.ts", "f2": "export const old = 1;\n", "remove2": "on",
        "new_path_1": "lib/extra.ts", "new_text_1": "export const extra = 2;\n",
        "new_path_2": "", "new_text_2": "",
        "new_path_3": "lib/more.ts", "new_text_3": "export const more = 3;\n",
    }  # fmt: skip
    answer = owner_client.post(reverse("redeploy", args=[worker.code]), posted)
    assert answer.status_code == 302
    newest = worker.deployments.first()
    assert newest.files == {
        "index.ts": INDEX, "lib.ts": fixed, "lib/extra.ts": "export const extra = 2;\n",
        "lib/more.ts": "export const more = 3;\n",
    }  # fmt: skip
    # A new file without a path, or over an existing one, is refused, and what was typed
    # (in every slot) comes back in the editor.
    refused = owner_client.post(
        reverse("redeploy", args=[worker.code]),
        {**posted, "p1": "lib.ts", "new_path_2": "", "new_text_2": "export const lost = 1;\n",
         "new_path_3": "lib.ts"},
    )  # fmt: skip
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "New file 2 has content but no path" in text
    assert "export const lost = 1;" in text and 'value="lib/extra.ts"' in text


def test_the_overview_shows_health_at_a_glance(owner_client, worker, tenant):
    import json
    from datetime import timedelta

    from django.utils import timezone

    from telemetry.ingest import store_runtime_batch
    from telemetry.metrics import bucket, bucket_middle

    deployment = Deployment.objects.create(
        worker=worker, tenant=tenant, source=GREETER, status="ready", functions=["hello"]
    )
    other = Worker.objects.create(tenant=tenant, name="other")
    elsewhere = Deployment.objects.create(worker=other, tenant=tenant, source=GREETER)
    now = timezone.now()
    made = [
        (deployment, "ok", 10.0, now - timedelta(minutes=5)),
        (deployment, "ok", 20.0, now - timedelta(minutes=4)),
        (deployment, "error", 30.0, now - timedelta(hours=2)),
        (deployment, "ok", 40.0, now - timedelta(hours=3)),
        (deployment, "error", 99.0, now - timedelta(hours=30)),  # older than a day
        (elsewhere, "error", 50.0, now),  # another worker's
    ]
    calls = [
        {"requestId": f"req_{n}", "deploymentId": str(d.code), "function": "hello",
         "status": status, "statusCode": 200 if status == "ok" else 500, "durationMs": ms,
         "startedAt": at.isoformat()}
        for n, (d, status, ms, at) in enumerate(made)
    ]  # fmt: skip
    store_runtime_batch(json.dumps({"invocations": calls}).encode())  # as the runtime reports
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert "<dt>Invocations</dt><dd>4</dd>" in page
    assert '<dt>Errors</dt><dd class="bad">1 (25.0%)</dd>' in page
    # Percentiles from the duration histograms: the middle of the bucket of 20 and of 40 ms.
    p50, p95 = (f"{bucket_middle(bucket(ms)):.1f}" for ms in (20.0, 40.0))
    assert f'<dt>Duration p50 / p95</dt><dd title="within about 12 %">{p50} / {p95} ms</dd>' in page
    assert page.count('<span class="hour"') == 24
    assert 'style="height: 100%"></span><span class="failed" style="height: 0%"' in page  # 2 calls
    assert 'title="' in page and ": 1 calls, 1 errors" in page
    quiet = owner_client.get(reverse("worker", args=[other.code])).content.decode()
    assert "<dt>Invocations</dt><dd>1</dd>" in quiet


def test_pinned_packages_are_read_from_the_lockfile_whatever_their_names():
    lock = {
        "npm": {
            "string_decoder@1.3.0": {},
            "@types/node@22.1.0": {},
            "react-dom@19.0.0_react@19.0.0": {},  # a peer variant: the version is 19.0.0
        },
        "jsr": {"@std/path@1.0.0": {}},
    }
    assert Deployment(lockfile=json.dumps(lock)).packages == [
        {"name": "@types/node", "version": "22.1.0", "registry": "npm"},
        {"name": "react-dom", "version": "19.0.0", "registry": "npm"},
        {"name": "string_decoder", "version": "1.3.0", "registry": "npm"},
        {"name": "@std/path", "version": "1.0.0", "registry": "jsr"},
    ]
