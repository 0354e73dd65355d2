"""The contract's hygiene: the baton.v1 protos compile with protoc (from
grpcio-tools), every element carries a leading comment, every enum starts
with `*_UNSPECIFIED = 0`, and every file is in package `baton.v1`."""

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2] / "proto"
PROTOS = sorted((ROOT / "baton" / "v1").glob("*.proto"))

# Field numbers in descriptor.proto, for source-info paths.
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM, MESSAGE_ONEOF = 2, 3, 4, 8
ENUM_VALUE, SERVICE_METHOD = 2, 2


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The compiled descriptors of baton.v1, with comments."""
    from grpc_tools import protoc
    import grpc_tools

    out = tmp_path_factory.mktemp("proto") / "baton.pb"
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{ROOT}", f"-I{well_known}", "--include_source_info",
            f"--descriptor_set_out={out}", *[str(p) for p in PROTOS]]
    assert protoc.main(args) == 0, "protoc refused the baton.v1 protos"
    descriptors = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return list(descriptors.file)


def elements(file):
    """Every (path, kind, name) that must be documented in `file`."""
    for i, message in enumerate(file.message_type):
        yield from message_elements(message, (FILE_MESSAGE, i), message.name)
    for i, enum in enumerate(file.enum_type):
        yield from enum_elements(enum, (FILE_ENUM, i), enum.name)
    for i, service in enumerate(file.service):
        yield (FILE_SERVICE, i), "service", service.name
        for j, method in enumerate(service.method):
            path = (FILE_SERVICE, i, SERVICE_METHOD, j)
            yield path, "rpc", f"{service.name}.{method.name}"


def message_elements(message, path, name):
    yield path, "message", name
    for i, field in enumerate(message.field):
        yield path + (MESSAGE_FIELD, i), "field", f"{name}.{field.name}"
    for i, oneof in enumerate(message.oneof_decl):
        if not oneof.name.startswith("_"):  # proto3 `optional` makes a synthetic one
            yield path + (MESSAGE_ONEOF, i), "oneof", f"{name}.{oneof.name}"
    for i, nested in enumerate(message.nested_type):
        yield from message_elements(nested, path + (MESSAGE_NESTED, i), f"{name}.{nested.name}")
    for i, enum in enumerate(message.enum_type):
        yield from enum_elements(enum, path + (MESSAGE_ENUM, i), f"{name}.{enum.name}")


def enum_elements(enum, path, name):
    yield path, "enum", name
    for i, value in enumerate(enum.value):
        yield path + (ENUM_VALUE, i), "enum value", f"{name}.{value.name}"


def all_enums(file):
    def nested(message):
        yield from message.enum_type
        for inner in message.nested_type:
            yield from nested(inner)
    yield from file.enum_type
    for message in file.message_type:
        yield from nested(message)


def test_protos_compile_with_grpcio_tools(files):
    assert sorted(f.name for f in files) == sorted(f"baton/v1/{p.name}" for p in PROTOS)


def test_every_file_is_in_package_baton_v1(files):
    assert {f.name: f.package for f in files} == {f.name: "baton.v1" for f in files}


def test_every_element_has_a_leading_comment(files):
    undocumented = []
    for file in files:
        comments = {tuple(loc.path): loc.leading_comments.strip()
                    for loc in file.source_code_info.location}
        for path, kind, name in elements(file):
            if not comments.get(path):
                undocumented.append(f"{file.name}: {kind} {name}")
    assert not undocumented, "undocumented:\n" + "\n".join(undocumented)


def test_every_enum_starts_with_unspecified_zero(files):
    wrong = []
    for file in files:
        for enum in all_enums(file):
            first = enum.value[0]
            if first.number != 0 or not first.name.endswith("_UNSPECIFIED"):
                wrong.append(f"{file.name}: {enum.name} starts with {first.name} = {first.number}")
    assert not wrong, "\n".join(wrong)
