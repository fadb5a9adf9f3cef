"""gRPC server reflection, both ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``.

grpcio-reflection ships only v1alpha (grpc/grpc#38576), while grpcurl, buf curl, Postman
and grpc-java's tools ask for v1 first. The v1 protocol is v1alpha under a new package:
``grpc/reflection/v1/reflection.proto`` declares the same messages with the same field
numbers, so the two are identical on the wire. Rather than vendoring and generating a
second copy of that proto, the v1 file descriptor is derived from the v1alpha one that
grpcio-reflection ships (package renamed, v1's file options), registered in the default
descriptor pool (so reflection can describe itself), and served by the same servicer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

V1ALPHA_SERVICE_NAME = "grpc.reflection.v1alpha.ServerReflection"
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
SERVICE_NAMES = (V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)

_V1ALPHA_PREFIX = ".grpc.reflection.v1alpha."
_V1_PREFIX = ".grpc.reflection.v1."


def v1_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """``grpc/reflection/v1/reflection.proto`` as a descriptor, built from v1alpha's."""
    proto = descriptor_pb2.FileDescriptorProto()
    v1alpha_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = V1_FILE
    proto.package = "grpc.reflection.v1"
    # The options the upstream v1 file declares.
    proto.options.Clear()
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    proto.options.java_multiple_files = True
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.java_outer_classname = "ServerReflectionProto"
    proto.ClearField("source_code_info")

    def renamed(type_name: str) -> str:
        if type_name.startswith(_V1ALPHA_PREFIX):
            return _V1_PREFIX + type_name.removeprefix(_V1ALPHA_PREFIX)
        return type_name

    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = renamed(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type = renamed(method.input_type)
            method.output_type = renamed(method.output_type)
    return proto


def register_v1_descriptor(pool: descriptor_pool.DescriptorPool | None = None) -> None:
    """Adds the v1 file to ``pool`` (the default pool), once."""
    pool = pool or descriptor_pool.Default()
    if pool is descriptor_pool.Default():
        # A grpcio-reflection that ships v1 registers the file itself, first.
        with contextlib.suppress(ImportError):
            import grpc_reflection.v1.reflection_pb2  # noqa: F401
    try:
        pool.FindFileByName(V1_FILE)
    except KeyError:
        pool.AddSerializedFile(v1_file_descriptor().SerializeToString())


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serves reflection for ``service_names`` (plus both reflection services) over v1
    and v1alpha on ``server``."""
    register_v1_descriptor()
    servicer = ReflectionServicer((*service_names, *SERVICE_NAMES))
    v1alpha_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                # Identical on the wire: v1 requests parse as v1alpha messages and
                # v1alpha answers are valid v1 answers.
                request_deserializer=v1alpha_pb2.ServerReflectionRequest.FromString,
                response_serializer=v1alpha_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))
