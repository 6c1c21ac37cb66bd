"""The idle daemon's resident memory: native settings `voicepi run` applies to itself.

`make bench` measures `voicepi run` idle (a PulseAudio mic and speaker) against the
60 MB budget of issue #16. Where the memory went, and what each function here cuts:

- numpy's OpenBLAS starts a worker thread per core at import (three on a Pi 4), for a
  daemon that multiplies nothing large: ``limit_native_threads`` (OPENBLAS_NUM_THREADS=1,
  before numpy is imported);
- glibc gives every thread that calls malloc an arena of its own (PortAudio's callback
  threads, libpulse's mainloops, the log thread): ``limit_malloc_arenas`` (the same as
  MALLOC_ARENA_MAX=2, which the systemd unit also sets);
- start-up (config, models, resampler design, sounds) frees memory that glibc keeps:
  ``trim_heap`` once the appliance is built (malloc_trim);
- TFLite maps each model file and XNNPACK packs its weights into buffers of its own, so
  every weight was resident twice: ``drop_file_pages`` after the interpreters are built
  (the pages a later invoke reads come back from the page cache).

- start-up code runs once (imports, ALSA's configuration and PortAudio's device scan,
  the JACK probe of Debian's PortAudio, model loading) and its pages of the shared
  libraries stay mapped for the process's life, with the kernel's fault-around mapping
  their neighbours too: ``drop_cold_file_pages`` at READY and after each session unmaps
  the clean pages of private read-only file mappings, and the idle loop faults its own
  working set back in from the page cache. It frees no anonymous memory; it leaves RSS
  the working set rather than everything start-up touched (the unmapped pages stay in
  the page cache, cheaper to reclaim than mapped ones).

Each is best effort: on a libc without the call (musl) it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from pathlib import Path

# Names as glibc and OpenBLAS read them; the unit sets the same (systemd/voicepi.service).
NATIVE_ENV = {"OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
M_ARENA_MAX = -8  # glibc <malloc.h>
MADV_DONTNEED = 4  # <sys/mman.h>, the same on x86-64 and arm64


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def limit_native_threads() -> None:
    """One OpenBLAS thread unless the environment says otherwise; call before numpy's
    first import (it reads the variable once)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", NATIVE_ENV["OPENBLAS_NUM_THREADS"])


def limit_malloc_arenas() -> bool:
    """At most MALLOC_ARENA_MAX (default 2) glibc malloc arenas; call before threads
    start. True if glibc took it."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    try:
        arenas = int(os.environ.get("MALLOC_ARENA_MAX", NATIVE_ENV["MALLOC_ARENA_MAX"]))
    except ValueError:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_ARENA_MAX, max(1, arenas)))


def trim_heap() -> bool:
    """Give freed heap memory back to the kernel (glibc malloc_trim); True if some was."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    return bool(trim(0))


def drop_file_pages(path: str | Path) -> int:
    """Drop this process's resident pages of the read-only mappings of file ``path``
    (madvise MADV_DONTNEED: clean private pages, read again from the page cache on the
    next access); the bytes dropped from the mappings' span."""
    libc = _libc()
    madvise = getattr(libc, "madvise", None)
    if madvise is None:
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    target = os.path.realpath(path)
    dropped = 0
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            # Only mappings nobody writes: a private writable one may hold changed pages.
            if len(fields) < 6 or fields[5].strip() != target or "w" in fields[1]:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start % mmap.PAGESIZE == 0 and madvise(start, end - start, MADV_DONTNEED) == 0:
                dropped += end - start
    return dropped


def drop_cold_file_pages() -> int:
    """Unmap every clean page of this process's private read-only file mappings (shared
    library code and constants); the bytes of the mappings dropped.

    A mapping qualifies only when it is private, not writable, of a file outside /dev
    and holds no anonymous pages (``Anonymous: 0 kB`` in /proc/self/smaps): a RELRO
    page the loader relocated is a private copy that MADV_DONTNEED would throw away, so
    any mapping holding one is left alone. The next access to a dropped page is a minor
    fault from the page cache (of the mapped inode: a package manager replaces a library
    rather than rewriting it, so a running daemon keeps reading the version it loaded).
    Call from the main thread once start-up is over (no concurrent ``dlopen``). Without
    /proc or madvise it drops nothing and returns 0.
    """
    libc = _libc()
    madvise = getattr(libc, "madvise", None)
    if madvise is None:
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    try:
        candidates = _clean_read_only_spans()
    except OSError:  # no /proc (a chroot, a sandbox): nothing to drop
        return 0
    dropped = 0
    for start, end in candidates:
        if madvise(start, end - start, MADV_DONTNEED) == 0:
            dropped += end - start
    return dropped


def _clean_read_only_spans() -> list[tuple[int, int]]:
    """(start, end) of each private, read-only file mapping without anonymous pages."""
    spans: list[tuple[int, int]] = []
    span = ""
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:  # ~20 lines a mapping: only two kinds are read
            if line.startswith("Anonymous:"):
                if span and line.split()[1] == "0":
                    start, end = (int(x, 16) for x in span.split("-"))
                    if start % mmap.PAGESIZE == 0:
                        spans.append((start, end))
                span = ""
            elif not line[:1].isupper():  # a header: "start-end perms offset dev inode path"
                head = line.split(maxsplit=5)
                # Private, readable, not writable, of a file: code and constants. Not a
                # device's (an ALSA status page) nor shared memory (libpulse's pools).
                private = len(head) == 6 and head[1][:2] == "r-" and head[1][3] == "p"
                path = head[5] if private else ""
                span = head[0] if path.startswith("/") and not path.startswith("/dev/") else ""
    return spans


def release() -> int:
    """What start-up or a finished session left resident, given back: ``trim_heap`` then
    ``drop_cold_file_pages``; the bytes of the file mappings dropped. `voicepi run` calls
    it at the first READY and a few seconds after each session closes."""
    trim_heap()
    return drop_cold_file_pages()
