"""Hostile archives: each bomb is refused with a message that says what it did, by every door
(the JSON API, the portal's upload, `manage.py deploy`), in a process of its own with CPU and
memory limits; the next tenant's ordinary upload is served right after."""

import base64
import io
import json
import os
import signal
import struct
import subprocess
import tarfile
import zipfile
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from deployments import program
from deployments.program import ProgramError, ProgramTooLarge, program_from_archive
from workers.api_keys import issue_key
from workers.models import Worker

from .helpers import GREETER


def tar_gz(members: list[tarfile.TarInfo | tuple[str, bytes]], fmt=tarfile.PAX_FORMAT) -> bytes:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz", format=fmt) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return packed.getvalue()


def pax_bomb(digits: int) -> bytes:
    """A .tar.gz whose first header is a PAX extended header of `digits` digits (CVE-2024-6232:
    quadratic to parse on unfixed interpreters), then an ordinary module."""
    body = b"1" * digits
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(body)
    module = GREETER.encode()
    entry = tarfile.TarInfo("index.ts")
    entry.size = len(module)
    raw = (
        header.tobuf(format=tarfile.USTAR_FORMAT)
        + body.ljust(-(-len(body) // 512) * 512, b"\0")
        + entry.tobuf(format=tarfile.USTAR_FORMAT)
        + module.ljust(512, b"\0")
        + b"\0" * 1024
    )
    return gzip_stream(raw)


def gzip_stream(raw: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(raw) + compressor.flush()


def zero_bomb(size: int) -> bytes:
    """A .tar.gz holding one file of `size` zero bytes, compressed as a stream (about 1,000:1)."""
    header = tarfile.TarInfo("index.ts")
    header.size = size
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(header.tobuf(format=tarfile.USTAR_FORMAT))]
    chunk = b"\0" * (1 << 20)
    for _ in range(size >> 20):
        out.append(compressor.compress(chunk))
    out.append(compressor.compress(b"\0" * 1024))
    out.append(compressor.flush())
    return b"".join(out)


def overlapping_zip(copies: int, member_bytes: int) -> bytes:
    """A .zip whose central directory lists one deflated member `copies` times under one name,
    all pointing at the same bytes: tiny to send, `copies` x `member_bytes` to unpack."""
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.ts", b"/" * member_bytes)
    data = packed.getvalue()
    eocd = data.rindex(b"PK\x05\x06")
    size, offset = struct.unpack("<II", data[eocd + 12 : eocd + 20])
    record = data[offset : offset + size]
    directory = record * copies
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, len(directory), offset, 0)
    return data[:offset] + directory + end


@pytest.fixture
def deploy_api(tenant):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issue_key(tenant, 'ci', ['deploy', 'read'])[1]}")

    def deploy(name: str, archive: bytes):
        body = {"name": name, "archive": base64.b64encode(archive).decode()}
        return client.post("/api/workers", json.dumps(body), content_type="application/json")

    return deploy


def assert_still_served(other_tenant):
    """Another tenant deploys an ordinary archive right after: it is read as usual."""
    client = Client(
        HTTP_AUTHORIZATION=f"Bearer {issue_key(other_tenant, 'ci', ['deploy', 'read'])[1]}"
    )
    body = {
        "name": "fine",
        "archive": base64.b64encode(tar_gz([("index.ts", GREETER.encode())])).decode(),
    }
    answer = client.post("/api/workers", json.dumps(body), content_type="application/json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["deployment"]["status"] == "queued"


def test_pax_header_bomb_of_tens_of_megabytes_is_cut_while_decompressing(deploy_api, other_tenant):
    bomb = pax_bomb(30_000_000)
    assert len(bomb) < 100_000  # about 30 KB on the wire
    answer = deploy_api("pax", bomb)
    assert answer.status_code == 413
    assert answer.json()["error"]["message"].endswith("bytes, more than a worker may hold.")
    assert_still_served(other_tenant)


def test_pax_header_bomb_within_the_size_is_refused_before_the_parser_reads_it(
    deploy_api, other_tenant
):
    answer = deploy_api("pax", pax_bomb(1_000_000))
    assert answer.status_code == 202
    deployment = answer.json()["deployment"]
    assert deployment["status"] == "error"
    assert deployment["errorMessage"] == (
        "The archive has an extended header of 1000000 bytes; the limit is 65536 bytes "
        "(real ones are a few hundred)."
    )
    assert_still_served(other_tenant)


def test_zip_listing_one_member_thousands_of_times_is_refused(deploy_api, other_tenant):
    bomb = overlapping_zip(2_000, 1_000_000)
    assert len(bomb) < 200_000
    answer = deploy_api("zipbomb", bomb)
    assert answer.status_code == 413
    assert answer.json()["error"]["message"] == (
        "The archive has 2000 entries; at most 816 (files and folders) are read."
    )
    # Fewer copies, within the count: the overlap is what refuses them.
    answer = deploy_api("zipbomb", overlapping_zip(400, 1_000_000))
    assert answer.status_code == 202
    deployment = answer.json()["deployment"]
    assert deployment["status"] == "error"
    assert deployment["errorMessage"] == (
        "index.ts and index.ts: entries of the archive overlap (a zip bomb's trick); "
        "pack the files again with an ordinary zip tool."
    )
    assert_still_served(other_tenant)


def test_zip_with_a_name_twice_is_refused():
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("index.ts", GREETER)
        archive.writestr("index.ts", "export const evil = 1;")
    with pytest.raises(ProgramError, match=r"^index.ts is in the archive twice"):
        program_from_archive(packed.getvalue())


def test_tar_with_a_name_twice_is_refused():
    archive = tar_gz([("index.ts", GREETER.encode()), ("./index.ts", b"export const e = 1;")])
    with pytest.raises(ProgramError, match=r"^index.ts is in the archive twice"):
        program_from_archive(archive)


def test_gzip_bomb_is_cut_at_the_limit(deploy_api, settings, other_tenant):
    bomb = zero_bomb(200 * 1024 * 1024)
    assert len(bomb) < 300_000
    answer = deploy_api("gzbomb", bomb)
    assert answer.status_code == 413
    message = answer.json()["error"]["message"]
    assert message.startswith("The archive unpacks to more than ")
    assert message.endswith("bytes, more than a worker may hold.")
    assert_still_served(other_tenant)


def test_many_small_files_over_the_total_are_refused(settings):
    settings.MAX_SOURCE_BYTES = 10_000
    files = [(f"f{n}.ts", b"/" * 3000) for n in range(5)]
    with pytest.raises(ProgramTooLarge, match="hold more than 10000 bytes"):
        program_from_archive(tar_gz(files))


def test_tar_of_endless_folders_is_refused(settings):
    folders = []
    for n in range(2_000):
        info = tarfile.TarInfo(f"d{n}")
        info.type = tarfile.DIRTYPE
        folders.append(info)
    with pytest.raises(ProgramTooLarge, match=r"^The archive has more than 816 entries\.$"):
        program_from_archive(tar_gz([*folders, ("index.ts", GREETER.encode())]))


def test_a_path_longer_than_a_path_may_be_is_refused():
    long = "a/" * 300 + "index.ts"
    with pytest.raises(ProgramError, match="longer than 512 bytes"):
        program_from_archive(tar_gz([(long, GREETER.encode())]))


def test_the_unpacker_runs_under_its_own_memory_limit(monkeypatch):
    """With too little memory for the unpacking process, the archive is refused: the limit is
    the process's own, not this one's."""
    monkeypatch.setattr(program, "UNPACK_MEMORY_BYTES", 0)
    text = base64.b64encode(os.urandom(600_000))  # does not compress
    with pytest.raises(ProgramTooLarge, match="needs more memory to unpack than it may"):
        program_from_archive(tar_gz([("index.ts", text)]))


def test_an_unpacker_stopped_for_cpu_says_so():
    stopped = subprocess.CompletedProcess([], -signal.SIGXCPU, b"", b"")
    with pytest.raises(ProgramError, match="needed more than 5 s of CPU to unpack"):
        program._answer_of(stopped)


def test_an_ordinary_archive_still_unpacks():
    got = program_from_archive(
        tar_gz([("app/index.ts", GREETER.encode()), ("app/lib/a.ts", b"export const a = 1;")])
    )
    assert got.files == {"index.ts": GREETER, "lib/a.ts": "export const a = 1;"}


def test_portal_upload_of_a_bomb_says_why_and_deploys_nothing(owner_client, worker):
    url = reverse("redeploy", args=[worker.code])
    bomb = SimpleUploadedFile("w.zip", overlapping_zip(500, 100_000))
    answer = owner_client.post(url, {"source": "", "upload": [bomb]})
    assert answer.status_code == 400
    assert "entries of the archive overlap" in answer.content.decode()
    assert worker.deployments.count() == 0


def test_portal_upload_larger_than_any_upload_is_refused_before_it_is_read(
    owner_client, worker, settings
):
    settings.MAX_UPLOAD_BYTES = 50_000
    url = reverse("redeploy", args=[worker.code])
    huge = SimpleUploadedFile("w.tar.gz", b"\0" * 60_000)
    answer = owner_client.post(url, {"source": "", "upload": [huge]})
    assert answer.status_code == 413
    assert "at most 50000 bytes may be sent at once" in answer.content.decode()
    assert worker.deployments.count() == 0


def test_manage_py_deploy_refuses_a_bomb(tmp_path, tenant):
    path = tmp_path / "w.tar.gz"
    path.write_bytes(pax_bomb(1_000_000))
    with pytest.raises(CommandError, match="extended header of 1000000 bytes"):
        call_command("deploy", tenant.slug, "bomb", str(path))
    assert not Worker.objects.filter(tenant=tenant, name="bomb").exists()
