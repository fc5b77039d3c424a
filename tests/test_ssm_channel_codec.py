"""Unit tests of tests/ssm_channel.py, the Session Manager data-channel client the
ExecuteCommand acceptance tests use. No Berth server: the codec on known bytes, the
acknowledgement and handshake payloads, the ordering of the server's stream, and the client
against a scripted WebSocket peer on loopback."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
import uuid
from typing import Any, Callable

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.server import ServerConnection, serve

import ssm_channel as sc
from ssm_channel import ClientMessage, DataChannelClient, MessageError

KNOWN_ID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")


def known_message() -> ClientMessage:
    return ClientMessage(
        message_type="output_stream_data",
        payload=b"hello",
        payload_type=sc.OUTPUT,
        sequence_number=0x0102030405060708,
        flags=3,
        message_id=KNOWN_ID,
        schema_version=1,
        created_date=0x0000018F12345678,
    )


# ---------------------------------------------------------------------------------------------
# The codec
# ---------------------------------------------------------------------------------------------


def test_every_header_field_is_at_its_offset_big_endian() -> None:
    raw = known_message().encode()
    digest = hashlib.sha256(b"hello").digest()
    expected = (
        bytes.fromhex("00000074")  # header length 116
        + b"output_stream_data" + b" " * 14  # 32 bytes, space padded
        + bytes.fromhex("00000001")  # schema version
        + bytes.fromhex("0000018f12345678")  # created date
        + bytes.fromhex("0102030405060708")  # sequence number
        + bytes.fromhex("0000000000000003")  # flags
        + bytes.fromhex("8899aabbccddeeff" "0011223344556677")  # id: low half, then high half
        + digest
        + bytes.fromhex("00000001")  # payload type
        + bytes.fromhex("00000005")  # payload length
        + b"hello"
    )
    assert raw == expected
    assert len(raw) == 125
    # The same, field by field, at the offsets the module publishes.
    assert raw[0:4] == b"\x00\x00\x00\x74"
    assert raw[4:36] == b"output_stream_data              "
    assert raw[36:40] == b"\x00\x00\x00\x01"
    assert raw[40:48] == bytes.fromhex("0000018f12345678")
    assert raw[48:56] == bytes.fromhex("0102030405060708")
    assert raw[56:64] == bytes.fromhex("0000000000000003")
    assert raw[64:80] == bytes.fromhex("8899aabbccddeeff0011223344556677")
    assert raw[80:112] == digest
    assert raw[112:116] == b"\x00\x00\x00\x01"
    assert raw[116:120] == b"\x00\x00\x00\x05"
    assert raw[120:] == b"hello"
    assert [sc.OFFSETS[k] for k in ("message_type", "message_id", "payload_digest", "payload")] == [4, 64, 80, 120]


def test_round_trip_keeps_every_field() -> None:
    original = ClientMessage(
        message_type=sc.INPUT_STREAM_DATA,
        payload=bytes(range(256)) * 5,
        payload_type=sc.SIZE,
        sequence_number=-1,  # int64 on the wire
        flags=(1 << 64) - 1,  # uint64
        schema_version=7,
        created_date=1_700_000_000_123,
    )
    raw = original.encode()
    assert raw[48:56] == b"\xff" * 8 and raw[56:64] == b"\xff" * 8
    back = ClientMessage.decode(raw)
    for name in ("message_type", "payload", "payload_type", "sequence_number", "flags", "schema_version", "created_date", "message_id"):
        assert getattr(back, name) == getattr(original, name), name
    assert back.header_length == 116
    assert back.payload_digest == hashlib.sha256(original.payload).digest()
    assert back.encode() == raw


def test_empty_payload_round_trips_with_the_digest_of_nothing() -> None:
    raw = ClientMessage(sc.START_PUBLICATION).encode()
    assert len(raw) == 120
    assert raw[80:112] == hashlib.sha256(b"").digest()
    assert raw[116:120] == b"\x00\x00\x00\x00"
    assert ClientMessage.decode(raw).payload == b""


def test_message_id_bytes_are_low_half_first() -> None:
    wire = bytes.fromhex("8899aabbccddeeff0011223344556677")
    assert sc.uuid_to_wire(KNOWN_ID) == wire
    assert sc.uuid_from_wire(wire) == KNOWN_ID
    # A message built by hand with those bytes decodes to the UUID, and the acknowledgement
    # names it in its canonical (high half first) text form.
    raw = bytearray(known_message().encode())
    assert raw[64:80] == wire
    decoded = ClientMessage.decode(bytes(raw))
    assert decoded.message_id == KNOWN_ID
    assert sc.acknowledgement_content(decoded)["AcknowledgedMessageId"] == "00112233-4455-6677-8899-aabbccddeeff"
    for _ in range(20):
        random_id = uuid.uuid4()
        assert sc.uuid_from_wire(sc.uuid_to_wire(random_id)) == random_id
        assert sc.uuid_to_wire(random_id) != random_id.bytes


def test_message_type_padding_with_spaces_or_nuls_is_trimmed() -> None:
    raw = bytearray(known_message().encode())
    raw[4:36] = b"acknowledge".ljust(32, b"\x00")
    assert ClientMessage.decode(bytes(raw)).message_type == "acknowledge"
    with pytest.raises(MessageError):
        ClientMessage("x" * 33).encode()
    blank = bytearray(raw)
    blank[4:36] = b" " * 32
    with pytest.raises(MessageError, match="empty"):
        ClientMessage.decode(bytes(blank))


def test_a_payload_or_digest_changed_in_transit_is_rejected() -> None:
    raw = known_message().encode()
    payload_flipped = raw[:-1] + bytes([raw[-1] ^ 0x01])
    with pytest.raises(MessageError, match="digest"):
        ClientMessage.decode(payload_flipped)
    digest_flipped = bytearray(raw)
    digest_flipped[80] ^= 0x80
    with pytest.raises(MessageError, match="digest"):
        ClientMessage.decode(bytes(digest_flipped))
    zero_digest = bytearray(ClientMessage(sc.ACKNOWLEDGE).encode())
    zero_digest[80:112] = bytes(32)
    with pytest.raises(MessageError, match="digest"):
        ClientMessage.decode(bytes(zero_digest))


@pytest.mark.parametrize("cut", [0, 1, 4, 36, 64, 100, 119])
def test_a_buffer_shorter_than_the_header_is_rejected(cut: int) -> None:
    raw = known_message().encode()
    with pytest.raises(MessageError, match="shorter"):
        ClientMessage.decode(raw[:cut])


def test_lengths_that_disagree_with_the_bytes_are_rejected() -> None:
    raw = known_message().encode()
    with pytest.raises(MessageError, match="payload length"):
        ClientMessage.decode(raw[:-2])  # 3 of 5 payload bytes
    with pytest.raises(MessageError, match="payload length"):
        ClientMessage.decode(raw + b"!")
    other_header = bytearray(raw)
    other_header[0:4] = struct.pack(">I", 112)
    with pytest.raises(MessageError, match="header length"):
        ClientMessage.decode(bytes(other_header))


def test_what_the_plugins_validation_would_drop() -> None:
    assert known_message().plugin_rejection() is None
    undated = known_message()
    undated.created_date = 0
    assert "created date" in ClientMessage.decode(undated.encode()).plugin_rejection()
    paused = ClientMessage(sc.PAUSE_PUBLICATION, created_date=0)
    assert paused.plugin_rejection() is None


def test_acknowledgement_has_the_plugins_shape() -> None:
    acked = known_message()
    acked.sequence_number = 42
    ack = sc.acknowledgement_for(acked)
    assert ack.message_type == sc.ACKNOWLEDGE
    assert (ack.sequence_number, ack.flags, ack.payload_type, ack.schema_version) == (0, 3, 0, 1)
    assert json.loads(ack.payload) == {
        "AcknowledgedMessageType": "output_stream_data",
        "AcknowledgedMessageId": "00112233-4455-6677-8899-aabbccddeeff",
        "AcknowledgedMessageSequenceNumber": 42,
        "IsSequentialMessage": True,
    }
    # Compact, in this key order, as Go's encoding/json writes the struct.
    assert ack.payload == (
        b'{"AcknowledgedMessageType":"output_stream_data",'
        b'"AcknowledgedMessageId":"00112233-4455-6677-8899-aabbccddeeff",'
        b'"AcknowledgedMessageSequenceNumber":42,"IsSequentialMessage":true}'
    )
    raw = ack.encode()
    assert raw[4:36] == b"acknowledge".ljust(32, b" ")
    assert ClientMessage.decode(raw).payload == ack.payload


def test_open_data_channel_input_names_the_token_and_client() -> None:
    text = sc.open_data_channel_input("tok-1", "client-9", "1.2.650.0", request_id="req-3")
    assert json.loads(text) == {
        "MessageSchemaVersion": "1.0",
        "RequestId": "req-3",
        "TokenValue": "tok-1",
        "ClientId": "client-9",
        "ClientVersion": "1.2.650.0",
    }
    assert list(json.loads(text)) == ["MessageSchemaVersion", "RequestId", "TokenValue", "ClientId", "ClientVersion"]
    assert len(json.loads(sc.open_data_channel_input("t", "c", "v"))["RequestId"]) == 36


def test_handshake_response_answers_each_requested_action() -> None:
    request = {
        "AgentVersion": "3.3.0.0",
        "RequestedClientActions": [
            {"ActionType": "SessionType", "ActionParameters": {"SessionType": "InteractiveCommands", "Properties": None}},
            {"ActionType": "Telepathy", "ActionParameters": {}},
        ],
    }
    response, session_type = sc.handshake_response(request, "1.2.650.0", {"BerthExtra": {"x": 1}})
    assert session_type == "InteractiveCommands"
    assert response["ClientVersion"] == "1.2.650.0"
    assert response["BerthExtra"] == {"x": 1}
    first, second = response["ProcessedClientActions"]
    assert first == {"ActionType": "SessionType", "ActionStatus": 1, "ActionResult": None, "Error": ""}
    # The plugin leaves ActionStatus at 0 for an action it does not know, with ActionResult 3.
    assert second["ActionType"] == "Telepathy" and second["ActionStatus"] == 0 and second["ActionResult"] == 3
    assert response["Errors"] == ["Unsupported action Telepathy"]

    unknown, none = sc.handshake_response(
        {"RequestedClientActions": [{"ActionType": "SessionType", "ActionParameters": {"SessionType": "Nope"}}]}, "v"
    )
    assert none is None and unknown["ProcessedClientActions"][0]["ActionStatus"] == 2
    empty, _ = sc.handshake_response({"AgentVersion": "1"}, "v")
    assert empty == {"ClientVersion": "v", "ProcessedClientActions": [], "Errors": None}


def test_sequencer_orders_buffers_and_drops_duplicates() -> None:
    seq = sc.OutputSequencer()

    def out(n: int) -> ClientMessage:
        return ClientMessage(sc.OUTPUT_STREAM_DATA, f"m{n}".encode(), sc.OUTPUT, n)

    assert seq.accept(out(0))[0:2] == ("in_order", False)
    assert seq.accept(out(2)) == ("buffered", True, [])
    assert seq.accept(out(3)) == ("buffered", True, [])
    disposition, ack_now, ready = seq.accept(out(1))
    assert (disposition, ack_now) == ("in_order", False)
    assert [m.sequence_number for m in ready] == [1, 2, 3]
    assert seq.expected == 4 and seq.buffered == {}
    assert seq.accept(out(2)) == ("duplicate", True, [])
    assert sc.OutputSequencer(ack_duplicates=False).accept(out(-1)) == ("duplicate", False, [])


# ---------------------------------------------------------------------------------------------
# The client against a scripted peer on loopback
# ---------------------------------------------------------------------------------------------


class ScriptedPeer:
    """A one-connection WebSocket server on loopback that runs `script(conn, peer)` on a
    thread; what it receives is kept in `frames` (decoded where possible)."""

    def __init__(self, script: Callable[[ServerConnection, "ScriptedPeer"], None], **serve_options: Any) -> None:
        self.script = script
        self.frames: list[Any] = []
        self.failure: BaseException | None = None
        self.done = threading.Event()
        self.server = serve(self._handle, "127.0.0.1", 0, compression=None, **serve_options)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/v1/data-channel/s-1"

    def _handle(self, conn: ServerConnection) -> None:
        try:
            self.script(conn, self)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.failure = e
        finally:
            self.done.set()

    def expect(self, conn: ServerConnection, match: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            frame = conn.recv(timeout=max(deadline - time.monotonic(), 0.01))
            item = frame if isinstance(frame, str) else ClientMessage.decode(frame)
            self.frames.append(item)
            if match(item):
                return item

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def out(seq: int, payload_type: int, payload: bytes) -> bytes:
    return ClientMessage(sc.OUTPUT_STREAM_DATA, payload, payload_type, seq, flags=0).encode()


def ack_of(msg: ClientMessage) -> bytes:
    return sc.acknowledgement_for(msg).encode()


def is_ack_of(seq: int) -> Callable[[Any], bool]:
    return lambda m: (
        isinstance(m, ClientMessage)
        and m.message_type == sc.ACKNOWLEDGE
        and json.loads(m.payload)["AcknowledgedMessageSequenceNumber"] == seq
    )


def is_input(seq: int, payload_type: int) -> Callable[[Any], bool]:
    return lambda m: (
        isinstance(m, ClientMessage)
        and m.message_type == sc.INPUT_STREAM_DATA
        and m.sequence_number == seq
        and m.payload_type == payload_type
    )


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ssm-data-channel" and t.is_alive()]


def test_client_runs_a_whole_session_against_a_scripted_peer() -> None:
    def script(conn: ServerConnection, peer: ScriptedPeer) -> None:
        opened = json.loads(peer.expect(conn, lambda f: isinstance(f, str)))
        assert opened["TokenValue"] == "the-token"
        request = {
            "AgentVersion": "3.3.0.0",
            "RequestedClientActions": [
                {"ActionType": "SessionType", "ActionParameters": {"SessionType": "InteractiveCommands", "Properties": None}}
            ],
        }
        conn.send(out(0, sc.HANDSHAKE_REQUEST, sc.go_json(request)))
        peer.expect(conn, is_ack_of(0))
        response = peer.expect(conn, is_input(0, sc.HANDSHAKE_RESPONSE))
        conn.send(ack_of(response))
        conn.send(out(1, sc.HANDSHAKE_COMPLETE, b'{"HandshakeTimeToComplete":1000000,"CustomerMessage":""}'))
        peer.expect(conn, is_ack_of(1))
        size = peer.expect(conn, is_input(1, sc.SIZE))
        # Not acknowledged the first time: the client sends it again.
        peer.expect(conn, is_input(1, sc.SIZE))
        conn.send(ack_of(size))
        typed = peer.expect(conn, is_input(2, sc.OUTPUT))
        conn.send(ack_of(typed))
        conn.send(out(3, sc.OUTPUT, b"world\r\n"))  # early: buffered
        conn.send(out(2, sc.OUTPUT, b"hello "))
        conn.send(out(2, sc.OUTPUT, b"hello "))  # a duplicate
        conn.send(out(4, sc.EXIT_CODE, b"3"))
        for seq in (3, 2, 2, 4):
            peer.expect(conn, is_ack_of(seq))
        closed = {"MessageId": str(uuid.uuid4()), "CreatedDate": "x", "DestinationId": "d", "SessionId": "s-1",
                  "MessageType": "channel_closed", "SchemaVersion": 1, "Output": "bye"}
        conn.send(ClientMessage(sc.CHANNEL_CLOSED, sc.go_json(closed), 0, 5).encode())
        conn.send(out(5, sc.OUTPUT, b"too late"))
        time.sleep(0.3)

    peer = ScriptedPeer(script)
    try:
        client = DataChannelClient(peer.url, "the-token", resend_after=0.1, extra_handshake_fields={"Extra": True})
        with client:
            complete = client.wait_for_handshake(5)
            assert complete["HandshakeTimeToComplete"] == 1000000
            assert client.send_size(120, 40) == 1
            assert client.send_input(b"echo hi\n") == [2]
            closed = client.wait_for_channel_closed(10)
            assert peer.done.wait(5)
            client.wait_for_disconnect(5)
        assert peer.failure is None, repr(peer.failure)
        assert closed["Output"] == "bye"
        assert client.output == b"hello world\r\n"
        assert client.exit_code == 3
        assert client.handled_sequence_numbers == [0, 1, 2, 3, 4]
        assert client.acknowledged == {0, 1, 2}
        assert client.session_type == "InteractiveCommands"
        assert [(r.sequence_number, r.disposition) for r in client.output_stream()] == [
            (0, "in_order"), (1, "in_order"), (3, "buffered"), (2, "in_order"), (2, "duplicate"), (4, "in_order"),
            (5, "after_close"),
        ]
        assert client.received[-2].message_type == sc.CHANNEL_CLOSED
        assert client.errors == [], client.errors
        assert (sc.OUTPUT_STREAM_DATA, 5) not in client.acks_sent
        # What the peer saw: the opening text frame, then the handshake answer with the extra
        # field, the size and the keystrokes; the size went twice.
        opened = json.loads(peer.frames[0])
        assert opened["MessageSchemaVersion"] == "1.0" and opened["ClientVersion"] == sc.DEFAULT_CLIENT_VERSION
        assert opened["ClientId"] == client.client_id
        inputs = [m for m in peer.frames if isinstance(m, ClientMessage) and m.message_type == sc.INPUT_STREAM_DATA]
        response = json.loads(inputs[0].payload)
        assert response["Extra"] is True
        assert response["ProcessedClientActions"][0]["ActionStatus"] == 1
        assert [m.sequence_number for m in inputs if m.payload_type == sc.SIZE][:2] == [1, 1]
        assert json.loads(inputs[1].payload) == {"cols": 120, "rows": 40}
        # Keystrokes once, perhaps again as a resend before the peer's ack came: always seq 2.
        assert {(m.sequence_number, m.payload) for m in inputs if m.payload_type == sc.OUTPUT} == {(2, b"echo hi\n")}
        assert any(s.resend and s.sequence_number == 1 for s in client.sent)
        assert reader_threads() == []
    finally:
        peer.stop()


def test_a_refused_upgrade_raises_and_a_silent_close_is_seen() -> None:
    refusing = ScriptedPeer(lambda conn, peer: None, process_request=lambda conn, request: conn.respond(403, "no"))
    try:
        with pytest.raises(InvalidStatus) as caught:
            DataChannelClient(refusing.url, "t").connect()
        assert caught.value.response.status_code == 403
    finally:
        refusing.stop()

    def close_at_once(conn: ServerConnection, peer: ScriptedPeer) -> None:
        peer.expect(conn, lambda f: isinstance(f, str))
        conn.close(4001, "bad token")

    closing = ScriptedPeer(close_at_once)
    try:
        client = DataChannelClient(closing.url, "wrong").connect()
        try:
            client.wait_for_disconnect(5)
            assert client.close_code == 4001 and client.close_reason == "bad token"
            assert client.received == [] and client.output == b""
            with pytest.raises(ConnectionClosed):
                client.send_input(b"x")
        finally:
            client.close()
        assert reader_threads() == []
    finally:
        closing.stop()


def test_without_auto_handshake_the_request_is_acknowledged_but_answered_only_when_asked() -> None:
    quiet = threading.Event()

    def script(conn: ServerConnection, peer: ScriptedPeer) -> None:
        peer.expect(conn, lambda f: isinstance(f, str))
        request = {"AgentVersion": "1", "RequestedClientActions": [
            {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Standard_Stream"}}]}
        conn.send(out(0, sc.HANDSHAKE_REQUEST, sc.go_json(request)))
        peer.expect(conn, is_ack_of(0))
        with pytest.raises(TimeoutError):
            conn.recv(timeout=0.3)
        quiet.set()
        answer = peer.expect(conn, is_input(0, sc.HANDSHAKE_RESPONSE))
        conn.send(ack_of(answer))
        conn.send(out(1, sc.HANDSHAKE_COMPLETE, b'{"HandshakeTimeToComplete":5,"CustomerMessage":"hi"}'))
        peer.expect(conn, is_ack_of(1))

    peer = ScriptedPeer(script)
    try:
        with DataChannelClient(peer.url, "t", auto_handshake=False) as client:
            assert client.wait_for_handshake_request(5)["AgentVersion"] == "1"
            assert quiet.wait(5), "the client answered on its own"
            assert client.handshake_response is None
            assert client.answer_handshake() == 0
            with pytest.raises(RuntimeError):
                client.answer_handshake()
            assert client.wait_for_handshake(5) == {"HandshakeTimeToComplete": 5, "CustomerMessage": "hi"}
            assert peer.done.wait(5)
            client.wait_acknowledged([0], 5)
        assert peer.failure is None, repr(peer.failure)
        assert client.session_type == "Standard_Stream"
        assert client.errors == []
        assert reader_threads() == []
    finally:
        peer.stop()
