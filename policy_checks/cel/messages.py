"""The process's protobuf descriptor pool, and the messages CEL sees through it: the opaque
values of Kubernetes' libraries (`net.IP`, `kubernetes.Quantity`, ...), each a message of one
string field holding the value's canonical text, so that the engine's own equality of messages
is the value's equality and `type(ip('::1'))` says `net.IP`, as in Kubernetes.

A value may also carry state that its equality ignores (`kubernetes.Quantity` remembers whether
Kubernetes holds it as an int64 or a decimal, which `isInteger()` shows but `==` does not): bits
kept as the signs of zeros in a repeated double field, which the engine compares as numbers
(-0.0 == 0.0) and carries through every call unchanged.

One pool a process: the checking environments (`policy_checks.checks.conditions`), the running ones
(`policy_checks.evaluator`) and the typed resources all add their types here.
"""

from __future__ import annotations

import math
import threading
from typing import Any

# The field that holds an opaque value's text. A name no author writes: the value has no fields
# in Kubernetes.
OPAQUE_FIELD = "_v"
# The field of its state bits, when it has any: always that many entries, each 0.0 or -0.0.
STATE_FIELD = "_s"

_lock = threading.RLock()
_pool: Any = None
_classes: dict[str, Any] = {}
_files: set[str] = set()
_state_bits: dict[str, int] = {}


def pool() -> Any:
    """The descriptor pool, with google/protobuf/struct.proto (params' list and object types)."""
    global _pool
    with _lock:
        if _pool is None:
            from google.protobuf import descriptor_pool, struct_pb2

            _pool = descriptor_pool.DescriptorPool()
            _pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
        return _pool


def add_file(file: Any) -> None:
    """Add a FileDescriptorProto once (by its name): the same file added twice is a no-op."""
    with _lock:
        if file.name in _files:
            return
        pool().Add(file)
        _files.add(file.name)


def message_class(full_name: str) -> Any:
    """The Python class of a message in the pool."""
    with _lock:
        cls = _classes.get(full_name)
        if cls is None:
            from google.protobuf import message_factory

            descriptor = pool().FindMessageTypeByName(full_name)
            cls = _classes[full_name] = message_factory.GetMessageClass(descriptor)
        return cls


def declare_opaque(full_name: str, state_bits: int = 0) -> None:
    """Make `full_name` (`package.Name`) a message of one string field, once; with `state_bits`,
    also a field of that many bits that equality ignores. The first declaration decides: a
    later one (the environment declares every library's types) changes nothing."""
    from google.protobuf import descriptor_pb2

    field = descriptor_pb2.FieldDescriptorProto
    package, _, name = full_name.rpartition(".")
    file = descriptor_pb2.FileDescriptorProto(
        name=f"policyhub/opaque/{full_name}.proto", package=package, syntax="proto3"
    )
    message = file.message_type.add(name=name)
    message.field.add(name=OPAQUE_FIELD, number=1, type=field.TYPE_STRING)
    if state_bits:
        message.field.add(
            name=STATE_FIELD, number=2, type=field.TYPE_DOUBLE, label=field.LABEL_REPEATED
        )
    with _lock:
        if file.name in _files:
            return
        add_file(file)
        _state_bits[full_name] = state_bits


def opaque(full_name: str, text: str, state: int = 0) -> Any:
    """An opaque value of type `full_name` whose canonical text is `text` (and state `state`)."""
    bits = _state_bits.get(full_name, 0)
    if not bits:
        return message_class(full_name)(**{OPAQUE_FIELD: text})
    if state >> bits:
        raise ValueError(f"state {state} does not fit the {bits} bits of {full_name}")
    signs = [-0.0 if state >> bit & 1 else 0.0 for bit in range(bits)]
    return message_class(full_name)(**{OPAQUE_FIELD: text, STATE_FIELD: signs})


def text_of(value: Any) -> str:
    """The canonical text an opaque value holds."""
    return str(getattr(value, OPAQUE_FIELD))


def state_of(value: Any) -> int:
    """The state an opaque value carries (0 for a type without state)."""
    signs = getattr(value, STATE_FIELD, ())
    return sum(1 << bit for bit, sign in enumerate(signs) if math.copysign(1.0, sign) < 0)
