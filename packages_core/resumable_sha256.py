"""SHA-256 whose running state can be saved as bytes and resumed in another process.

hashlib cannot export a hash's state, so a chunked upload whose next piece lands on
another worker (or node) would have to hash everything received so far again. This
is a thin binding, through ctypes, to OpenSSL's `SHA256_Init`/`SHA256_Update`/
`SHA256_Final` (deprecated in OpenSSL 3 but still exported, and as fast as hashlib:
they are the same code). Their `SHA256_CTX` is plain data, so its bytes are the state.

The state is exported in Go's `crypto/sha256` marshalled form (magic `sha\\x03`, the
eight chaining words, the pending block, the length; all big-endian), not as the C
struct, so it does not depend on the machine's byte order or on OpenSSL's layout.
Loading it copies numbers into a struct: nothing in it can run code. Callers that
keep it where others could change it must authenticate it (uploads seal it with an
HMAC); `from_state` still refuses values no real hash could have.

The binding checks itself against hashlib on known inputs the first time it is used
in a process; if the library is missing or disagrees, `available()` is False and
callers hash without saving state.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import logging
import struct

logger = logging.getLogger(__name__)

BLOCK_SIZE = 64
DIGEST_SIZE = 32
# typedef struct { SHA_LONG h[8]; SHA_LONG Nl, Nh; SHA_LONG data[16];
#                  unsigned int num, md_len; } SHA256_CTX;  (SHA_LONG: 32 bits)
_CTX = struct.Struct("=8I2I64s2I")
MAGIC = b"sha\x03"
_STATE = struct.Struct(">4s8I64sQ")
STATE_SIZE = _STATE.size  # 108 bytes


class StateInvalid(ValueError):
    """Bytes that are not a state `export()` could have produced."""


@functools.cache
def _library():
    """The libcrypto hashlib uses (so one OpenSSL per process), with argument types set."""
    candidates = []
    try:
        import _hashlib

        # dlsym on the extension's handle searches the libraries it links, libcrypto too.
        candidates.append(_hashlib.__file__)
    except (ImportError, AttributeError):
        pass
    found = ctypes.util.find_library("crypto")
    if found:
        candidates.append(found)
    for candidate in candidates:
        try:
            lib = ctypes.CDLL(candidate)
            init, update, final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
        except (OSError, AttributeError):
            continue
        init.argtypes = [ctypes.c_char_p]
        update.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        final.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        init.restype = update.restype = final.restype = ctypes.c_int
        return lib
    return None


class ResumableSha256:
    """A running SHA-256 (hashlib's interface: update, digest, hexdigest, copy) plus
    `size`, `export()` and `from_state()`.

    ctypes releases the GIL during each call, so threads hash in parallel as they do
    with hashlib.
    """

    def __init__(self):
        lib = _library()
        if lib is None:
            raise RuntimeError("OpenSSL's SHA256_* functions are not available")
        self._lib = lib
        self._ctx = ctypes.create_string_buffer(_CTX.size)
        if lib.SHA256_Init(self._ctx) != 1:
            raise RuntimeError("SHA256_Init failed")
        self.size = 0

    def update(self, data) -> None:
        if not isinstance(data, bytes):
            data = bytes(data)
        if data:
            if self._lib.SHA256_Update(self._ctx, data, len(data)) != 1:
                raise RuntimeError("SHA256_Update failed")
            self.size += len(data)

    def copy(self) -> ResumableSha256:
        other = object.__new__(ResumableSha256)
        other._lib, other.size = self._lib, self.size
        other._ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX.size)
        return other

    def digest(self) -> bytes:
        # Final wipes the context it finishes: finish a copy, keep this one going.
        out = ctypes.create_string_buffer(DIGEST_SIZE)
        if self._lib.SHA256_Final(out, self.copy()._ctx) != 1:
            raise RuntimeError("SHA256_Final failed")
        return out.raw

    def hexdigest(self) -> str:
        return self.digest().hex()

    def export(self) -> bytes:
        """The state after `size` bytes, in Go's portable form (STATE_SIZE bytes)."""
        *words, low, high, pending, num, _ = _CTX.unpack(self._ctx.raw)
        length = ((high << 32) | low) >> 3
        block = pending[:num].ljust(BLOCK_SIZE, b"\0")
        return _STATE.pack(MAGIC, *words, block, length)

    @classmethod
    def from_state(cls, state: bytes) -> ResumableSha256:
        """The hash `export()` described, ready to take more bytes; StateInvalid if
        `state` is not such a description.
        """
        if len(state) != STATE_SIZE:
            raise StateInvalid(f"a SHA-256 state has {STATE_SIZE} bytes, not {len(state)}")
        magic, *rest = _STATE.unpack(state)
        words, block, length = rest[:8], rest[8], rest[9]
        if magic != MAGIC or length >= 1 << 61:
            raise StateInvalid("not a SHA-256 state")
        num = length % BLOCK_SIZE
        if block[num:].strip(b"\0"):
            raise StateInvalid("a SHA-256 state's pending block has bytes past its end")
        hasher = cls()
        bits = length << 3
        hasher._ctx = ctypes.create_string_buffer(
            _CTX.pack(*words, bits & 0xFFFFFFFF, bits >> 32, block, num, DIGEST_SIZE), _CTX.size
        )
        hasher.size = length
        return hasher


@functools.cache
def available() -> bool:
    """Whether the binding loads and agrees with hashlib, also across a save and a resume;
    checked once per process.
    """
    try:
        if _library() is None:
            logger.warning("libcrypto's SHA256_* not found: upload hash state is not saved")
            return False
        data = bytes(range(256)) * 1031  # 263,936 bytes: several blocks and a partial one
        for cut in (0, 1, 63, 64, 65, 1000, len(data) - 1, len(data)):
            first = ResumableSha256()
            first.update(data[:cut])
            resumed = ResumableSha256.from_state(first.export())
            resumed.update(data[cut:])
            if resumed.hexdigest() != hashlib.sha256(data).hexdigest():
                raise AssertionError(f"resumed at {cut}, the digest differs from hashlib's")
            if first.hexdigest() != hashlib.sha256(data[:cut]).hexdigest():
                raise AssertionError(f"after {cut} bytes, the digest differs from hashlib's")
        if ResumableSha256().hexdigest() != hashlib.sha256(b"").hexdigest():
            raise AssertionError("the empty digest differs from hashlib's")
    except Exception:
        logger.warning(
            "libcrypto's SHA256_* failed their check against hashlib: "
            "upload hash state is not saved",
            exc_info=True,
        )
        return False
    return True
