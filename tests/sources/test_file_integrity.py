"""Structural completeness of TIFF/BigTIFF and JPEG 2000 files (``territoire_geo.sources``).

Real files (the sample COGs, the test rasters, files written here by GDAL) say complete,
with the furthest byte GDAL itself reports for their blocks; the same files cut anywhere
say incomplete; hostile files get a verdict with bounded work and memory; any bytes give
a verdict, never an exception. The download path that uses it (a short ``Content-Length``
on an asset without checksum or size) is also exercised here for JPEG 2000 and for a
truncated file cached by an older version; TIFF fetches are in ``test_faults.py``.
"""

from __future__ import annotations

import math
import shutil
import struct
import tempfile
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from _servers import Fault, RangeHTTPServer
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

from territoire_geo.config import Settings
from territoire_geo.sources import HttpClient, _file_integrity
from territoire_geo.sources._file_integrity import Integrity, check_file
from territoire_geo.sources.download import download

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
SAMPLE_TIFS = sorted((REPO / "data_samples").rglob("*.tif"))
BAD = REPO / "tests" / "data" / "bad"
TRUNCATED = {BAD / "rasters" / "truncated_cog.tif", BAD / "catalogs" / "truncated_band" / "item" / "red.tif"}
TEST_TIFS = sorted(set((REPO / "tests" / "data").rglob("*.tif")) - TRUNCATED - {BAD / "rasters" / "corrupt.tif"})
SHARED_RASTERS = sorted((REPO.parent / "shared" / "data" / "real" / "raster").glob("*.tif"))
COG = REPO / "data_samples" / "stac" / "sentinel-2-l2a" / "S2A_T31TFJ_20220414T103021_L2A" / "red.tif"
FAST = Settings(http_retries=3, http_backoff=0.01, http_timeout=5)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def _ids(paths: list[Path]) -> list[str]:
    return [p.relative_to(p.parents[2]).as_posix() for p in paths]


def _gdal_blocks(path: Path) -> tuple[int, int, int]:
    """Of the blocks of every band and overview, as GDAL reports them: the first offset, the furthest
    ``offset + size`` and the offset of the block that ends there."""
    with rasterio.open(path) as ds:
        levels: list[int | None] = [None, *range(len(ds.overviews(1)))]
    first, end, last = path.stat().st_size, 0, 0
    for level in levels:
        with rasterio.open(path, **({} if level is None else {"OVERVIEW_LEVEL": level})) as ds:
            for band, (height, width) in enumerate(ds.block_shapes, start=1):
                for row in range(math.ceil(ds.height / height)):
                    for col in range(math.ceil(ds.width / width)):
                        offset = ds.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band)
                        size = ds.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band)
                        if offset and size and int(offset) and int(size):
                            first = min(first, int(offset))
                            if int(offset) + int(size) > end:
                                end, last = int(offset) + int(size), int(offset)
    return first, end, last


def _cut(source: Path | bytes, length: int, folder: Path) -> Path:
    """A copy of ``source`` (a file or bytes) keeping its first ``length`` bytes."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    out = folder / f"cut-{length}.bin"
    out.write_bytes(data[:length])
    return out


def _write(folder: Path, name: str, driver: str = "GTiff", overviews: bool = False, **options: object) -> Path:
    """A 3-band uint16 raster written by GDAL (noise, so that compressed blocks have different sizes)."""
    data = np.random.default_rng(7).integers(0, 4000, (3, 300, 400)).astype("uint16")
    path = folder / name
    with rasterio.open(path, "w", driver=driver, width=400, height=300, count=3, dtype="uint16", crs="EPSG:2154",
                       transform=from_origin(800_000, 6_300_000, 10, 10), **options) as ds:
        ds.write(data)
        if overviews:
            ds.build_overviews([2, 4])
    return path


# ============================================================================ real files


@pytest.mark.parametrize("path", SAMPLE_TIFS + TEST_TIFS + SHARED_RASTERS, ids=_ids(SAMPLE_TIFS + TEST_TIFS + SHARED_RASTERS))
def test_real_tiffs_are_complete_and_need_what_gdal_reports(path: Path) -> None:
    verdict = check_file(path)
    assert verdict.complete is True, verdict
    assert verdict.format == "tiff" and verdict.actual_bytes == path.stat().st_size
    assert verdict.needed_bytes == _gdal_blocks(path)[1]  # GDAL COGs end with a 4-byte block trailer
    assert verdict.needed_bytes <= verdict.actual_bytes


@pytest.mark.parametrize("path", sorted(TRUNCATED), ids=_ids(sorted(TRUNCATED)))
def test_truncated_test_rasters_are_incomplete(path: Path) -> None:
    verdict = check_file(path)
    assert verdict.complete is False and verdict.needed_bytes is not None
    assert verdict.needed_bytes > verdict.actual_bytes == path.stat().st_size
    assert "tile data of IFD 0 ends at byte" in verdict.reason


def test_corrupt_tiff_is_incomplete_not_an_exception() -> None:
    verdict = check_file(BAD / "rasters" / "corrupt.tif")  # TIFF magic + 4096 random bytes
    assert verdict.complete is False and verdict.needed_bytes > verdict.actual_bytes


def _first_ifd(path: Path) -> int:
    head = path.read_bytes()[:16]
    endian = "<" if head[:2] == b"II" else ">"
    return struct.unpack(endian + "Q", head[8:16])[0] if head[2:4] in (b"+\x00", b"\x00+") else \
        struct.unpack(endian + "I", head[4:8])[0]


def _check_cuts(path: Path, folder: Path, *, ifds_first: bool = True) -> None:
    """Cut ``path`` just before its end, in its last block, mid-data, in its first IFD and in its header.

    Cut inside the last block, the need is exactly the end of that block. Cut mid-data, it
    is too when every IFD comes before the data (a COG); otherwise (overviews added to a
    plain GeoTIFF) it is at least the end of an IFD the cut file no longer holds.
    """
    full = check_file(path)
    assert full.complete is True and full.needed_bytes is not None
    needed = full.needed_bytes
    first_block, end, last_block = _gdal_blocks(path)
    assert end == needed
    for length in (needed - 1, last_block + 1, first_block + (needed - first_block) // 2):
        verdict = check_file(_cut(path, length, folder))
        assert verdict.complete is False and length < verdict.needed_bytes <= needed, verdict
        if ifds_first or length > last_block:
            assert (verdict.needed_bytes, verdict.actual_bytes) == (needed, length), verdict
            assert "data of IFD" in verdict.reason
    first_ifd = _first_ifd(path)
    for length in (first_ifd + 5, first_ifd + 30, 7):  # inside the first IFD, then inside the header
        verdict = check_file(_cut(path, length, folder))
        assert verdict.complete is False and length < verdict.needed_bytes <= needed, verdict
    assert check_file(_cut(path, 3, folder)).complete is None  # not even the magic number: no verdict


@pytest.mark.parametrize("name", ["S2A_T31TFJ_20220414T103021_L2A/red.tif", "S2B_T30UUT_20210716T103021_L2A/scl.tif"])
def test_sample_cogs_cut_anywhere_are_incomplete_with_the_right_need(name: str, tmp_path: Path) -> None:
    _check_cuts(REPO / "data_samples" / "stac" / "sentinel-2-l2a" / name, tmp_path)


def test_land_cover_with_two_overviews_cut_in_its_last_overview(tmp_path: Path) -> None:
    path = REPO / "data_samples" / "truth" / "land_cover.tif"
    _check_cuts(path, tmp_path)
    with rasterio.open(path, OVERVIEW_LEVEL=1) as ds:  # the smallest overview's first tile
        tile = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        tile_end = tile + int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    verdict = check_file(_cut(path, tile + 1, tmp_path))
    assert verdict.complete is False and verdict.needed_bytes >= tile_end


@pytest.mark.parametrize("options", [
    {"BIGTIFF": "YES", "tiled": True, "blockxsize": 128, "blockysize": 128, "compress": "deflate"},
    {"BIGTIFF": "YES", "ENDIANNESS": "BIG", "tiled": True, "blockxsize": 128, "blockysize": 128},
    {"ENDIANNESS": "BIG", "tiled": True, "blockxsize": 128, "blockysize": 128, "compress": "lzw"},
    {"ENDIANNESS": "BIG", "compress": "deflate"},  # strips
    {"interleave": "pixel", "compress": "deflate"},  # strips, pixel-interleaved
], ids=["bigtiff-le-tiled", "bigtiff-be-tiled", "tiff-be-tiled", "tiff-be-strips", "tiff-le-strips-pixel"])
def test_gdal_written_tiffs_complete_and_cut(options: dict[str, object], tmp_path: Path) -> None:
    path = _write(tmp_path, "written.tif", overviews="tiled" in options, **options)
    head = path.read_bytes()[:4]
    assert head[:2] == (b"MM" if options.get("ENDIANNESS") == "BIG" else b"II")
    verdict = check_file(path)
    assert verdict.format == ("bigtiff" if options.get("BIGTIFF") == "YES" else "tiff")
    assert verdict.complete is True and verdict.needed_bytes == _gdal_blocks(path)[1] == path.stat().st_size
    cuts = tmp_path / "cuts"
    cuts.mkdir()
    _check_cuts(path, cuts, ifds_first="tiled" not in options)  # overviews built after: their IFDs follow the data


def test_chunked_reading_gives_the_same_need(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _write(tmp_path, "tiles.tif", tiled=True, blockxsize=16, blockysize=16, compress="deflate")
    expected = check_file(path)
    assert expected.complete is True
    monkeypatch.setattr(_file_integrity, "CHUNK", 7)  # 1 425 tiles per band read 7 at a time
    assert check_file(path) == expected
    assert check_file(_cut(path, expected.needed_bytes - 1, tmp_path)).needed_bytes == expected.needed_bytes


# ============================================================================ crafted TIFFs


def _entry(endian: str, big: bool, tag: int, kind: int, count: int, value: int | bytes) -> bytes:
    """One IFD entry; an int ``value`` is an offset (or a LONG), bytes are the inline field."""
    word = 8 if big else 4
    field = value if isinstance(value, bytes) else struct.pack(endian + ("Q" if big else "I"), value)
    return struct.pack(endian + ("HHQ" if big else "HHI"), tag, kind, count) + field.ljust(word, b"\0")


def _ifd(endian: str, big: bool, entries: list[tuple[int, int, int, int | bytes]], next_ifd: int = 0) -> bytes:
    count = struct.pack(endian + ("Q" if big else "H"), len(entries))
    body = b"".join(_entry(endian, big, *e) for e in sorted(entries, key=lambda e: e[0]))
    return count + body + struct.pack(endian + ("Q" if big else "I"), next_ifd)


def _header(endian: str, big: bool, first_ifd: int) -> bytes:
    mark = b"II" if endian == "<" else b"MM"
    if big:
        return mark + struct.pack(endian + "HHHQ", 43, 8, 0, first_ifd)
    return mark + struct.pack(endian + "HI", 42, first_ifd)


def _gray_4x4(endian: str, big: bool = False, *, strip_offset: int | None = None, strip_bytes: int = 16,
              extra: list[tuple[int, int, int, int | bytes]] | None = None, next_ifd: int = 0) -> bytes:
    """A 4 × 4 8-bit grey image in one strip after its IFD (SHORTs inline, left-justified)."""
    short = [struct.pack(endian + "H", v) for v in (4, 4, 8, 1, 4)]
    head = 16 if big else 8
    entries: list[tuple[int, int, int, int | bytes]] = [
        (256, 3, 1, short[0]), (257, 3, 1, short[1]), (258, 3, 1, short[2]), (262, 3, 1, short[3]),
        (278, 3, 1, short[4]), (279, 4 if not big else 16, 1, strip_bytes), *(extra or [])]
    ifd_size = len(_ifd(endian, big, [*entries, (273, 4, 1, 0)]))
    data_at = head + ifd_size if strip_offset is None else strip_offset
    entries.append((273, 4 if not big else 16, 1, data_at))
    return _header(endian, big, head) + _ifd(endian, big, entries, next_ifd) + bytes(range(16))


@pytest.mark.parametrize(("endian", "big"), [(">", False), ("<", False), (">", True), ("<", True)],
                         ids=["tiff-be", "tiff-le", "bigtiff-be", "bigtiff-le"])
def test_minimal_crafted_tiff_reads_in_gdal_and_is_checked(endian: str, big: bool, tmp_path: Path) -> None:
    data = _gray_4x4(endian, big)
    path = tmp_path / "gray.tif"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:  # a real reader agrees the crafted file is a valid TIFF
            assert ds.read(1).ravel().tolist() == list(range(16))
    assert check_file(path) == Integrity(True, len(data), len(data), "1 IFD, every block inside the file",
                                         "bigtiff" if big else "tiff")
    for length in (len(data) - 1, len(data) - 16, 12):
        verdict = check_file(_cut(data, length, tmp_path))
        assert verdict.complete is False and verdict.needed_bytes > length
    assert check_file(_cut(data, len(data) - 1, tmp_path)).needed_bytes == len(data)


def _write_bytes(tmp_path: Path, data: bytes, name: str = "hostile.tif") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_ifd_loops_are_cut(tmp_path: Path) -> None:
    self_loop = _gray_4x4("<", next_ifd=8)  # the only IFD points at itself
    verdict = check_file(_write_bytes(tmp_path, self_loop))
    assert verdict.complete is True and verdict.needed_bytes == len(self_loop)
    two = _gray_4x4(">", next_ifd=len(_gray_4x4(">")))  # IFD 0 → IFD 1 → IFD 0 …
    second = _ifd(">", False, [(256, 3, 1, b"\x00\x04"), (273, 4, 1, 8 + 2 + 7 * 12 + 4), (279, 4, 1, 16)], 8)
    verdict = check_file(_write_bytes(tmp_path, two + second))
    assert verdict.complete is True and verdict.reason == "2 IFDs, every block inside the file"
    sub_loop = _gray_4x4("<", extra=[(330, 13, 1, 8)])  # a SubIFD pointing back to its parent
    assert check_file(_write_bytes(tmp_path, sub_loop)).complete is True


def test_subifds_are_walked(tmp_path: Path) -> None:
    base = _gray_4x4("<", extra=[(330, 4, 2, 0)])  # placeholder, fixed below
    sub_at = len(base)
    sub = _ifd("<", False, [(256, 3, 1, b"\x04\x00"), (273, 4, 1, 50_000), (279, 4, 1, 16)])
    data = _gray_4x4("<", extra=[(330, 4, 2, sub_at + len(sub))]) + sub + struct.pack("<II", sub_at, sub_at)
    verdict = check_file(_write_bytes(tmp_path, data))
    assert verdict.complete is False and verdict.needed_bytes == 50_016
    assert verdict.reason == "strip data of IFD 1 ends at byte 50016"


def test_offsets_past_the_end(tmp_path: Path) -> None:
    data = _gray_4x4("<", strip_offset=10_000, strip_bytes=300)
    verdict = check_file(_write_bytes(tmp_path, data))
    assert (verdict.complete, verdict.needed_bytes) == (False, 10_300)
    assert verdict.reason == "strip data of IFD 0 ends at byte 10300"
    past_ifd = _header("<", False, 1 << 31) + bytes(64)
    verdict = check_file(_write_bytes(tmp_path, past_ifd))
    assert (verdict.complete, verdict.needed_bytes) == (False, (1 << 31) + 2)
    values = _gray_4x4("<", extra=[(305, 2, 40, 5_000)])  # Software: 40 ASCII bytes out of line, past the end
    verdict = check_file(_write_bytes(tmp_path, values))
    assert (verdict.complete, verdict.needed_bytes) == (False, 5_040)
    assert verdict.reason == "the value of tag 305 in IFD 0 ends at byte 5040"


@pytest.mark.parametrize("kind", [16, 4, 3])
def test_absurd_counts_give_a_verdict_without_reading(kind: int, tmp_path: Path) -> None:
    size = {16: 8, 4: 4, 3: 2}[kind]
    big = kind == 16
    entries: list[tuple[int, int, int, int | bytes]] = [(324, kind, 2**40 if big else 2**32 - 1, 64),
                                                        (325, kind, 2**40 if big else 2**32 - 1, 128)]
    data = _header("<", big, 16 if big else 8) + _ifd("<", big, entries) + bytes(256)
    tracemalloc.start()
    verdict = check_file(_write_bytes(tmp_path, data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert verdict.complete is False and verdict.needed_bytes == 128 + size * entries[1][2]
    assert peak < 1 << 20
    huge_ifd = _header("<", True, 16) + struct.pack("<Q", 2**40) + bytes(64)  # an IFD of 2**40 entries
    verdict = check_file(_write_bytes(tmp_path, huge_ifd, "ifd.tif"))
    assert verdict.complete is False and verdict.needed_bytes == 16 + 8 + 20 * 2**40 + 8


def test_many_tiles_are_read_in_bounded_chunks(tmp_path: Path) -> None:
    """4 Mi LONG8 tile offsets and byte counts (64 MiB, sparse zeros but the last pair): small peak memory."""
    n = 1 << 22
    offsets_at, counts_at = 4096, 4096 + 8 * n
    end = counts_at + 8 * n
    data = _header("<", True, 16) + _ifd("<", True, [(324, 16, n, offsets_at), (325, 16, n, counts_at)])
    path = tmp_path / "many.tif"
    with path.open("wb") as out:
        out.write(data)
        out.truncate(end)
        out.seek(offsets_at + 8 * (n - 1))
        out.write(struct.pack("<Q", end - 10))
        out.seek(counts_at + 8 * (n - 1))
        out.write(struct.pack("<Q", 30))
    tracemalloc.start()
    verdict = check_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (verdict.complete, verdict.needed_bytes, verdict.actual_bytes) == (False, end + 20, end)
    assert peak < 8 << 20  # the arrays are 64 MiB


def test_overflowing_offsets_and_sparse_blocks(tmp_path: Path) -> None:
    over = struct.pack("<QQ", 2**63, 0) + struct.pack("<QQ", 2**63 + 5, 0)
    data = _header("<", True, 16) + _ifd("<", True, [(324, 16, 2, 100), (325, 16, 2, 116)])
    data = data.ljust(100, b"\0") + over
    verdict = check_file(_write_bytes(tmp_path, data))
    assert verdict.complete is False and verdict.needed_bytes == 2**64
    sparse = _gray_4x4("<", strip_offset=0, strip_bytes=0)  # a sparse strip: no data to need
    assert check_file(_write_bytes(tmp_path, sparse)).complete is True


def test_unexpected_field_types_and_budgets_give_no_verdict(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    double = _gray_4x4("<", extra=[(324, 12, 1, 8), (325, 12, 1, 8)])  # tile offsets as DOUBLE
    verdict = check_file(_write_bytes(tmp_path, double))
    assert verdict.complete is None and "unexpected field type 12" in verdict.reason
    chain = _header("<", False, 8) + b"".join(_ifd("<", False, [], 8 + 6 * (i + 1)) for i in range(10_050))
    verdict = check_file(_write_bytes(tmp_path, chain + bytes(6), "chain.tif"))
    assert verdict.complete is None and verdict.reason == "more than 10000 IFDs, not all checked"
    monkeypatch.setattr(_file_integrity, "MAX_BLOCKS", 10)
    tiled = _write(tmp_path, "tiled.tif", tiled=True, blockxsize=16, blockysize=16)
    assert check_file(tiled).reason == "more than 10 blocks, not all checked"
    monkeypatch.setattr(_file_integrity, "MAX_ENTRIES", 5)
    assert check_file(COG).reason == "more than 5 IFD entries, not all checked"
    empty = _header("<", False, 0) + bytes(8)
    assert check_file(_write_bytes(tmp_path, empty)).complete is None


# ============================================================================ JPEG 2000


@pytest.fixture(scope="module")
def jp2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JP2 written by GDAL's JP2OpenJPEG driver (GeoJP2 and GML boxes, then the codestream)."""
    with rasterio.Env() as env:
        if "JP2OpenJPEG" not in env.drivers():
            pytest.skip("GDAL has no JP2OpenJPEG driver")
    return _write(tmp_path_factory.mktemp("jp2"), "written.jp2", driver="JP2OpenJPEG", QUALITY=50)


def _boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, length) of the top-level boxes of a JP2 with plain 32-bit lengths."""
    out, offset = [], 0
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        out.append((kind, offset, length))
        offset += length
    return out


def test_gdal_jp2_is_complete_and_cuts_are_incomplete(jp2: Path, tmp_path: Path) -> None:
    data = jp2.read_bytes()
    verdict = check_file(jp2)
    assert (verdict.complete, verdict.needed_bytes, verdict.format) == (True, len(data), "jp2")
    boxes = _boxes(data)
    kind, start, length = boxes[-1]
    assert kind == b"jp2c" and start + length == len(data)
    for cut in (len(data) - 1, start + length // 2, start + 9):  # inside the codestream box
        verdict = check_file(_cut(data, cut, tmp_path))
        assert (verdict.complete, verdict.needed_bytes) == (False, len(data))
        assert verdict.reason == f"the 'jp2c' box at byte {start} ends at byte {len(data)}"
    verdict = check_file(_cut(data, start, tmp_path))  # every box before the codestream, and nothing else
    assert (verdict.complete, verdict.needed_bytes) == (False, None)
    assert verdict.reason == "the codestream box (jp2c) is missing"
    _, header_at, header_length = boxes[3]
    verdict = check_file(_cut(data, header_at + 10, tmp_path))  # inside a header box
    assert (verdict.complete, verdict.needed_bytes) == (False, header_at + header_length)
    verdict = check_file(_cut(data, header_at + 3, tmp_path))  # inside a box header
    assert (verdict.complete, verdict.needed_bytes) == (False, header_at + 8)
    assert check_file(_cut(data, 20, tmp_path)).complete is False
    with rasterio.open(jp2) as ds:  # the file checked is one GDAL reads
        assert ds.read(1).shape == (300, 400)


def test_jp2_codestream_box_to_the_end_needs_the_eoc_marker(jp2: Path, tmp_path: Path) -> None:
    data = bytearray(jp2.read_bytes())
    start = _boxes(bytes(data))[-1][1]
    data[start:start + 4] = bytes(4)  # length 0: the codestream runs to the end of the file
    verdict = check_file(_write_bytes(tmp_path, bytes(data), "open.jp2"))
    assert (verdict.complete, verdict.needed_bytes) == (True, len(data))
    verdict = check_file(_cut(bytes(data), len(data) - 100, tmp_path))
    assert (verdict.complete, verdict.needed_bytes) == (False, None)
    assert verdict.reason == "the codestream does not end with the EOC marker (FF D9)"
    assert check_file(_cut(bytes(data), start + 8, tmp_path)).complete is False  # an empty codestream


def test_jp2_extended_lengths_and_hostile_boxes(jp2: Path, tmp_path: Path) -> None:
    data = jp2.read_bytes()
    _, start, length = _boxes(data)[-1]
    extended = data[:start] + struct.pack(">I4sQ", 1, b"jp2c", length + 8) + data[start + 8:]
    assert check_file(_write_bytes(tmp_path, extended, "xl.jp2")).complete is True
    assert check_file(_cut(extended, len(extended) - 1, tmp_path)).needed_bytes == len(extended)
    absurd = data[:start] + struct.pack(">I4sQ", 1, b"jp2c", 2**62) + data[start + 8:]
    verdict = check_file(_write_bytes(tmp_path, absurd, "absurd.jp2"))
    assert (verdict.complete, verdict.needed_bytes) == (False, start + 2**62)
    invalid = data[:start] + struct.pack(">I4s", 3, b"jp2c") + data[start + 8:]
    verdict = check_file(_write_bytes(tmp_path, invalid, "invalid.jp2"))
    assert verdict.complete is None and verdict.reason == f"box at byte {start} has the invalid length 3"
    many = data[:12] + struct.pack(">I4s", 8, b"free") * 70_000
    assert check_file(_write_bytes(tmp_path, many, "many.jp2")).complete is None


def test_raw_j2k_codestream(tmp_path: Path) -> None:
    with rasterio.Env() as env:
        if "JP2OpenJPEG" not in env.drivers():
            pytest.skip("GDAL has no JP2OpenJPEG driver")
    path = _write(tmp_path, "written.j2k", driver="JP2OpenJPEG", CODEC="J2K", QUALITY=50)
    data = path.read_bytes()
    assert check_file(path) == Integrity(True, len(data), len(data), "codestream ends with EOC", "j2k")
    verdict = check_file(_cut(data, len(data) - 1, tmp_path))
    assert (verdict.complete, verdict.needed_bytes, verdict.format) == (False, None, "j2k")


# ============================================================================ other formats, any bytes


@pytest.mark.parametrize("data", [b"", b"II", b"\x89PNG\r\n\x1a\n" + bytes(100), b'{"type": "Feature"}',
                                  b"PK\x03\x04" + bytes(100), np.random.default_rng(1).bytes(10_000)],
                         ids=["empty", "two-bytes", "png", "json", "zip", "random"])
def test_other_formats_get_no_verdict(data: bytes, tmp_path: Path) -> None:
    verdict = check_file(_write_bytes(tmp_path, data, "other.bin"))
    assert (verdict.complete, verdict.needed_bytes, verdict.format) == (None, None, "unknown")
    assert verdict.actual_bytes == len(data)


def test_unreadable_path_gets_no_verdict(tmp_path: Path) -> None:
    assert check_file(tmp_path / "missing.tif").complete is None
    assert check_file(tmp_path).complete is None  # a folder


def _consistent(verdict: Integrity, size: int) -> None:
    assert verdict.actual_bytes == size
    if verdict.complete is True:
        assert verdict.needed_bytes is not None and verdict.needed_bytes <= size
    if verdict.complete is False:
        assert verdict.needed_bytes is None or verdict.needed_bytes > size
    assert "\n" not in verdict.reason


def _check_bytes(data: bytes) -> Integrity:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.bin"
        path.write_bytes(data)
        verdict = check_file(path)
    _consistent(verdict, len(data))
    return verdict


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_verdict(data: bytes) -> None:
    _check_bytes(data)


MAGICS = [b"II*\x00", b"MM\x00*", b"II+\x00\x08\x00\x00\x00", b"MM\x00+\x00\x08\x00\x00",
          b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51"]


@FUZZ
@given(st.sampled_from(MAGICS), st.binary(max_size=2048))
def test_any_bytes_after_a_known_signature_give_a_verdict(magic: bytes, tail: bytes) -> None:
    _check_bytes(magic + tail)


COG_BYTES = COG.read_bytes()
COG_NEEDED = check_file(COG).needed_bytes or 0


@FUZZ
@given(st.integers(4, COG_NEEDED - 1))
def test_every_prefix_of_a_cog_is_incomplete(length: int) -> None:
    verdict = _check_bytes(COG_BYTES[:length])
    assert verdict.complete is False and length < verdict.needed_bytes <= COG_NEEDED


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 1023), st.integers(0, 255)), min_size=1, max_size=16))
def test_a_cog_with_corrupt_ifd_bytes_gives_a_verdict(edits: list[tuple[int, int]]) -> None:
    data = bytearray(COG_BYTES)
    for at, value in edits:
        data[at] = value
    _check_bytes(bytes(data))


# ============================================================================ through download()


def test_short_content_length_on_a_jp2_without_checksum_is_resumed(jp2: Path, tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(jp2, root / "B04.jp2")
    size = jp2.stat().st_size
    with RangeHTTPServer(root) as server:
        server.inject("/B04.jp2", Fault("length", after=size - 2000))
        result = download(f"{server.url}/B04.jp2", tmp_path / "cache" / "B04.jp2", http=HttpClient(FAST))
        assert [r[2] for r in server.requests] == [None, f"bytes={size - 2001}-"]
    assert result.resumed and result.path.read_bytes() == jp2.read_bytes()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["B04.jp2"]


def test_a_truncated_file_cached_by_an_older_version_is_fetched_again(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(COG, root / "red.tif")
    target = tmp_path / "cache" / "red.tif"
    target.parent.mkdir()
    target.write_bytes(COG_BYTES[:-1000])  # kept under its final name before the structure was checked
    with RangeHTTPServer(root) as server:
        result = download(f"{server.url}/red.tif", target, http=HttpClient(FAST))
        assert not result.cached and server.count("/red.tif") == 1
        assert download(f"{server.url}/red.tif", target, http=HttpClient(FAST)).cached  # now whole: kept
        assert server.count("/red.tif") == 1
    assert target.read_bytes() == COG_BYTES
