"""Checksums: multihash (STAC ``file:checksum``), MD5, BLAKE3 and SHA-256 of files (pure + local reads)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from territoire_geo.errors import DataError

__all__ = ["file_digest", "hasher_for_multihash", "parse_multihash", "sha256_file", "to_multihash"]

# multihash code -> hashlib name (https://github.com/multiformats/multicodec, table.csv)
_MULTIHASH = {0x11: "sha1", 0x12: "sha256", 0x13: "sha512", 0x14: "sha3_512", 0x16: "sha3_256",
              0xD5: "md5", 0x1E: "blake3"}
CHUNK = 1 << 20


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def parse_multihash(text: str) -> tuple[str, str]:
    """Split a hex multihash into (algorithm, hex digest).

    Examples
    --------
    >>> parse_multihash("1220" + "00" * 32)[0]
    'sha256'
    """
    try:
        raw = bytes.fromhex(text.strip())
        code, pos = _varint(raw, 0)
        length, pos = _varint(raw, pos)
    except ValueError as exc:
        raise DataError(f"checksum {text[:20]}… is not a hex multihash") from exc
    algorithm = _MULTIHASH.get(code)
    digest = raw[pos:]
    if algorithm is None or len(digest) != length:
        raise DataError(f"checksum {text[:20]}… uses an unsupported or malformed multihash (code {code:#x})")
    return algorithm, digest.hex()


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def to_multihash(algorithm: str, hex_digest: str) -> str:
    """A hex multihash from an algorithm name (``MD5``, ``BLAKE3``, ``SHA256``…) and a hex digest.

    The inverse of :func:`parse_multihash`; hubs publish bare digests, STAC
    ``file:checksum`` wants multihashes.

    Raises
    ------
    DataError
        If the algorithm is not supported or the digest is not hex.

    Examples
    --------
    >>> to_multihash("MD5", "00" * 16)[:6]
    'd50110'
    """
    name = algorithm.strip().lower().replace("-", "_")
    name = {"sha_256": "sha256", "sha_512": "sha512", "sha_1": "sha1"}.get(name, name)
    codes = {v: k for k, v in _MULTIHASH.items()}
    if name not in codes:
        raise DataError(f"checksum algorithm {algorithm!r} is not supported; use one of "
                        f"{', '.join(sorted(codes))}")
    try:
        digest = bytes.fromhex(hex_digest.strip())
    except ValueError as exc:
        raise DataError(f"{algorithm} checksum {hex_digest[:20]}… is not hexadecimal") from exc
    return (_encode_varint(codes[name]) + _encode_varint(len(digest)) + digest).hex()


def hasher_for_multihash(algorithm: str) -> Any:
    """A hashlib-like object for ``algorithm`` (blake3 needs the ``blake3`` package)."""
    if algorithm == "blake3":
        try:
            import blake3  # optional: only CDSE products carry BLAKE3 checksums
        except ImportError as exc:
            raise DataError("BLAKE3 checksums need the blake3 package: pip install blake3") from exc
        return blake3.blake3()
    return hashlib.new(algorithm)


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256",
                progress: Callable[[int], None] | None = None) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    hasher = hasher_for_multihash(algorithm)
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
            if progress:
                progress(len(chunk))
    return str(hasher.hexdigest())


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file."""
    return file_digest(path, "sha256")
