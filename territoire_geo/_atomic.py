"""The one way territoire_geo writes a file: temporary name, fsync, rename, cleanup, ExportError.

Every writer of the library (GeoPackage, GeoParquet, COG, Zarr, CSV, HTML, JSON,
PNG, the run manifest, cached downloads) writes its bytes under a temporary name
beside the target, flushes them to disk and renames the temporary into place, so
a reader never sees a half-written file under a final name, whatever happens to
the process (Ctrl-C, kill, full disk, power cut after the rename). A failed write
leaves nothing behind but, at worst, the temporary, and an operating-system error
becomes one :class:`~territoire_geo.errors.ExportError` that says what to do.

>>> with atomic_path(Path("out/table.csv")) as tmp:  # doctest: +SKIP
...     frame.to_csv(tmp)
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from territoire_geo.errors import ExportError

__all__ = [
    "atomic_path",
    "commit",
    "discard",
    "ensure_new",
    "export_error",
    "temp_path",
    "write_bytes",
    "write_text",
]

#: Marker of temporary names: ``scores.csv.part``, ``zonage.part.gpkg``.
PART = ".part"


def ensure_new(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """``path`` as a Path, refusing an existing one unless ``overwrite`` is true.

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false.
    """
    target = Path(path)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise ExportError(f"{target} already exists; pass --overwrite to replace it")
    return target


def export_error(target: object, exc: OSError) -> ExportError:
    """The :class:`ExportError` a user reads for an operating-system error met while writing ``target``."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ExportError(f"disk full while writing {target}; free space and run again")
    if exc.errno == errno.EROFS:
        return ExportError(f"cannot write {target}: the folder is on a read-only file system; "
                           "choose another output folder")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ExportError(f"cannot write {target}: permission denied; choose a folder you can write to")
    return ExportError(f"cannot write {target}: {exc.strerror or exc}")


def temp_path(target: Path, *, keep_suffix: bool = False, private: bool = False) -> Path:
    """The temporary name ``target`` is written under before the rename.

    Parameters
    ----------
    target
        The final path.
    keep_suffix
        Keep the extension last (``zonage.part.gpkg``) for writers that choose the
        format from it (GDAL drivers, matplotlib); otherwise ``scores.csv.part``.
    private
        Add the process id (``30014.geojson.1234.part``) where several processes may
        write the same target at once (a shared cache): each writes its own
        temporary, and the last rename wins with a complete file.
    """
    tag = f".{os.getpid()}{PART}" if private else PART
    name = f"{target.stem}{tag}{target.suffix}" if keep_suffix else f"{target.name}{tag}"
    return target.with_name(name)


def discard(path: Path) -> None:
    """Remove a temporary file or folder if it is there (never follows a symbolic link; best effort)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):  # nothing there, or its folder is not one: nothing to clean
            path.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a platform without directory handles: nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders; the rename is still atomic
        pass
    finally:
        os.close(fd)


def commit(tmp: Path, target: Path) -> Path:
    """Move a complete temporary file or folder onto ``target`` with renames only.

    The file's bytes are flushed to disk first (a folder, such as a Zarr store, is
    flushed as a folder); an existing ``target`` folder is moved aside, replaced,
    then removed; the parent folder is flushed so that the rename survives a crash.

    Raises
    ------
    OSError
        As the operating system reports it (callers inside :func:`atomic_path`
        get an :class:`ExportError`).
    """
    if tmp.is_dir():
        _fsync_folder(tmp)
    else:
        _fsync_file(tmp)
    old = None
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f"{target.name}.old.{os.getpid()}")
        discard(old)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        discard(old)
    _fsync_folder(target.parent)
    return target


@contextmanager
def atomic_path(target: str | os.PathLike[str], *, keep_suffix: bool = False,
                private: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; rename it onto ``target`` when the block ends without error.

    The parent folder is created; a temporary left by an earlier crash is removed
    first; on any error the temporary is removed and an ``OSError`` becomes an
    :class:`ExportError` naming ``target``. The caller decides beforehand whether
    an existing ``target`` may be replaced (:func:`ensure_new`).

    Parameters
    ----------
    target
        The final file or folder.
    keep_suffix, private
        See :func:`temp_path`.

    Raises
    ------
    ExportError
        The disk is full, read-only or not writable, or any other write error.
    """
    final = Path(target)
    tmp = temp_path(final, keep_suffix=keep_suffix, private=private)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        discard(tmp)
        yield tmp
        commit(tmp, final)
    except OSError as exc:
        raise export_error(final, exc) from exc
    finally:
        discard(tmp)


def write_bytes(target: str | os.PathLike[str], payload: bytes, *, private: bool = False) -> Path:
    """Write ``payload`` to ``target`` atomically; the target path.

    Raises
    ------
    ExportError
        As :func:`atomic_path`.
    """
    with atomic_path(target, private=private) as tmp:
        tmp.write_bytes(payload)
    return Path(target)


def write_text(target: str | os.PathLike[str], text: str, *, private: bool = False) -> Path:
    """Write ``text`` as UTF-8 to ``target`` atomically; the target path.

    Raises
    ------
    ExportError
        As :func:`atomic_path`.
    """
    return write_bytes(target, text.encode("utf-8"), private=private)
