"""The process's protobuf descriptor pool, and the messages CEL sees through it: the opaque
values of Kubernetes' libraries (`net.IP`, `kubernetes.Quantity`, ...), each a message of one
string field holding the value's canonical text, so that the engine's own equality of messages
is the value's equality and `type(ip('::1'))` says `net.IP`, as in Kubernetes.

One pool a process: the checking environments (`policy_checks.conditions`), the running ones
(`policy_checks.evaluator`) and the typed resources all add their types here.
"""

from __future__ import annotations

import threading
from typing import Any

# The field that holds an opaque value's text. A name no author writes: the value has no fields
# in Kubernetes.
OPAQUE_FIELD = "_v"

_lock = threading.RLock()
_pool: Any = None
_classes: dict[str, Any] = {}
_files: set[str] = set()


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


def declare_opaque(full_name: str) -> None:
    """Make `full_name` (`package.Name`) a message of one string field, once."""
    from google.protobuf import descriptor_pb2

    package, _, name = full_name.rpartition(".")
    file = descriptor_pb2.FileDescriptorProto(
        name=f"policyhub/opaque/{full_name}.proto", package=package, syntax="proto3"
    )
    message = file.message_type.add(name=name)
    message.field.add(
        name=OPAQUE_FIELD, number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    add_file(file)


def opaque(full_name: str, text: str) -> Any:
    """An opaque value of type `full_name` whose canonical text is `text`."""
    return message_class(full_name)(**{OPAQUE_FIELD: text})


def text_of(value: Any) -> str:
    """The canonical text an opaque value holds."""
    return str(getattr(value, OPAQUE_FIELD))
