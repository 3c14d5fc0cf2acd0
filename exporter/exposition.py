"""The incremental serializer behind /metrics: the exposition of 10,000 accounts at the cost of
the accounts that changed.

What each account's samples are comes from :func:`exporter.catalogue.account_samples`; this
module writes them in the text and OpenMetrics formats, exactly as prometheus_client would
(the tests hold the two equal, byte for byte). The cost is the point: each account's sample
lines are kept per metric family and only the accounts that changed (the store's
:class:`~exporter.store.ChangeFeed` names them), or
whose output changes with time alone (value series dropped when a reading passes
``max_staleness``), are rendered again. The exposition is then put together by concatenation.

Compression is incremental too. Accounts are grouped in blocks of :data:`BLOCK_ACCOUNTS`; each
(metric family, block) segment is deflated on its own and ends on a byte boundary
(``Z_SYNC_FLUSH`` from a fresh compressor), so the segments of the text and OpenMetrics
bodies (whose sample lines are identical) concatenate into one valid gzip stream. A render
deflates only the segments whose bytes changed; the CRC-32 of the whole body is computed
over the assembled bytes (zlib releases the GIL for it).

Rendering the changed accounts and splicing their lines into the segments is Python work: it
runs on the event loop in slices of at most :data:`SLICE_SECONDS` (in a worker thread it would
hold the GIL and stall the loop all the same). Deflating and assembling run in a worker thread,
in C code that releases the GIL. A render never holds the loop for long at any size.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import os
import struct
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

from prometheus_client import utils as _prom_utils

from .catalogue import (
    ACCOUNT_FAMILIES,
    Family,
    Sample,
    account_samples,
    exporter_samples,
)
from .deadlines import Deadlines
from .store import AccountState, ChangeFeed, Store

#: Accounts per compressed segment: small enough that one changed account re-deflates little,
#: large enough (tens of kB of text per family) that compression barely suffers.
BLOCK_ACCOUNTS = 128
#: Longest stretch the renderer works on the event loop before it yields.
SLICE_SECONDS = 0.005
COMPRESS_LEVEL = 6

N_FAMILIES = len(ACCOUNT_FAMILIES)

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, mtime 0
_DEFLATE_END = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
_EOF = b"# EOF\n"


#: prometheus_client's own number formatting (Go's), so both renderers write the same bytes.
floatToGoString = cast(Callable[[float], str], _prom_utils.floatToGoString)


def escape_label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def label_template(names: tuple[str, ...]) -> str:
    """A :meth:`str.format` template that writes label values, given in the order of ``names``
    and escaped, sorted by label name as prometheus_client does: ``{a="{1}",b="{0}"} ``
    (with the space before the value; only the space without labels)."""
    if not names:
        return " "
    order = sorted(range(len(names)), key=names.__getitem__)
    return "{{" + ",".join(f'{names[i]}="{{{i}}}"' for i in order) + "}} "


def family_header(family: Family, *, om: bool) -> str:
    """The ``# HELP`` and ``# TYPE`` lines (OpenMetrics names a counter without ``_total``)."""
    doc = family.help.replace("\\", r"\\").replace("\n", r"\n")
    if om:
        doc = doc.replace('"', r"\"")
        name = family.name
    else:
        name = family.sample_name
    return f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n"


def sample_lines(samples: Iterable[Sample], *, om: bool) -> str:
    """Samples of families without static labels, each family under its header."""
    out = []
    family: Family | None = None
    for sample_family, labels, value in samples:
        if sample_family is not family:
            family = sample_family
            out.append(family_header(family, om=om))
        text = label_template(family.labels).format(*map(escape_label_value, labels))
        out.append(f"{family.sample_name}{text}{floatToGoString(value)}\n")
    return "".join(out)


def deflate_segment(data: bytes, level: int = COMPRESS_LEVEL) -> bytes:
    """Raw deflate of ``data`` ending on a byte boundary, with no final block: segments made
    this way concatenate into one deflate stream."""
    if not data:
        return b""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def gzip_from_segments(segments: Iterable[bytes], parts: Iterable[bytes]) -> bytes:
    """A gzip member from deflate segments (see :func:`deflate_segment`) whose inflated
    concatenation is the concatenation of ``parts``."""
    crc, size = 0, 0
    for part in parts:
        crc = zlib.crc32(part, crc)
        size += len(part)
    return gzip_member(segments, crc, size)


def gzip_member(segments: Iterable[bytes], crc: int, size: int) -> bytes:
    """A gzip member from deflate segments whose inflated concatenation has this CRC-32 and
    size."""
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return b"".join([_GZIP_HEADER, *segments, _DEFLATE_END, trailer])


#: Plain bodies up to this size are joined once and kept (about 2,500 accounts); larger ones
#: are only ever written from their parts.
JOIN_LIMIT = 4 << 20


class _Bodies:
    """The four bodies of one rendering. The gzip ones are whole bytes (a megabyte at 10,000
    accounts). The plain ones are kept as their parts (the segments, shared with the
    renderer) and, up to :data:`JOIN_LIMIT`, joined the first time a scrape asks for them.
    Larger ones (11 MB at 10,000 accounts) are never joined: /metrics writes the parts
    (:func:`iter_slices`), so no copy is made for a rendering nobody scrapes uncompressed, nor
    kept for each of the renderings that scrapes in flight are still sending."""

    __slots__ = (
        "_om",
        "_text",
        "om_gzip",
        "om_parts",
        "om_size",
        "text_gzip",
        "text_parts",
        "text_size",
    )

    def __init__(
        self, text_parts: list[bytes], om_parts: list[bytes], text_gzip: bytes, om_gzip: bytes
    ) -> None:
        self.text_parts = text_parts
        self.om_parts = om_parts
        self.text_size = sum(map(len, text_parts))
        self.om_size = sum(map(len, om_parts))
        self.text_gzip = text_gzip
        self.om_gzip = om_gzip
        self._text: bytes | None = None
        self._om: bytes | None = None

    def text(self) -> bytes:
        if self._text is not None:
            return self._text
        body = b"".join(self.text_parts)
        if self.text_size <= JOIN_LIMIT:
            self._text = body
        return body

    def openmetrics(self) -> bytes:
        if self._om is not None:
            return self._om
        body = b"".join(self.om_parts)
        if self.om_size <= JOIN_LIMIT:
            self._om = body
        return body


def iter_slices(parts: list[bytes], size: int) -> Iterator[bytes]:
    """The concatenation of ``parts`` in pieces of about ``size`` bytes."""
    group: list[bytes] = []
    filled = 0
    for part in parts:
        group.append(part)
        filled += len(part)
        if filled >= size:
            yield b"".join(group)
            group, filled = [], 0
    if group:
        yield b"".join(group)


class Exposition:
    """One rendering of the store: the bytes every scrape is served until the next."""

    __slots__ = ("_bodies", "rendered_at", "round")

    def __init__(self, round_: int | None, rendered_at: float, bodies: _Bodies) -> None:
        #: The readiness round it holds every first poll of (None: an account was still
        #: waiting for one when it was planned): :attr:`exporter.readiness.Readiness.round`.
        self.round = round_
        self.rendered_at = rendered_at
        self._bodies = bodies

    @property
    def ready(self) -> bool:
        """Every account had been polled once when this was planned."""
        return self.round is not None

    def with_round(self, round_: int | None) -> Exposition:
        """The same bytes, planned again later without a change in them."""
        return Exposition(round_, self.rendered_at, self._bodies)

    @property
    def text(self) -> bytes:
        """The text body (above :data:`JOIN_LIMIT` joined anew on every call: /metrics streams
        :attr:`text_parts` instead)."""
        return self._bodies.text()

    @property
    def openmetrics(self) -> bytes:
        return self._bodies.openmetrics()

    @property
    def text_parts(self) -> list[bytes]:
        return self._bodies.text_parts

    @property
    def openmetrics_parts(self) -> list[bytes]:
        return self._bodies.om_parts

    @property
    def text_size(self) -> int:
        return self._bodies.text_size

    @property
    def openmetrics_size(self) -> int:
        return self._bodies.om_size

    @property
    def text_gzip(self) -> bytes:
        return self._bodies.text_gzip

    @property
    def openmetrics_gzip(self) -> bytes:
        return self._bodies.om_gzip


def _background_thread() -> None:
    """Run the render thread at a lower priority (nice +10): on a busy machine the kernel then
    lets the event loop's thread run first when both want the same core, and deflating the
    segments never delays a scrape. (Linux; elsewhere, or when not allowed, nothing.)"""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


_executor: concurrent.futures.ThreadPoolExecutor | None = None


def render_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="render", initializer=_background_thread
        )
    return _executor


@dataclass
class RenderStats:
    renders: int = 0
    accounts_rendered: int = 0
    segments_deflated: int = 0
    last_accounts: int = 0
    last_segments: int = 0
    last_seconds: float = 0.0


class _Segment:
    """The sample lines of one metric family for one block of accounts: the bytes, where each
    account's lines start, the changes waiting to be applied, and the deflated bytes."""

    __slots__ = ("offsets", "pending", "raw", "z")

    def __init__(self, width: int) -> None:
        self.raw = b""
        self.offsets = array("I", bytes(4 * (width + 1)))
        self.pending: dict[int, bytes] | None = None
        self.z = b""

    def chunk(self, i: int) -> bytes:
        if self.pending is not None and i in self.pending:
            return self.pending[i]
        return self.raw[self.offsets[i] : self.offsets[i + 1]]

    def set(self, i: int, chunk: bytes) -> bool:
        """Stage account ``i``'s new lines; False when they did not change."""
        if chunk == self.chunk(i):
            return False
        if self.pending is None:
            self.pending = {}
        self.pending[i] = chunk
        return True

    def rebuild(self) -> None:
        """Apply the staged changes to the bytes (Python work: on the event loop, in slices)."""
        pending, offsets = self.pending or {}, self.offsets
        view = memoryview(self.raw)
        parts: list[bytes | memoryview] = []
        new_offsets = array("I", [0])
        pos = 0
        for i in range(len(offsets) - 1):
            new = pending.get(i)
            part = view[offsets[i] : offsets[i + 1]] if new is None else new
            parts.append(part)
            pos += len(part)
            new_offsets.append(pos)
        self.raw = b"".join(parts)
        self.offsets = new_offsets
        self.pending = None

    def deflate(self, level: int) -> None:
        """Compress the bytes again (C work that releases the GIL: in the worker thread)."""
        self.z = deflate_segment(self.raw, level)


@dataclass(slots=True)
class _Entry:
    state: AccountState
    pos: int
    rendered: bool = False


@dataclass
class _Work:
    """What one render found to do."""

    names: list[str] = field(default_factory=list)
    structure: bool = False
    relabel: bool = False


class IncrementalRenderer:
    """Keeps every account's sample lines and the compressed segments; :meth:`render` brings
    them up to date with the store and returns a new :class:`Exposition`."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        block_accounts: int = BLOCK_ACCOUNTS,
        compress_level: int = COMPRESS_LEVEL,
    ) -> None:
        self.store = store
        self.clock = clock
        self.block = block_accounts
        self.level = compress_level
        self.stats = RenderStats()
        self.feed: ChangeFeed = store.feed()
        self._lock = asyncio.Lock()
        self._order: list[str] = []
        self._entries: dict[str, _Entry] = {}
        self._extra: tuple[str, ...] = ()
        self._segments: list[list[_Segment]] = [[] for _ in range(N_FAMILIES)]
        self._dirty_segments: set[tuple[int, int]] = set()
        self._globals: bytes | None = None
        self._last: Exposition | None = None
        self._due = Deadlines()
        self._round: int | None = None  # the readiness round at the last planning
        self._formats = self._sample_formats()
        self._text_headers = [family_header(f, om=False).encode() for f in ACCOUNT_FAMILIES]
        self._om_headers = [family_header(f, om=True).encode() for f in ACCOUNT_FAMILIES]
        self._text_headers_z = [deflate_segment(h, self.level) for h in self._text_headers]
        self._om_headers_z = [deflate_segment(h, self.level) for h in self._om_headers]

    # ------------------------------------------------------------------ public

    def render(self) -> Exposition:
        """Bring everything up to date now, synchronously (tests, ``once``, start-up)."""
        started = time.perf_counter()
        now = self.clock()
        work = self._plan(now)
        with self._retry_on_failure(work):
            self._render_accounts(work.names, now)
            return self._finish(now, work, started)

    async def render_async(self) -> Exposition:
        """The same, without holding the event loop: changed accounts are rendered and their
        segments rebuilt in slices of at most :data:`SLICE_SECONDS` (Python work stays on the
        loop: in a thread it would hold the GIL); segments are deflated and the bodies
        assembled in a worker thread (C work that releases the GIL)."""
        async with self._lock:
            started = time.perf_counter()
            now = self.clock()
            work = self._plan(now)
            with self._retry_on_failure(work):
                return await self._render_planned(work, now, started)

    @contextlib.contextmanager
    def _retry_on_failure(self, work: _Work) -> Iterator[None]:
        """A render that fails leaves its accounts to the next one, and every segment to
        deflate again (it may have failed between rebuilding a segment and deflating it)."""
        try:
            yield
        except BaseException:
            self.feed.put_back(work.names)
            self._dirty_segments.update(
                (f, b) for f in range(N_FAMILIES) for b in range(len(self._segments[f]))
            )
            raise

    async def _render_planned(self, work: _Work, now: float, started: float) -> Exposition:
        names = work.names
        i = 0
        while i < len(names):
            deadline = time.perf_counter() + SLICE_SECONDS
            while i < len(names):
                self._render_accounts(names[i : i + 16], now)
                i += 16
                if time.perf_counter() >= deadline:
                    break
            if i < len(names):
                await asyncio.sleep(0)
        if not self._has_changes(work):
            return self._unchanged(started)
        rebuilt = self._take_dirty_segments()
        deadline = time.perf_counter() + SLICE_SECONDS
        for segment in rebuilt:
            segment.rebuild()
            if time.perf_counter() >= deadline:
                await asyncio.sleep(0)
                deadline = time.perf_counter() + SLICE_SECONDS
        globals_ = self._render_globals()
        loop = asyncio.get_running_loop()
        bodies = await loop.run_in_executor(render_executor(), self._assemble, globals_, rebuilt)
        return self._publish(now, started, bodies, globals_)

    # ------------------------------------------------------------------ planning

    def _plan(self, now: float) -> _Work:
        """Sync with the store's accounts; collect the accounts to render again."""
        work = _Work()
        dirty, other = self.feed.take()
        try:
            return self._plan_taken(now, work, dirty, other)
        except BaseException:
            self.feed.put_back(dirty)  # a bug while planning: still to render
            raise

    def _plan_taken(self, now: float, work: _Work, dirty: set[str], other: bool) -> _Work:
        accounts = self.store.accounts
        entries = self._entries
        replaced = False
        for name in dirty:
            entry = entries.get(name)
            state = accounts.get(name)
            if entry is not None and state is not None and entry.state is not state:
                entry.state = state  # a reload changed its config: render it from scratch
                entry.rendered = False
                replaced = True
        if other:  # accounts may have come, gone or moved
            order = list(accounts)
            if order != self._order:
                work.structure = True
                self._restructure(order, dirty)
        if work.structure or replaced:
            extra = tuple(sorted({k for s in accounts.values() for k in s.account.labels}))
            if extra != self._extra:
                self._extra = extra
                self._formats = self._sample_formats()
                dirty = set(self._order)
                work.relabel = True
        # Accounts whose output changes with time alone (see _account_chunks).
        entries = self._entries
        dirty.update(name for name in self._due.pop_due(now) if name in entries)
        readiness = self.store.readiness
        self._round = readiness.round
        if self._round is not None:
            work.names = [n for n in dirty if n in entries]
        else:
            # Start-up (or accounts a reload added): an account is rendered once every
            # endpoint has answered its first poll, not before and not once per endpoint: the
            # first rendering of 10,000 accounts costs no more than it must. Meanwhile it is
            # left out (or, when the label set changed, shown as it was); its last first poll
            # names it again.
            relabel = work.relabel
            work.names = [
                n
                for n in dirty
                if n in entries and (not readiness.waiting(n) or (relabel and entries[n].rendered))
            ]
        self.stats.last_accounts = len(work.names)
        self.stats.last_segments = 0
        return work

    def _restructure(self, order: list[str], dirty: set[str]) -> None:
        """Accounts were added, removed or reordered: move the kept lines to their new place
        and deflate every segment again."""
        accounts, size = self.store.accounts, self.block
        old_entries, old_segments = self._entries, self._segments
        nblocks = -(-len(order) // size)
        widths = [min(size, len(order) - b * size) for b in range(nblocks)]
        segments = [[_Segment(w) for w in widths] for _ in range(N_FAMILIES)]
        entries: dict[str, _Entry] = {}
        for pos, name in enumerate(order):
            entry = old_entries.get(name)
            if entry is None or entry.state is not accounts[name]:
                entries[name] = _Entry(accounts[name], pos)
                dirty.add(name)
                continue
            old_blk, old_off = divmod(entry.pos, size)
            blk, off = divmod(pos, size)
            for f in range(N_FAMILIES):
                segments[f][blk].set(off, old_segments[f][old_blk].chunk(old_off))
            entry.pos = pos
            entries[name] = entry
        self._order, self._entries, self._segments = order, entries, segments
        self._dirty_segments = {(f, b) for f in range(N_FAMILIES) for b in range(nblocks)}

    def _has_changes(self, work: _Work) -> bool:
        return (
            self._last is None
            or work.structure
            or bool(self._dirty_segments)
            or self._render_globals() != self._globals
        )

    @property
    def next_due(self) -> float:
        """When the next account's output changes with time alone (``inf``: never)."""
        return self._due.next

    # ------------------------------------------------------------------ accounts

    def _render_accounts(self, names: list[str], now: float) -> None:
        accounts, entries, segments, size = (
            self.store.accounts,
            self._entries,
            self._segments,
            self.block,
        )
        for name in names:
            state = accounts.get(name)
            entry = entries.get(name)
            if state is None or entry is None or entry.state is not state:
                continue  # removed or replaced since planning: the next render has it
            chunks, valid_until = self._account_chunks(state, now)
            entry.rendered = True
            self._due.set(name, valid_until)
            blk, off = divmod(entry.pos, size)
            for f in range(N_FAMILIES):
                if segments[f][blk].set(off, chunks[f]):
                    self._dirty_segments.add((f, blk))
        self.stats.accounts_rendered += len(names)

    def _sample_formats(self) -> dict[Family, tuple[int, str, str]]:
        """Per account family: its segment, its samples' name and the template of their labels
        with the current static label names (families with the same labels share it)."""
        templates: dict[tuple[str, ...], str] = {}
        formats = {}
        for slot, family in enumerate(ACCOUNT_FAMILIES):
            names = (*family.labels, *self._extra)
            template = templates.setdefault(names, label_template(names))
            formats[family] = (slot, family.sample_name, template)
        return formats

    def _account_chunks(self, state: AccountState, now: float) -> tuple[list[bytes], float]:
        """One account's sample lines per family, and until when they stay true."""
        lines: list[list[str]] = [[] for _ in range(N_FAMILIES)]
        own = state.account.labels
        ext = [escape_label_value(own.get(k, "")) for k in self._extra]
        formats = self._formats
        last: tuple[str, ...] = ()
        last_template = label_text = ""
        for family, labels, value in account_samples(state, now):
            slot, name, template = formats[family]
            if labels is not last or template is not last_template:
                last, last_template = labels, template
                label_text = template.format(*map(escape_label_value, labels), *ext)
            lines[slot].append(f"{name}{label_text}{floatToGoString(value)}\n")
        stale_at = state.stale_at(now)
        valid_until = math.inf if stale_at is None else stale_at + 1e-3
        return ["".join(x).encode() for x in lines], valid_until

    # ------------------------------------------------------------------ globals

    def _render_globals(self, *, om: bool = False) -> bytes:
        """The exporter's own families."""
        store = self.store
        samples = exporter_samples(store.reload_successful, store.reload_success_timestamp)
        return sample_lines(samples, om=om).encode()

    # ------------------------------------------------------------------ assembly

    def _take_dirty_segments(self) -> list[_Segment]:
        dirty, self._dirty_segments = self._dirty_segments, set()
        return [self._segments[f][blk] for f, blk in dirty]

    def _assemble(self, globals_text: bytes, rebuilt: list[_Segment]) -> _Bodies:
        """Deflate the rebuilt segments and put the four bodies together (worker thread)."""
        for segment in rebuilt:
            segment.deflate(self.level)
        self.stats.segments_deflated += len(rebuilt)
        self.stats.last_segments = len(rebuilt)
        globals_om = self._render_globals(om=True) + _EOF
        text_parts: list[bytes] = []
        om_parts: list[bytes] = []
        ztext_parts: list[bytes] = []
        zom_parts: list[bytes] = []
        for f in range(N_FAMILIES):
            text_parts.append(self._text_headers[f])
            om_parts.append(self._om_headers[f])
            ztext_parts.append(self._text_headers_z[f])
            zom_parts.append(self._om_headers_z[f])
            raw = [seg.raw for seg in self._segments[f]]
            z = [seg.z for seg in self._segments[f]]
            text_parts.extend(raw)
            om_parts.extend(raw)
            ztext_parts.extend(z)
            zom_parts.extend(z)
        text_parts.append(globals_text)
        om_parts.append(globals_om)
        ztext_parts.append(deflate_segment(globals_text, self.level))
        zom_parts.append(deflate_segment(globals_om, self.level))
        return _Bodies(
            text_parts,
            om_parts,
            gzip_from_segments(ztext_parts, text_parts),
            gzip_from_segments(zom_parts, om_parts),
        )

    def _finish(self, now: float, work: _Work, started: float) -> Exposition:
        if not self._has_changes(work):
            return self._unchanged(started)
        rebuilt = self._take_dirty_segments()
        for segment in rebuilt:
            segment.rebuild()
        globals_ = self._render_globals()
        return self._publish(now, started, self._assemble(globals_, rebuilt), globals_)

    def _unchanged(self, started: float) -> Exposition:
        assert self._last is not None
        self.stats.last_seconds = time.perf_counter() - started
        self._last = self._last.with_round(self._round)
        return self._last

    def _publish(self, now: float, started: float, bodies: _Bodies, globals_: bytes) -> Exposition:
        self._globals = globals_
        self.stats.renders += 1
        self.stats.last_seconds = time.perf_counter() - started
        self._last = Exposition(self._round, now, bodies)
        return self._last
