"""What of a folder is a worker's program: every regular text file but hidden ones and what
tools and package managers leave behind. The platform reads folders with this same module
(`manage.py deploy <dir>`), so the CLI uploads exactly what a deploy on the server would."""

import gzip
import io
import os
import tarfile
from pathlib import Path

# Not part of a worker's program: what tools and package managers leave in a directory.
SKIPPED = frozenset({"node_modules", ".git", "deno.lock", "package-lock.json", ".DS_Store"})
MAX_FILES = 1000


class PackError(ValueError):
    """The folder cannot be uploaded as it is; the message says what to change."""


def skipped(name: str) -> bool:
    # Hidden files stay home: .env holds local secrets, .git the history.
    return name in SKIPPED or name.startswith(".")


def read_folder(root: Path, max_files: int = MAX_FILES) -> dict[str, str]:
    """Path (relative, with /) -> text of every file of the program; links refused."""
    root = Path(root)
    if not root.is_dir():
        raise PackError(f"{root} is not a folder.")
    files: dict[str, str] = {}
    for folder, subfolders, names in os.walk(root, followlinks=False):
        here = Path(folder)
        # Pruned, not just filtered: a node_modules of 100,000 files is never walked.
        for name in list(subfolders):
            if skipped(name):
                subfolders.remove(name)
            elif (here / name).is_symlink():
                raise PackError(
                    f"{(here / name).relative_to(root)} is a link: only regular files are deployed."
                )
        subfolders.sort()
        for name in sorted(names):
            if skipped(name):
                continue
            path = here / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise PackError(f"{relative} is a link: only regular files are deployed.")
            if not path.is_file():
                continue
            if len(files) >= max_files:
                raise PackError(f"More than {max_files} files under {root}.")
            try:
                files[relative] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise PackError(
                    f"{relative} is not UTF-8 text: only text files are deployed."
                ) from exc
    if not files:
        raise PackError(f"No files under {root}.")
    return dict(sorted(files.items()))


def archive(files: dict[str, str]) -> bytes:
    """The files as a .tar.gz, the same bytes for the same files (no times, owners or modes)."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as packed,
    ):
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            packed.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
