"""The status cache's fragments (each account's rows and its JSON object), kept compressed.

Fragments are kept in the page's order, :data:`BLOCK_ROWS` to a block, each block one raw
deflate segment (:func:`~exporter.exposition.deflate_segment`): at 10,000 accounts the JSON
takes 0.6 MB this way instead of 8 MB, the rows' HTML 1 MB instead of 14 MB, and the whole
JSON's gzip form is these segments put together. A reader inflates the blocks of the fragments
it asks for (C code that releases the GIL); a new rendering deflates only the blocks whose rows
changed, taking the unchanged fragments out of the old blocks. Until then a new fragment waits
packed (:func:`pack`): a first rendering of 10,000 accounts never holds all their fragments
in full at once.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .exposition import deflate_segment

BLOCK_ROWS = 128
R = TypeVar("R", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Block:
    """The fragments of up to :data:`BLOCK_ROWS` rows, joined, as one deflate segment."""

    rows: tuple[Hashable, ...]  # whose fragments these are (an unchanged block is kept)
    z: bytes
    #: Where each fragment ends in the inflated bytes (it starts after the separator).
    ends: array[int]
    crc: int  # zlib.crc32 of the inflated bytes
    zeros_crc: int  # zlib.crc32 of as many zero bytes (for crc32_combine)

    @property
    def size(self) -> int:
        return self.ends[-1] if self.ends else 0

    def inflate(self) -> bytes:
        return zlib.decompressobj(-15).decompress(self.z)


def _zeros(n: int) -> memoryview:
    global _ZEROS
    if len(_ZEROS) < n:
        _ZEROS = memoryview(bytes(max(n, 2 * len(_ZEROS))))
    return _ZEROS[:n]


_ZEROS = memoryview(bytes(1 << 16))


def crc32_combine(crc1: int, crc2: int, size2: int, zeros_crc2: int) -> int:
    """The CRC-32 of ``a + b`` from ``crc1`` of ``a``, and ``crc2``, ``size2`` and the CRC-32 of
    ``size2`` zero bytes for ``b`` (CRC-32 is linear: shifting ``a`` by ``size2`` bytes is
    appending as many zeros)."""
    return zlib.crc32(_zeros(size2), crc1) ^ zeros_crc2 ^ crc2


class Fragments:
    """One rendering's fragments of one kind, in the page's order: immutable once built.

    ``sep`` goes between two fragments (``b","`` for the JSON array); a block after the first
    starts with it, so the blocks' bytes put together are the fragments joined by it."""

    __slots__ = ("blocks", "count", "sep")

    def __init__(self, blocks: tuple[Block, ...] = (), sep: bytes = b"") -> None:
        self.blocks = blocks
        self.sep = sep
        self.count = sum(len(b.rows) for b in blocks)

    def get(self, indices: Iterable[int]) -> list[bytes]:
        """The fragments of the rows at these positions (each block inflated once)."""
        out = []
        inflated: dict[int, bytes] = {}
        lead = len(self.sep)
        for i in indices:
            b, k = divmod(i, BLOCK_ROWS)
            data = inflated.get(b)
            if data is None:
                data = inflated[b] = self.blocks[b].inflate()
            ends = self.blocks[b].ends
            start = ends[k - 1] + lead if k else (lead if b else 0)
            out.append(data[start : ends[k]])
        return out

    def joined(self) -> bytes:
        """Every fragment, joined by ``sep``."""
        return b"".join(b.inflate() for b in self.blocks)

    def segments(self) -> list[bytes]:
        return [b.z for b in self.blocks]

    def crc(self, crc: int = 0) -> int:
        """The CRC-32 of the joined fragments, continuing ``crc``."""
        for block in self.blocks:
            crc = crc32_combine(crc, block.crc, block.size, block.zeros_crc)
        return crc

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)


def pack(*fragments: bytes) -> bytes:
    """A new row's fragments (one of each kind) as :func:`build` takes them: in one object,
    compressed (fast)."""
    sizes = array("I", map(len, fragments)).tobytes()
    return zlib.compress(sizes + b"".join(fragments), 1)


def unpack(packed: bytes, kinds: int) -> list[bytes]:
    data = zlib.decompress(packed)
    sizes = array("I")
    sizes.frombytes(data[: kinds * sizes.itemsize])
    out, pos = [], kinds * sizes.itemsize
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    return out


@dataclass
class Built:
    fragments: list[Fragments]  # one per kind
    deflated: int  # blocks compressed anew (of each kind)


def build(
    rows: Sequence[R],
    fresh: Mapping[R, bytes],
    old: Sequence[Fragments],
    old_rows: Sequence[R],
    *,
    levels: Sequence[int],
) -> Built:
    """The fragments of ``rows`` (in this order), of each kind ``old`` has: those of ``fresh``
    rows as given (:func:`pack`), the others as ``old`` had them (``old_rows``: its rows in its
    order). A block whose rows are the same as ``old``'s block at its place is kept as it was;
    the kinds' blocks have the same rows."""
    blocks: list[list[Block]] = [[] for _ in old]
    deflated = 0
    where: dict[R, int] | None = None
    for b, first in enumerate(range(0, len(rows), BLOCK_ROWS)):
        chunk = tuple(rows[first : first + BLOCK_ROWS])
        prior = old[0].blocks[b] if b < len(old[0].blocks) else None
        if (
            prior is not None
            and len(prior.rows) == len(chunk)
            and all(x is y for x, y in zip(prior.rows, chunk, strict=True))
        ):
            for kind, fragments in enumerate(old):
                blocks[kind].append(fragments.blocks[b])
            continue
        if where is None:
            where = {row: i for i, row in enumerate(old_rows)}
        kept = [where[r] for r in chunk if r not in fresh]
        taken = [dict(zip(kept, fragments.get(kept), strict=True)) for fragments in old]
        new = {r: unpack(fresh[r], len(old)) for r in chunk if r in fresh}
        for kind, fragments in enumerate(old):
            frags = [new[r][kind] if r in new else taken[kind][where[r]] for r in chunk]
            sep = fragments.sep
            blocks[kind].append(_block(chunk, frags, sep if b else b"", sep, levels[kind]))
        deflated += 1
    return Built(
        [Fragments(tuple(k), fragments.sep) for k, fragments in zip(blocks, old, strict=True)],
        deflated,
    )


def _block(
    rows: tuple[Hashable, ...], frags: list[bytes], lead: bytes, sep: bytes, level: int
) -> Block:
    ends = array("I")
    pos = len(lead)
    for i, frag in enumerate(frags):
        pos += len(frag) + (len(sep) if i else 0)
        ends.append(pos)
    data = lead + sep.join(frags)
    return Block(
        rows=rows,
        z=deflate_segment(data, level),
        ends=ends,
        crc=zlib.crc32(data),
        zeros_crc=zlib.crc32(_zeros(len(data))),
    )
