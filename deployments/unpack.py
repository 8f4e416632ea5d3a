"""Unpacks a tenant's .tar.gz or .zip into text files, bounded in every way an archive can
lie: decompressed bytes, entries, name lengths, extended headers, duplicate names and zip
entries that overlap.

It runs as its own process (`python -I -S unpack.py LIMITS` with the archive on stdin and
JSON on stdout), which puts CPU, memory and file limits on itself before it reads a byte:
whatever a hostile archive does to the parsers here (CVE-2024-6232's quadratic PAX header
parsing holds the GIL), it does to this process, never to the web process. Standard library
only, no Django: it starts in about 20 ms.
"""

import io
import json
import resource
import sys
import tarfile
import zipfile
import zlib

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
MAX_EXTENDED_HEADER = 64 * 1024  # a PAX or GNU long-name header; real ones are < 1 KB
MAX_NAME_BYTES = 512
BLOCK = 512


class Refused(Exception):
    """The archive is not accepted; the message says why, for the tenant."""

    def __init__(self, message: str, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


def unpack(data: bytes, max_bytes: int, max_files: int) -> dict[str, str]:
    """name -> text for each regular file; Refused for anything else."""
    if data[:4] == ZIP_MAGIC:
        return _from_zip(data, max_bytes, max_files)
    if data[:2] != GZIP_MAGIC:
        raise Refused(
            "The archive could not be read as .tar.gz or .zip: its first bytes are neither's."
        )
    # Folders and headers are entries too; files are counted again, exactly, below.
    max_entries = max_files * 4 + 16
    tar = _gunzip(data, max_bytes + max_entries * 2 * BLOCK + 2 * BLOCK * 10)
    return _from_tar(tar, max_bytes, max_files, max_entries)


def _gunzip(data: bytes, cap: int) -> bytes:
    """Decompresses as a stream and stops at `cap` bytes, whatever the header claims."""
    out = bytearray()
    rest = data
    try:
        while rest:
            stream = zlib.decompressobj(wbits=31)
            chunk = stream.decompress(rest, cap + 1 - len(out))
            out += chunk
            while stream.unconsumed_tail and len(out) <= cap:
                out += stream.decompress(stream.unconsumed_tail, cap + 1 - len(out))
            if len(out) > cap:
                raise Refused(
                    f"The archive unpacks to more than {cap} bytes, more than a worker may hold.",
                    too_large=True,
                )
            if not stream.eof:
                raise Refused("The .tar.gz is cut short (its compressed stream does not end).")
            rest = stream.unused_data.lstrip(b"\0")  # members of a multi-member gzip
    except zlib.error as exc:
        raise Refused(f"The archive could not be read as .tar.gz: {exc}") from exc
    return bytes(out)


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile's own header parser, refusing oversized extended headers before it reads them
    (so the check and the parser can never disagree about where a header is)."""

    def _proc_pax(self, archive):
        _check_extended(self)
        return super()._proc_pax(archive)

    def _proc_gnulong(self, archive):
        _check_extended(self)
        return super()._proc_gnulong(archive)


def _check_extended(info: tarfile.TarInfo) -> None:
    if info.size > MAX_EXTENDED_HEADER:
        raise Refused(
            f"The archive has an extended header of {info.size} bytes; the limit is "
            f"{MAX_EXTENDED_HEADER} bytes (real ones are a few hundred)."
        )


def _from_tar(tar: bytes, max_bytes: int, max_files: int, max_entries: int) -> dict[str, str]:
    files: dict[str, str] = {}
    total = entries = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:", tarinfo=_BoundedTarInfo) as archive:
            while (member := archive.next()) is not None:
                entries += 1
                if entries > max_entries:
                    raise Refused(f"The archive has more than {max_entries} entries.", True)
                _check_name(member.name)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise Refused(
                        f"{member.name}: the archive may hold only regular files and folders "
                        "(no links or devices)."
                    )
                total += member.size
                _check_counts(member.name, files, total, max_bytes, max_files)
                raw = archive.extractfile(member).read(member.size)
                files[_name(member.name)] = _text(member.name, raw)
                archive.members.clear()  # nothing to look back at: keep memory flat
    except (tarfile.TarError, EOFError) as exc:
        raise Refused(f"The archive could not be read as .tar.gz: {exc}") from exc
    return files


def _from_zip(data: bytes, max_bytes: int, max_files: int) -> dict[str, str]:
    files: dict[str, str] = {}
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > (most := max_files * 4 + 16):
                raise Refused(
                    f"The archive has {len(members)} entries; at most {most} (files and "
                    "folders) are read.",
                    too_large=True,
                )
            _check_no_overlap(members)
            for member in members:
                _check_name(member.filename)
                if member.is_dir() or member.filename.startswith("__MACOSX/"):
                    continue
                if (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise Refused(f"{member.filename}: the archive may not hold links.")
                total += member.file_size
                _check_counts(member.filename, files, total, max_bytes, max_files)
                with archive.open(member) as stream:
                    # zipfile stops at the declared size and checks the CRC at the end.
                    raw = stream.read(member.file_size + 1)
                if len(raw) != member.file_size:
                    raise Refused(f"{member.filename}: its size is not the one the archive says.")
                files[_name(member.filename)] = _text(member.filename, raw)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise Refused(f"The archive could not be read as .zip: {exc}") from exc
    return files


def _check_no_overlap(members: list[zipfile.ZipInfo]) -> None:
    """Each entry's data must lie apart from every other's (a zip whose entries share their
    compressed bytes multiplies them without limit)."""
    ordered = sorted(members, key=lambda m: m.header_offset)
    for this, following in zip(ordered, ordered[1:], strict=False):
        # The local header is at least 30 bytes plus the name, then the compressed data.
        end = this.header_offset + 30 + len(this.orig_filename.encode()) + this.compress_size
        if end > following.header_offset:
            raise Refused(
                f"{this.filename} and {following.filename}: entries of the archive overlap "
                "(a zip bomb's trick); pack the files again with an ordinary zip tool."
            )


def _check_name(name: str) -> None:
    if len(name.encode(errors="replace")) > MAX_NAME_BYTES:
        raise Refused(f"{name[:60]}…: a path in the archive is longer than {MAX_NAME_BYTES} bytes.")


def _name(raw: str) -> str:
    return raw.removeprefix("./")


def _check_counts(name: str, files: dict, total: int, max_bytes: int, max_files: int) -> None:
    if _name(name) in files:
        raise Refused(f"{_name(name)} is in the archive twice; each path may appear once.")
    if len(files) >= max_files:
        raise Refused(f"The archive has more than {max_files} files.", too_large=True)
    if total > max_bytes:
        raise Refused(
            f"The files in the archive hold more than {max_bytes} bytes (with {name}): "
            f"the limit for all files together is {max_bytes} bytes.",
            too_large=True,
        )


def _text(name: str, raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise Refused(f"{name} is not UTF-8 text: only text files are accepted.") from exc


def _limit_self(cpu_seconds: int, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # it writes no file
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> int:
    max_bytes, max_files, cpu_seconds, memory_bytes = (int(a) for a in sys.argv[1:5])
    _limit_self(cpu_seconds, memory_bytes)
    data = sys.stdin.buffer.read()
    try:
        answer = {"files": unpack(data, max_bytes, max_files)}
    except Refused as exc:
        answer = {"error": str(exc), "tooLarge": exc.too_large}
    except MemoryError:
        answer = {"error": "The archive needs more memory to unpack than it may.", "tooLarge": True}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
