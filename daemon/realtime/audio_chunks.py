"""Re-chunk PCM16 audio into fixed 20 ms appends (960 bytes at 24 kHz mono)."""

from __future__ import annotations

from daemon.vocab import PCM_RATE

SAMPLE_RATE = PCM_RATE
BYTES_PER_SAMPLE = 2
BYTES_PER_MS = SAMPLE_RATE * BYTES_PER_SAMPLE // 1000  # 48
CHUNK_MS = 20
CHUNK_BYTES = CHUNK_MS * BYTES_PER_MS  # 960


class Chunker:
    """Collects arbitrary-length writes; hands out whole chunks in order."""

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        if chunk_bytes <= 0 or chunk_bytes % BYTES_PER_SAMPLE:
            raise ValueError(f"chunk_bytes: expected a positive even number, got {chunk_bytes}")
        self.chunk_bytes = chunk_bytes
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    def write(self, data: bytes) -> None:
        """Append PCM16 bytes (any length)."""
        self._buf += data

    def chunks(self) -> list[bytes]:
        """Every whole chunk buffered so far; the remainder stays for the next write."""
        n = len(self._buf) // self.chunk_bytes * self.chunk_bytes
        if n == 0:
            return []
        out = [bytes(self._buf[i : i + self.chunk_bytes]) for i in range(0, n, self.chunk_bytes)]
        del self._buf[:n]
        return out

    def rest(self) -> bytes:
        """The partial chunk left over (whole samples only), emptying the buffer of it."""
        n = len(self._buf) // BYTES_PER_SAMPLE * BYTES_PER_SAMPLE
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def clear(self) -> None:
        """Drop everything buffered."""
        self._buf.clear()
