from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogRecord(_message.Message):
    __slots__ = ("event_id", "ts", "service", "kind", "operation", "user", "outcome", "duration_ms", "request_id", "message", "offset")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    ts: float
    service: str
    kind: str
    operation: str
    user: str
    outcome: str
    duration_ms: float
    request_id: str
    message: str
    offset: int
    def __init__(self, event_id: _Optional[str] = ..., ts: _Optional[float] = ..., service: _Optional[str] = ..., kind: _Optional[str] = ..., operation: _Optional[str] = ..., user: _Optional[str] = ..., outcome: _Optional[str] = ..., duration_ms: _Optional[float] = ..., request_id: _Optional[str] = ..., message: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class LogBatch(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[LogRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[LogRecord, _Mapping]]] = ...) -> None: ...

class StreamLogsSummary(_message.Message):
    __slots__ = ("received", "acknowledged")
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    received: int
    acknowledged: int
    def __init__(self, received: _Optional[int] = ..., acknowledged: _Optional[int] = ...) -> None: ...

class TailLogsRequest(_message.Message):
    __slots__ = ("offset", "from_beginning")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FROM_BEGINNING_FIELD_NUMBER: _ClassVar[int]
    offset: int
    from_beginning: bool
    def __init__(self, offset: _Optional[int] = ..., from_beginning: _Optional[bool] = ...) -> None: ...
