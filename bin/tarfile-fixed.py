"""Exits 0 when this interpreter's tarfile has the fix for CVE-2024-6232 (a PAX header parsed
in quadratic time), 1 when not. A version number cannot tell: Debian backports the fix to
3.11.2, while 3.11.7 from elsewhere lacks it. bin/setup uses it to choose .venv's Python."""

import io
import sys
import tarfile

body = b"1" * 4000  # digits without a space: a fixed parser refuses, a vulnerable one reads on
header = tarfile.TarInfo("h")
header.type, header.size = tarfile.XHDTYPE, len(body)
member = tarfile.TarInfo("a")
data = (
    header.tobuf(format=tarfile.USTAR_FORMAT)
    + body.ljust(4096, b"\0")
    + member.tobuf(format=tarfile.USTAR_FORMAT)
    + b"\0" * 1024
)
try:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.getmembers()
except tarfile.ReadError:
    sys.exit(0)
sys.exit(1)
