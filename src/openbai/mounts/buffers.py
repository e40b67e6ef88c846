"""The buffers a mount receives file chunks into, reused from one file to the next.

Fresh memory costs: a bytearray is zeroed, and a large one is mapped for it and unmapped when
it goes, the kernel faulting in a zeroed page per 4 KiB on the way (and sending every CPU a
TLB flush on the way out). Reading 2,000 files of 512 KiB through an NFS mount, that was about
a sixth of the mount's CPU. So buffers are kept by size (powers of two) and handed out again,
up to ``keep_bytes`` of them idle.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

_KiB = 1024
_MiB = 1024 * _KiB


@dataclass(eq=False)
class Buffer:
    data: bytearray
    #: holds the buffer's address for memmove (and keeps the bytearray from being resized)
    view: ctypes.Array[ctypes.c_char]

    @property
    def address(self) -> int:
        return ctypes.addressof(self.view)

    def __len__(self) -> int:
        return len(self.data)


class BufferPool:
    def __init__(self, *, keep_bytes: int = 96 * _MiB, smallest: int = 64 * _KiB):
        self._keep = keep_bytes
        self._smallest = smallest
        self._idle: dict[int, list[Buffer]] = {}
        self._idle_bytes = 0
        self._lock = threading.Lock()

    def take(self, length: int) -> Buffer:
        """A buffer of at least ``length`` bytes (its contents are left from its last use)."""
        size = self._size_for(length)
        with self._lock:
            idle = self._idle.get(size)
            if idle:
                self._idle_bytes -= size
                return idle.pop()
        data = bytearray(size)
        return Buffer(data, (ctypes.c_char * size).from_buffer(data))

    def give(self, buffer: Buffer) -> None:
        """Keep ``buffer`` for a later :meth:`take`; its giver must not use it again."""
        size = len(buffer)
        if size != self._size_for(size):
            return  # not one of ours
        with self._lock:
            if self._idle_bytes + size <= self._keep:
                self._idle.setdefault(size, []).append(buffer)
                self._idle_bytes += size

    @property
    def idle_bytes(self) -> int:
        return self._idle_bytes

    def _size_for(self, length: int) -> int:
        return max(self._smallest, 1 << max(length - 1, 0).bit_length())


_from_memory = ctypes.pythonapi.PyMemoryView_FromMemory
_from_memory.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
_from_memory.restype = ctypes.py_object
_PYBUF_READ, _PYBUF_WRITE = 0x100, 0x200


def memory_view(address: int, size: int, *, writable: bool = False) -> memoryview:
    """A view of the ``size`` bytes at ``address`` (no copy): memory the kernel lent a FUSE
    request, valid during that request only (release the view before it returns)."""
    return _from_memory(address, size, _PYBUF_WRITE if writable else _PYBUF_READ)  # type: ignore[no-any-return]
