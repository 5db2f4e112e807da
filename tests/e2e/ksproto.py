"""ksproto: a second, independent implementation of Kiseki's RPC frame.

Written from the wire-format comment in common/include/ks/rpc.h, not from the
C code, so that the end-to-end tests pin the format: if the C side moves a
field, changes the checksum or the magic, the daemon rejects these frames (or
these decoders reject its replies) and the tests fail.

    header (48 bytes, little-endian)
      0  u32 magic       "KSRP" (0x5052534B)
      4  u8  version     1
      5  u8  kind        1 request, 2 response
      6  u16 opcode
      8  u64 request id
     16  i32 status
     20  u32 body length
     24  u64 bulk length
     32  u32 body crc32c
     36  u32 bulk crc32c
     40  u32 timeout_ms
     44  u32 header crc32c over bytes 0..43
    body, then bulk

CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor
0xFFFFFFFF) is computed in pure Python with a table: slow (a few MB/s), which
is fine for the sizes the tests send.

Only the standard library is used.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import time

__all__ = [
    "MAGIC", "VERSION", "HDR_SIZE", "REQUEST", "RESPONSE",
    "OP_PING", "OP_SINK", "OP_SOURCE", "ERR", "ERR_NAME",
    "crc32c", "encode_header", "encode_request", "encode_frame",
    "decode_header", "Header", "Frame", "FrameError", "PeerClosed",
    "read_frame", "Conn", "wait_closed",
]

MAGIC = 0x5052534B          # b"KSRP" read as a little-endian u32
VERSION = 1
HDR_SIZE = 48
REQUEST = 1
RESPONSE = 2

OP_PING = 1
OP_SINK = 2
OP_SOURCE = 3

# ks/err.h: KS_ERR_BASE = -1000, each code is BASE - offset.  These values
# travel on the wire and must never be renumbered.
_ERR_BASE = -1000
ERR = {
    "KS_EPROTO": _ERR_BASE - 1,
    "KS_EBADMAGIC": _ERR_BASE - 2,
    "KS_EBADVERSION": _ERR_BASE - 3,
    "KS_EBADCRC": _ERR_BASE - 4,
    "KS_ETOOBIG": _ERR_BASE - 5,
    "KS_ETIMEDOUT": _ERR_BASE - 6,
    "KS_ECLOSED": _ERR_BASE - 7,
    "KS_EBUSY": _ERR_BASE - 8,
    "KS_ENOHANDLER": _ERR_BASE - 9,
    "KS_ECONFIG": _ERR_BASE - 10,
    "KS_ETLS": _ERR_BASE - 11,
}
ERR_NAME = {v: k for k, v in ERR.items()}

# Header fields before the header crc, in order.  44 bytes.
_HDR = struct.Struct("<IBBHQiIQIII")
assert _HDR.size == HDR_SIZE - 4


# --- CRC-32C ---------------------------------------------------------------

def _make_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of data; pass a previous result as crc to continue it
    (crc32c(b, crc32c(a)) == crc32c(a + b))."""
    t = _TABLE
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# --- encoding --------------------------------------------------------------

def encode_header(*, kind: int = REQUEST, opcode: int = OP_PING, id: int = 1,
                  status: int = 0, body_len: int = 0, bulk_len: int = 0,
                  body_crc: int = 0, bulk_crc: int = 0, timeout_ms: int = 0,
                  version: int = VERSION, magic: int = MAGIC,
                  hdr_crc: int | None = None) -> bytes:
    """A 48-byte header with exactly these fields.  Every field can be set to
    a wrong value to build malformed frames; hdr_crc=None computes the right
    header crc over the 44 bytes before it."""
    head = _HDR.pack(magic, version, kind, opcode, id, status, body_len,
                     bulk_len, body_crc, bulk_crc, timeout_ms)
    if hdr_crc is None:
        hdr_crc = crc32c(head)
    return head + struct.pack("<I", hdr_crc)


def encode_frame(opcode: int, id: int, body: bytes = b"", bulk: bytes = b"", *,
                 kind: int = REQUEST, status: int = 0, timeout_ms: int = 0,
                 **overrides) -> bytes:
    """A whole frame: header, body, bulk, with correct lengths and crcs
    unless `overrides` (any encode_header keyword) says otherwise."""
    fields = dict(kind=kind, opcode=opcode, id=id, status=status,
                  body_len=len(body), bulk_len=len(bulk),
                  body_crc=crc32c(body), bulk_crc=crc32c(bulk),
                  timeout_ms=timeout_ms)
    fields.update(overrides)
    return encode_header(**fields) + bytes(body) + bytes(bulk)


def encode_request(opcode: int, id: int, body: bytes = b"", bulk: bytes = b"",
                   timeout_ms: int = 0) -> bytes:
    return encode_frame(opcode, id, body, bulk, timeout_ms=timeout_ms)


# --- decoding --------------------------------------------------------------

class FrameError(Exception):
    """The peer sent bytes that are not a valid frame."""


class PeerClosed(Exception):
    """The connection ended (EOF or reset); `partial` bytes of an unfinished
    frame had arrived."""

    def __init__(self, msg: str, partial: int = 0):
        super().__init__(msg)
        self.partial = partial


@dataclasses.dataclass(frozen=True)
class Header:
    magic: int
    version: int
    kind: int
    opcode: int
    id: int
    status: int
    body_len: int
    bulk_len: int
    body_crc: int
    bulk_crc: int
    timeout_ms: int
    hdr_crc: int


@dataclasses.dataclass
class Frame:
    kind: int
    opcode: int
    id: int
    status: int
    timeout_ms: int
    body: bytes
    bulk: bytes

    @property
    def status_name(self) -> str:
        return ERR_NAME.get(self.status, str(self.status))


def decode_header(raw: bytes, max_body: int = 1 << 20,
                  max_bulk: int = 1 << 30) -> Header:
    """Parse and check a 48-byte header (magic, version, crc, kind, limits);
    FrameError if any check fails."""
    if len(raw) != HDR_SIZE:
        raise FrameError(f"header is {len(raw)} bytes, not {HDR_SIZE}")
    fields = _HDR.unpack(raw[:44])
    (hdr_crc,) = struct.unpack("<I", raw[44:])
    h = Header(*fields, hdr_crc)
    if h.magic != MAGIC:
        raise FrameError(f"bad magic {raw[:4]!r}")
    if h.version != VERSION:
        raise FrameError(f"bad version {h.version}")
    if hdr_crc != crc32c(raw[:44]):
        raise FrameError(f"bad header crc {hdr_crc:#010x}")
    if h.kind not in (REQUEST, RESPONSE):
        raise FrameError(f"bad kind {h.kind}")
    if h.body_len > max_body or h.bulk_len > max_bulk:
        raise FrameError(f"lengths too big: body {h.body_len} bulk {h.bulk_len}")
    return h


def _recv_exact(sock: socket.socket, n: int, got_before: int = 0) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except (ConnectionResetError, BrokenPipeError) as e:
            raise PeerClosed(f"connection reset ({e})", got_before + len(buf)) from None
        if not chunk:
            raise PeerClosed("EOF", got_before + len(buf))
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket, max_body: int = 1 << 20,
               max_bulk: int = 1 << 30) -> Frame:
    """Read one whole frame from sock (blocking, with the socket's timeout),
    checking the header and the body and bulk crcs.  PeerClosed on EOF or
    reset, FrameError on a malformed frame, socket.timeout if it stalls."""
    h = decode_header(_recv_exact(sock, HDR_SIZE), max_body, max_bulk)
    body = _recv_exact(sock, h.body_len, HDR_SIZE) if h.body_len else b""
    bulk = _recv_exact(sock, h.bulk_len, HDR_SIZE + h.body_len) if h.bulk_len else b""
    if crc32c(body) != h.body_crc:
        raise FrameError("bad body crc")
    if crc32c(bulk) != h.bulk_crc:
        raise FrameError("bad bulk crc")
    return Frame(h.kind, h.opcode, h.id, h.status, h.timeout_ms, body, bulk)


def wait_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Wait until the peer closes the connection (EOF or reset); returns
    whatever bytes arrived before that.  socket.timeout if it stays open."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    got = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("peer did not close")
        sock.settimeout(left)


# --- a blocking client -----------------------------------------------------

class Conn:
    """One plain TCP connection to an RPC server, for tests.

        with Conn(("127.0.0.1", port)) as c:
            resp = c.call(OP_PING, body=b"x", bulk=b"y")
    """

    def __init__(self, addr: tuple[str, int], timeout: float = 10.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.next_id = 1

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def local_addr(self) -> str:
        """"ip:port" of our end, as the server writes peer= in its log."""
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def send(self, opcode: int, body: bytes = b"", bulk: bytes = b"",
             id: int | None = None, timeout_ms: int = 0) -> int:
        """Send one request; returns its id."""
        if id is None:
            id = self.next_id
            self.next_id += 1
        self.sock.sendall(encode_request(opcode, id, body, bulk, timeout_ms))
        return id

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> Frame:
        self.sock.settimeout(self.timeout)
        return read_frame(self.sock)

    def call(self, opcode: int, body: bytes = b"", bulk: bytes = b"",
             timeout_ms: int = 0) -> Frame:
        """Send one request and read its response; checks that the response
        is a RESPONSE with the same id and opcode."""
        id = self.send(opcode, body, bulk, timeout_ms=timeout_ms)
        f = self.recv()
        if f.kind != RESPONSE or f.id != id or f.opcode != opcode:
            raise FrameError(f"unexpected frame kind={f.kind} id={f.id} "
                             f"opcode={f.opcode} for request id={id} op={opcode}")
        return f
