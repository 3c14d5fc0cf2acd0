"""The status cache's compressed fragment blocks: what goes in comes out, in order, a block
whose rows did not change is kept as it was, and the gzip form built from the blocks' CRCs is a
valid member of exactly the joined bytes."""

from __future__ import annotations

import gzip
import random
import zlib

from exporter.exposition import deflate_segment, gzip_member
from exporter.statusblocks import BLOCK_ROWS, Fragments, build, crc32_combine, pack


class R:
    """A row: compared by identity, as the status cache's rows are."""

    def __init__(self, name: str) -> None:
        self.name = name


def frags_for(row: R, version: int = 0) -> tuple[bytes, bytes]:
    return (
        f'{{"account":"{row.name}","v":{version}}}'.encode(),
        f"<tbody>{row.name} {version}</tbody>".encode(),
    )


EMPTY = (Fragments(sep=b","), Fragments())


def test_crc32_combine_matches_the_crc_of_the_concatenation() -> None:
    rng = random.Random(7)
    for _ in range(50):
        a = rng.randbytes(rng.randrange(0, 3000))
        b = rng.randbytes(rng.randrange(0, 200_000))
        combined = crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b), zlib.crc32(bytes(len(b))))
        assert combined == zlib.crc32(a + b)


def test_fragments_come_back_in_order_and_joined() -> None:
    rows = [R(f"a{i}") for i in range(3 * BLOCK_ROWS + 5)]
    built = build(rows, {r: pack(*frags_for(r)) for r in rows}, EMPTY, [], levels=(6, 1))
    json_f, html_f = built.fragments
    assert built.deflated == 4 and json_f.count == html_f.count == len(rows)
    picks = [0, 1, BLOCK_ROWS - 1, BLOCK_ROWS, 2 * BLOCK_ROWS + 3, len(rows) - 1]
    assert json_f.get(picks) == [frags_for(rows[i])[0] for i in picks]
    assert html_f.get(picks) == [frags_for(rows[i])[1] for i in picks]
    assert json_f.joined() == b",".join(frags_for(r)[0] for r in rows)
    assert html_f.joined() == b"".join(frags_for(r)[1] for r in rows)
    # The whole JSON's gzip is the blocks between its two ends: a valid member of those bytes.
    head, tail = b'{"accounts":[', b"]}"
    crc = zlib.crc32(tail, json_f.crc(zlib.crc32(head)))
    size = len(head) + json_f.size + len(tail)
    z = gzip_member([deflate_segment(head), *json_f.segments(), deflate_segment(tail)], crc, size)
    assert gzip.decompress(z) == head + json_f.joined() + tail


def test_unchanged_blocks_are_kept_and_changed_ones_rebuilt() -> None:
    rows = [R(f"a{i}") for i in range(3 * BLOCK_ROWS)]
    first = build(rows, {r: pack(*frags_for(r)) for r in rows}, EMPTY, [], levels=(6, 1))
    # One account rendered again (a new row object, as the cache makes) in the second block.
    changed = R(rows[BLOCK_ROWS + 5].name)
    rows2 = [changed if i == BLOCK_ROWS + 5 else r for i, r in enumerate(rows)]
    second = build(
        rows2, {changed: pack(*frags_for(changed, 1))}, first.fragments, rows, levels=(6, 1)
    )
    assert second.deflated == 1
    for kind in range(2):
        old, new = first.fragments[kind].blocks, second.fragments[kind].blocks
        assert new[0] is old[0] and new[2] is old[2] and new[1] is not old[1]
    assert second.fragments[0].get([BLOCK_ROWS + 5, BLOCK_ROWS + 6]) == [
        frags_for(changed, 1)[0],
        frags_for(rows[BLOCK_ROWS + 6])[0],
    ]
    # A new order (an account moved to the front: its state got worse) rebuilds the blocks
    # whose rows moved, taking the unchanged fragments out of the old blocks.
    rows3 = [changed, *[r for r in rows2 if r is not changed]]
    third = build(rows3, {}, second.fragments, rows2, levels=(6, 1))
    assert third.deflated == 2  # the third block's rows are where they were
    assert third.fragments[0].joined() == b",".join(
        frags_for(r, 1 if r is changed else 0)[0] for r in rows3
    )
    assert third.fragments[1].get([0]) == [frags_for(changed, 1)[1]]


def test_no_rows() -> None:
    built = build([], {}, EMPTY, [], levels=(6, 1))
    assert built.fragments[0].joined() == b"" and built.fragments[0].size == 0
    assert built.fragments[0].crc(5) == 5
