"""The client end of the AWS Session Manager data channel, as the open-source
session-manager-plugin (which `aws ecs execute-command` launches) speaks it, written from the
plugin's behaviour for Berth's ExecuteCommand acceptance tests.

Wire format of one binary WebSocket message (all integers big-endian):

    offset  size  field
         0     4  header length: 116, the offset of the payload-length field
         4    32  message type, ASCII, padded with spaces
        36     4  schema version (uint32)
        40     8  created date (uint64, epoch milliseconds)
        48     8  sequence number (int64)
        56     8  flags (uint64; bit 0 SYN, bit 1 FIN)
        64    16  message id: the UUID's low 8 bytes, then its high 8 bytes
        80    32  SHA-256 of the payload
       112     4  payload type (uint32)
       116     4  payload length (uint32)
       120     n  payload

A session: open the WebSocket on the stream URL and send, as a text frame, the
OpenDataChannelInput JSON carrying the token. The server then sends `output_stream_data`
messages numbered 0, 1, 2, ... (a HandshakeRequest first, a HandshakeComplete once the client
has answered it, then the command's output); the client acknowledges each and handles them in
sequence order. The client's own `input_stream_data` messages (HandshakeResponse, terminal
size, keystrokes) are numbered from 0 too, and the server acknowledges them. `channel_closed`
ends the session.

Nothing here is the plugin's code: the format and behaviour were read from it and written
anew. Where this client deliberately differs from the plugin it says so (DataChannelClient).
"""

from __future__ import annotations

import hashlib
import json
import ssl
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus  # noqa: F401 - re-exported
from websockets.sync.client import ClientConnection, connect

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

# Message types.
INPUT_STREAM_DATA = "input_stream_data"
OUTPUT_STREAM_DATA = "output_stream_data"
ACKNOWLEDGE = "acknowledge"
CHANNEL_CLOSED = "channel_closed"
START_PUBLICATION = "start_publication"
PAUSE_PUBLICATION = "pause_publication"

# Payload types.
OUTPUT = 1
ERROR = 2
SIZE = 3
PARAMETER = 4
HANDSHAKE_REQUEST = 5
HANDSHAKE_RESPONSE = 6
HANDSHAKE_COMPLETE = 7
ENC_CHALLENGE_REQUEST = 8
ENC_CHALLENGE_RESPONSE = 9
FLAG = 10
STDERR = 11
EXIT_CODE = 12

PAYLOAD_TYPE_NAMES = {
    OUTPUT: "Output",
    ERROR: "Error",
    SIZE: "Size",
    PARAMETER: "Parameter",
    HANDSHAKE_REQUEST: "HandshakeRequest",
    HANDSHAKE_RESPONSE: "HandshakeResponse",
    HANDSHAKE_COMPLETE: "HandshakeComplete",
    ENC_CHALLENGE_REQUEST: "EncChallengeRequest",
    ENC_CHALLENGE_RESPONSE: "EncChallengeResponse",
    FLAG: "Flag",
    STDERR: "StdErr",
    EXIT_CODE: "ExitCode",
}

# Flag bits.
FLAG_SYN = 1
FLAG_FIN = 2

# Handshake action types and statuses.
ACTION_SESSION_TYPE = "SessionType"
ACTION_KMS_ENCRYPTION = "KMSEncryption"
ACTION_SUCCESS = 1
ACTION_FAILED = 2
ACTION_UNSUPPORTED = 3
# The session types the plugin accepts in a SessionType action (the first three all run as a
# shell-like stream).
KNOWN_SESSION_TYPES = ("Standard_Stream", "InteractiveCommands", "NonInteractiveCommands", "Port")

HEADER_LENGTH = 116  # offset of the payload-length field
PAYLOAD_OFFSET = HEADER_LENGTH + 4
MESSAGE_TYPE_LENGTH = 32
SCHEMA_VERSION = 1
OPEN_SCHEMA_VERSION = "1.0"
# A released plugin version (what `session-manager-plugin --version` prints).
DEFAULT_CLIENT_VERSION = "1.2.650.0"
# The plugin reads stdin 1024 bytes at a time: one input message per read.
INPUT_CHUNK = 1024

# Field offsets, for readers of raw bytes.
OFFSETS = {
    "header_length": 0,
    "message_type": 4,
    "schema_version": 36,
    "created_date": 40,
    "sequence_number": 48,
    "flags": 56,
    "message_id": 64,
    "payload_digest": 80,
    "payload_type": 112,
    "payload_length": 116,
    "payload": 120,
}

_HEADER = struct.Struct(">I32sIQqQ16s32sII")
assert _HEADER.size == PAYLOAD_OFFSET


class MessageError(ValueError):
    """Bytes that are not a well-formed data-channel message."""


def now_millis() -> int:
    return time.time_ns() // 1_000_000


def uuid_to_wire(value: uuid.UUID) -> bytes:
    """The 16 bytes of a message id on the wire: low half first, then high half."""
    raw = value.bytes
    return raw[8:] + raw[:8]


def uuid_from_wire(raw: bytes) -> uuid.UUID:
    if len(raw) != 16:
        raise MessageError(f"a message id is 16 bytes, got {len(raw)}")
    return uuid.UUID(bytes=raw[8:] + raw[:8])


def go_json(value: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, no spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The message
# ---------------------------------------------------------------------------------------------


@dataclass
class ClientMessage:
    """One data-channel message. encode() computes the digest and the lengths; decode()
    checks them."""

    message_type: str
    payload: bytes = b""
    payload_type: int = 0
    sequence_number: int = 0
    flags: int = 0
    message_id: uuid.UUID = field(default_factory=uuid.uuid4)
    schema_version: int = SCHEMA_VERSION
    created_date: int = field(default_factory=now_millis)
    # Filled by decode(); encode() always writes HEADER_LENGTH and the real digest.
    header_length: int = HEADER_LENGTH
    payload_digest: bytes = b""

    def encode(self) -> bytes:
        kind = self.message_type.encode("ascii")
        if not kind or len(kind) > MESSAGE_TYPE_LENGTH:
            raise MessageError(f"message type must be 1..32 ASCII bytes: {self.message_type!r}")
        payload = bytes(self.payload)
        header = _HEADER.pack(
            HEADER_LENGTH,
            kind.ljust(MESSAGE_TYPE_LENGTH, b" "),
            self.schema_version,
            self.created_date,
            self.sequence_number,
            self.flags,
            uuid_to_wire(self.message_id),
            hashlib.sha256(payload).digest(),
            self.payload_type,
            len(payload),
        )
        return header + payload

    @classmethod
    def decode(cls, data: bytes) -> "ClientMessage":
        """Parses one message; raises MessageError on a short buffer, a header length other
        than 116, a payload length that does not match the bytes that follow, an empty
        message type or a payload digest that is not the payload's SHA-256."""
        data = bytes(data)
        if len(data) < PAYLOAD_OFFSET:
            raise MessageError(f"message is {len(data)} bytes, shorter than its {PAYLOAD_OFFSET}-byte header")
        (
            header_length,
            kind,
            schema_version,
            created_date,
            sequence_number,
            flags,
            message_id,
            digest,
            payload_type,
            payload_length,
        ) = _HEADER.unpack_from(data)
        if header_length != HEADER_LENGTH:
            raise MessageError(f"header length is {header_length}, expected {HEADER_LENGTH}")
        payload = data[PAYLOAD_OFFSET:]
        if len(payload) != payload_length:
            raise MessageError(f"payload length field says {payload_length} bytes, {len(payload)} follow")
        if hashlib.sha256(payload).digest() != digest:
            raise MessageError("payload digest is not the SHA-256 of the payload")
        try:
            message_type = kind.strip(b"\x00").decode("ascii").strip()
        except UnicodeDecodeError:
            raise MessageError(f"message type is not ASCII: {kind!r}") from None
        if not message_type:
            raise MessageError("message type is empty")
        return cls(
            message_type=message_type,
            payload=payload,
            payload_type=payload_type,
            sequence_number=sequence_number,
            flags=flags,
            message_id=uuid_from_wire(message_id),
            schema_version=schema_version,
            created_date=created_date,
            header_length=header_length,
            payload_digest=digest,
        )

    def plugin_rejection(self) -> Optional[str]:
        """Why the plugin's own validation would drop this message (it does so silently,
        without acknowledging it), or None. Publication messages are never checked."""
        if self.message_type in (START_PUBLICATION, PAUSE_PUBLICATION):
            return None
        if self.header_length == 0:
            return "header length is zero"
        if not self.message_type:
            return "message type is missing"
        if self.created_date == 0:
            return "created date is zero"
        return None

    def json(self) -> Any:
        return json.loads(self.payload)

    @property
    def payload_type_name(self) -> str:
        return PAYLOAD_TYPE_NAMES.get(self.payload_type, str(self.payload_type))


def acknowledgement_content(message: ClientMessage) -> dict[str, Any]:
    """What an acknowledge message says about the message it acknowledges."""
    return {
        "AcknowledgedMessageType": message.message_type,
        "AcknowledgedMessageId": str(message.message_id),
        "AcknowledgedMessageSequenceNumber": message.sequence_number,
        "IsSequentialMessage": True,
    }


def acknowledgement_for(message: ClientMessage) -> ClientMessage:
    """The acknowledge message the plugin sends for `message`: sequence number 0, flags
    SYN|FIN, payload type 0, the content as compact JSON."""
    return ClientMessage(
        message_type=ACKNOWLEDGE,
        payload=go_json(acknowledgement_content(message)),
        payload_type=0,
        sequence_number=0,
        flags=FLAG_SYN | FLAG_FIN,
    )


def open_data_channel_input(token: str, client_id: str, client_version: str, request_id: Optional[str] = None) -> str:
    """The text frame a client sends first on a new data channel."""
    return go_json(
        {
            "MessageSchemaVersion": OPEN_SCHEMA_VERSION,
            "RequestId": request_id or str(uuid.uuid4()),
            "TokenValue": token,
            "ClientId": client_id,
            "ClientVersion": client_version,
        }
    ).decode("utf-8")


def handshake_response(
    request: dict[str, Any], client_version: str, extra_fields: Optional[dict[str, Any]] = None
) -> tuple[dict[str, Any], Optional[str]]:
    """The plugin's answer to a HandshakeRequest payload, and the session type it accepted
    (None if none). SessionType actions naming a known type succeed (status 1), others fail
    (2). This client has no KMS, so KMSEncryption fails. Any other action is answered as the
    plugin does: ActionStatus left 0 with ActionResult 3 (Unsupported). `extra_fields` are
    merged into the top-level object."""
    processed: list[dict[str, Any]] = []
    errors: list[str] = []
    session_type: Optional[str] = None
    for action in request.get("RequestedClientActions") or []:
        kind = action.get("ActionType")
        params = action.get("ActionParameters")
        answer: dict[str, Any] = {"ActionType": kind, "ActionStatus": 0, "ActionResult": None, "Error": ""}
        if kind == ACTION_SESSION_TYPE:
            requested = params.get("SessionType") if isinstance(params, dict) else None
            if requested in KNOWN_SESSION_TYPES:
                answer["ActionStatus"] = ACTION_SUCCESS
                session_type = requested
            else:
                answer["ActionStatus"] = ACTION_FAILED
                answer["Error"] = f"Failed to process action SessionType: Unknown session type {requested}"
                errors.append(f"Unknown session type {requested}")
        elif kind == ACTION_KMS_ENCRYPTION:
            answer["ActionStatus"] = ACTION_FAILED
            answer["Error"] = "Failed to process action KMSEncryption: this test client has no KMS"
            errors.append("this test client has no KMS")
        else:
            answer["ActionResult"] = ACTION_UNSUPPORTED
            answer["Error"] = f"Unsupported action {kind}"
            errors.append(answer["Error"])
        processed.append(answer)
    response: dict[str, Any] = {
        "ClientVersion": client_version,
        "ProcessedClientActions": processed,
        "Errors": errors or None,
    }
    response.update(extra_fields or {})
    return response, session_type


# ---------------------------------------------------------------------------------------------
# Ordering of the server's stream
# ---------------------------------------------------------------------------------------------


class OutputSequencer:
    """Puts the server's output_stream_data messages in sequence order, as the plugin does:
    the expected message is handled at once (with any buffered ones it releases), a later one
    is acknowledged and buffered, an earlier one (a duplicate) is dropped. No I/O."""

    def __init__(self, ack_duplicates: bool = True) -> None:
        self.expected = 0
        self.buffered: dict[int, ClientMessage] = {}
        self.ack_duplicates = ack_duplicates

    def accept(self, message: ClientMessage) -> tuple[str, bool, list[ClientMessage]]:
        """(disposition, acknowledge it now, messages now ready in order). Disposition is
        "in_order", "buffered" or "duplicate". An in-order message is acknowledged by the
        caller when it handles it (the ready list starts with it)."""
        seq = message.sequence_number
        if seq == self.expected:
            ready = [message]
            self.expected += 1
            while self.expected in self.buffered:
                ready.append(self.buffered.pop(self.expected))
                self.expected += 1
            return "in_order", False, ready
        if seq > self.expected:
            self.buffered[seq] = message
            return "buffered", True, []
        return "duplicate", self.ack_duplicates, []


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One frame from the server. `disposition`: what the client did with it: in_order,
    buffered, duplicate (output_stream_data); acknowledge; channel_closed; publication;
    rejected (the plugin's validation would drop it); after_close (arrived after
    channel_closed, not handled); unknown."""

    message_type: str
    payload_type: int
    sequence_number: int
    flags: int
    message_id: uuid.UUID
    payload: bytes
    disposition: str
    at: float  # time.monotonic()

    def __repr__(self) -> str:
        name = PAYLOAD_TYPE_NAMES.get(self.payload_type, str(self.payload_type))
        return f"<{self.message_type} {name} seq={self.sequence_number} {self.disposition} {self.payload[:60]!r}>"


@dataclass(frozen=True)
class Sent:
    """One binary message this client sent (`resend`: a retransmission)."""

    message_type: str
    payload_type: int
    sequence_number: int
    payload: bytes
    resend: bool
    at: float
    message_id: uuid.UUID


@dataclass
class _Outgoing:
    raw: bytes
    message: ClientMessage
    last_sent: float
    attempts: int = 1


class ChannelTimeout(AssertionError):
    """A wait on the data channel ran out of time."""


T = TypeVar("T")


class DataChannelClient:
    """A data-channel client behaving as the session-manager-plugin does.

    connect() opens the WebSocket (ws://, or wss:// verified against `cafile` or the system
    CAs), sends OpenDataChannelInput and starts one reader thread, which:
      - acknowledges and handles the server's output_stream_data in sequence order, buffering
        early ones (acknowledged on arrival) and dropping duplicates (acknowledged too unless
        ack_duplicates=False; the plugin does not acknowledge them);
      - acknowledges a HandshakeRequest, then answers it with a HandshakeResponse (unless
        auto_handshake=False: then the test calls answer_handshake());
        acknowledges HandshakeComplete; collects Output and StdErr bytes and an ExitCode;
      - records which of its own input messages the server acknowledged, and retransmits the
        oldest unacknowledged one every `resend_after` seconds (None: never);
      - on channel_closed keeps its JSON and handles nothing after it.
    Everything received is in `received`, everything sent in `sent`. Frames that do not
    decode, or that the plugin's validation would drop, go to `errors` as well.

    Differences from the plugin: messages released from the reorder buffer go through the
    same handling as in-order ones (the plugin gives them to the display only); output is
    handled as soon as it arrives (the plugin briefly withholds the acknowledgement of
    output that comes before its shell handler is registered); EncChallengeRequest (KMS) is
    acknowledged but not answered. close() ends the reader thread and the connection.
    """

    def __init__(
        self,
        stream_url: str,
        token: str,
        *,
        cafile: Optional[str] = None,
        client_version: str = DEFAULT_CLIENT_VERSION,
        client_id: Optional[str] = None,
        extra_handshake_fields: Optional[dict[str, Any]] = None,
        ack_duplicates: bool = True,
        resend_after: Optional[float] = 0.2,
        auto_handshake: bool = True,
        open_timeout: float = 10.0,
        close_timeout: float = 5.0,
    ) -> None:
        if not stream_url.startswith(("ws://", "wss://")):
            raise ValueError(f"a stream URL is ws:// or wss://, got {stream_url!r}")
        self.stream_url = stream_url
        self.token = token
        self.cafile = cafile
        self.client_version = client_version
        self.client_id = client_id or str(uuid.uuid4())
        self.extra_handshake_fields = dict(extra_handshake_fields or {})
        self.resend_after = resend_after
        self.auto_handshake = auto_handshake
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout

        self._ws: Optional[ClientConnection] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._cond = threading.Condition(threading.RLock())
        self._send_lock = threading.Lock()
        self._sequencer = OutputSequencer(ack_duplicates)

        # Everything below is guarded by _cond.
        self._next_seq = 0
        self._unacked: dict[int, _Outgoing] = {}
        self.received: list[Received] = []
        self.sent: list[Sent] = []
        self.acks_sent: list[tuple[str, int]] = []  # (acknowledged type, sequence number)
        self.acknowledged: set[int] = set()  # own sequence numbers the server acknowledged
        self.ack_contents: list[dict[str, Any]] = []  # the server's acknowledge payloads
        self.handled_sequence_numbers: list[int] = []  # output_stream_data handled, in order
        self.output = b""
        self.stderr = b""
        self.exit_code: Optional[int] = None
        self.other_payloads: list[tuple[int, bytes]] = []
        self.handshake_request: Optional[dict[str, Any]] = None
        self.handshake_response: Optional[dict[str, Any]] = None
        self.handshake_complete: Optional[dict[str, Any]] = None
        self.session_type: Optional[str] = None
        self.channel_closed: Optional[dict[str, Any]] = None
        self.errors: list[str] = []
        # Sends from the reader thread that found the connection already closed.
        self.send_failures: list[str] = []
        self.disconnected = False
        self.close_code: Optional[int] = None
        self.close_reason: Optional[str] = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def connect(self) -> "DataChannelClient":
        """Opens the WebSocket and presents the token. A refused upgrade raises
        InvalidHandshake (InvalidStatus for an HTTP error status)."""
        context = None
        if self.stream_url.startswith("wss://"):
            context = ssl.create_default_context(cafile=self.cafile)
        self._ws = connect(
            self.stream_url,
            ssl=context,
            open_timeout=self.open_timeout,
            close_timeout=self.close_timeout,
            ping_interval=None,
            compression=None,
            proxy=None,
            max_size=None,
            legacy=True,  # the connection itself, not a context manager
        )
        self._send_raw(open_data_channel_input(self.token, self.client_id, self.client_version))
        self._thread = threading.Thread(target=self._read_loop, name="ssm-data-channel", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Closes the connection and ends the reader thread; raises if it would not end."""
        self._stop.set()
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception as e:  # noqa: BLE001 - closing a broken connection
                self._note_error(f"close: {e!r}")
            if not self._ws.wait_closed(self.close_timeout + 1):
                raise RuntimeError("the WebSocket connection did not close")
        if self._thread is not None:
            self._thread.join(self.close_timeout + 1)
            if self._thread.is_alive():
                raise RuntimeError("the data-channel reader thread did not end")
        with self._cond:
            self.disconnected = True
            self._cond.notify_all()

    def __enter__(self) -> "DataChannelClient":
        return self.connect() if self._ws is None else self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- sending -----------------------------------------------------------------------------

    def send_message(self, payload_type: int, payload: bytes) -> int:
        """Sends one input_stream_data message with the next sequence number; returns it."""
        with self._send_lock:
            with self._cond:
                seq = self._next_seq
                self._next_seq += 1
                message = ClientMessage(INPUT_STREAM_DATA, bytes(payload), payload_type, seq, flags=0)
                raw = message.encode()
                now = time.monotonic()
                self._unacked[seq] = _Outgoing(raw, message, now)
                self.sent.append(Sent(INPUT_STREAM_DATA, payload_type, seq, message.payload, False, now, message.message_id))
            self._ws_send(raw)
        return seq

    def send_input(self, data: bytes) -> list[int]:
        """Keystrokes, as the plugin sends them (PayloadType Output, at most 1024 bytes a
        message; a lone b"\\n" goes as b"\\r"). Returns the sequence numbers used."""
        data = bytes(data)
        if data == b"\n":
            data = b"\r"
        return [self.send_message(OUTPUT, data[i : i + INPUT_CHUNK]) for i in range(0, len(data), INPUT_CHUNK)]

    def send_size(self, cols: int, rows: int) -> int:
        """The terminal size (PayloadType Size, {"cols":..,"rows":..})."""
        return self.send_message(SIZE, go_json({"cols": cols, "rows": rows}))

    def _send_raw(self, frame: bytes | str) -> None:
        with self._send_lock:
            self._ws_send(frame)

    def _ws_send(self, frame: bytes | str) -> None:
        assert self._ws is not None, "connect() first"
        self._ws.send(frame)

    # ---- waiting -----------------------------------------------------------------------------

    def wait_for(self, probe: Callable[[], T], timeout: float, what: str) -> T:
        """Waits until `probe()` (called with the state locked) is truthy and returns it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = probe()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout(f"timed out after {timeout}s waiting for {what}\n{self.describe()}")
                self._cond.wait(min(left, 0.5))

    def wait_for_handshake_request(self, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait_for(lambda: self.handshake_request, timeout, "HandshakeRequest")

    def wait_for_handshake(self, timeout: float = 15.0) -> dict[str, Any]:
        """The HandshakeComplete payload, once it came."""
        return self.wait_for(lambda: self.handshake_complete, timeout, "HandshakeComplete")

    def wait_for_output(self, needle: bytes, timeout: float = 15.0, after: int = 0) -> bytes:
        """All Output so far, once `needle` is in it past offset `after`."""
        return self.wait_for(lambda: needle in self.output[after:] and self.output, timeout, f"{needle!r} in the output")

    def wait_for_channel_closed(self, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait_for(lambda: self.channel_closed, timeout, "channel_closed")

    def wait_for_disconnect(self, timeout: float = 15.0) -> None:
        """Until the connection is gone (closed by the server, or by close())."""
        self.wait_for(lambda: self.disconnected, timeout, "the connection to close")

    def wait_acknowledged(self, sequence_numbers: list[int] | set[int], timeout: float = 15.0) -> None:
        wanted = set(sequence_numbers)
        self.wait_for(lambda: wanted <= self.acknowledged, timeout, f"acknowledgements of {sorted(wanted)}")

    # ---- views -------------------------------------------------------------------------------

    def received_of(self, message_type: str) -> list[Received]:
        with self._cond:
            return [r for r in self.received if r.message_type == message_type]

    def output_stream(self) -> list[Received]:
        """The server's output_stream_data messages, in arrival order (duplicates included)."""
        return self.received_of(OUTPUT_STREAM_DATA)

    def describe(self) -> str:
        with self._cond:
            lines = [
                f"stream {self.stream_url} disconnected={self.disconnected} close={self.close_code} {self.close_reason!r}",
                f"received ({len(self.received)}): {self.received[-30:]}",
                f"sent: {[(s.payload_type, s.sequence_number, s.resend) for s in self.sent[-30:]]}",
                f"acknowledged by the server: {sorted(self.acknowledged)}",
                f"output tail: {self.output[-400:]!r}",
                f"errors: {self.errors[-10:]}",
            ]
        return "\n".join(lines)

    # ---- the reader thread ---------------------------------------------------------------------

    def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            while not self._stop.is_set():
                try:
                    frame = self._ws.recv(timeout=0.05)
                except TimeoutError:
                    self._maybe_resend()
                    continue
                except ConnectionClosed as e:
                    with self._cond:
                        rcvd = e.rcvd
                        self.close_code = rcvd.code if rcvd is not None else None
                        self.close_reason = rcvd.reason if rcvd is not None else None
                    break
                self._on_frame(frame)
                self._maybe_resend()
        except Exception as e:  # noqa: BLE001 - recorded, and the waiters are woken
            self._note_error(f"reader: {e!r}")
        finally:
            with self._cond:
                self.disconnected = True
                self._cond.notify_all()

    def _note_error(self, text: str) -> None:
        with self._cond:
            self.errors.append(text)
            self._cond.notify_all()

    def _record(self, message: ClientMessage, disposition: str) -> None:
        with self._cond:
            self.received.append(
                Received(
                    message.message_type,
                    message.payload_type,
                    message.sequence_number,
                    message.flags,
                    message.message_id,
                    message.payload,
                    disposition,
                    time.monotonic(),
                )
            )
            self._cond.notify_all()

    def _on_frame(self, frame: bytes | str) -> None:
        raw = frame.encode("utf-8") if isinstance(frame, str) else frame
        try:
            message = ClientMessage.decode(raw)
        except MessageError as e:
            kind = "text" if isinstance(frame, str) else "binary"
            self._note_error(f"undecodable {kind} frame ({e}): {raw[:200]!r}")
            return
        rejection = message.plugin_rejection()
        if rejection:
            self._record(message, "rejected")
            self._note_error(f"{message.message_type} seq {message.sequence_number}: the plugin would drop it: {rejection}")
            return
        with self._cond:
            closed = self.channel_closed is not None
        if closed:
            self._record(message, "after_close")
            return
        kind = message.message_type
        if kind == OUTPUT_STREAM_DATA:
            disposition, ack_now, ready = self._sequencer.accept(message)
            self._record(message, disposition)
            if ack_now:
                self._acknowledge(message)
            for item in ready:
                self._handle_output(item, acknowledge=item is message)
        elif kind == ACKNOWLEDGE:
            self._record(message, "acknowledge")
            self._on_acknowledge(message)
        elif kind == CHANNEL_CLOSED:
            self._record(message, "channel_closed")
            try:
                content = message.json()
            except ValueError as e:
                self._note_error(f"channel_closed payload is not JSON: {e}")
                content = {}
            with self._cond:
                self.channel_closed = content if isinstance(content, dict) and content else {"Output": ""}
                self._cond.notify_all()
        elif kind in (START_PUBLICATION, PAUSE_PUBLICATION):
            self._record(message, "publication")
        else:
            self._record(message, "unknown")

    def _acknowledge(self, message: ClientMessage) -> None:
        try:
            self._send_raw(acknowledgement_for(message).encode())
        except ConnectionClosed:
            with self._cond:
                self.send_failures.append(f"ack of {message.message_type} seq {message.sequence_number}")
            return
        with self._cond:
            self.acks_sent.append((message.message_type, message.sequence_number))

    def _on_acknowledge(self, message: ClientMessage) -> None:
        try:
            content = message.json()
            seq = int(content["AcknowledgedMessageSequenceNumber"])
        except (ValueError, KeyError, TypeError) as e:
            self._note_error(f"acknowledge payload unreadable ({e!r}): {message.payload[:200]!r}")
            return
        with self._cond:
            self.ack_contents.append(content)
            self.acknowledged.add(seq)
            self._unacked.pop(seq, None)
            self._cond.notify_all()

    def _handle_output(self, message: ClientMessage, acknowledge: bool) -> None:
        kind = message.payload_type
        if kind in (HANDSHAKE_REQUEST, HANDSHAKE_COMPLETE, ENC_CHALLENGE_REQUEST):
            # The plugin acknowledges these before acting on them.
            if acknowledge:
                self._acknowledge(message)
            with self._cond:
                self.handled_sequence_numbers.append(message.sequence_number)
            if kind == HANDSHAKE_REQUEST:
                self._on_handshake_request(message)
            elif kind == HANDSHAKE_COMPLETE:
                try:
                    complete = message.json()
                except ValueError as e:
                    self._note_error(f"HandshakeComplete payload is not JSON: {e}")
                    complete = None
                if not isinstance(complete, dict):
                    self._note_error(f"HandshakeComplete payload is not an object: {message.payload[:200]!r}")
                    complete = {"_unreadable": message.payload.decode("utf-8", "replace")}
                with self._cond:
                    self.handshake_complete = complete
                    self._cond.notify_all()
            else:
                self._note_error("EncChallengeRequest received: this client does not do KMS encryption")
            return
        with self._cond:
            if kind == OUTPUT:
                self.output += message.payload
            elif kind == STDERR:
                self.stderr += message.payload
            elif kind == EXIT_CODE:
                try:
                    self.exit_code = int(message.payload.decode("ascii").strip())
                except ValueError:
                    self.errors.append(f"ExitCode payload is not a decimal number: {message.payload!r}")
            else:
                self.other_payloads.append((kind, message.payload))
            self.handled_sequence_numbers.append(message.sequence_number)
            self._cond.notify_all()
        # Output is acknowledged once handled.
        if acknowledge:
            self._acknowledge(message)

    def _on_handshake_request(self, message: ClientMessage) -> None:
        try:
            request = message.json()
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            self._note_error(f"HandshakeRequest payload unreadable ({e}): {message.payload[:200]!r}")
            return
        with self._cond:
            self.handshake_request = request
            self._cond.notify_all()
        if self.auto_handshake:
            try:
                self.answer_handshake()
            except ConnectionClosed:
                with self._cond:
                    self.send_failures.append("HandshakeResponse")

    def answer_handshake(self) -> int:
        """Sends the HandshakeResponse to the HandshakeRequest received; returns its
        sequence number. Done by the reader itself unless auto_handshake=False."""
        with self._cond:
            if self.handshake_request is None:
                raise RuntimeError("no HandshakeRequest has come")
            if self.handshake_response is not None:
                raise RuntimeError("the HandshakeRequest was already answered")
            response, session_type = handshake_response(
                self.handshake_request, self.client_version, self.extra_handshake_fields
            )
            self.handshake_response = response
            self.session_type = session_type
        return self.send_message(HANDSHAKE_RESPONSE, go_json(response))

    def _maybe_resend(self) -> None:
        if self.resend_after is None:
            return
        with self._send_lock:
            with self._cond:
                if not self._unacked:
                    return
                oldest = self._unacked[min(self._unacked)]
                now = time.monotonic()
                if now - oldest.last_sent < self.resend_after:
                    return
                oldest.last_sent = now
                oldest.attempts += 1
                m = oldest.message
                self.sent.append(Sent(m.message_type, m.payload_type, m.sequence_number, m.payload, True, now, m.message_id))
            try:
                self._ws_send(oldest.raw)
            except ConnectionClosed:
                pass
