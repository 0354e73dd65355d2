"""Generates the gRPC stubs of `baton.v1` with grpcio-tools.

Run `python src/baton_client/_codegen.py` (from `clients/python`) to write
them into the source tree for development; the wheel build does the same
into its build tree. protoc names imports after the proto package
(`from baton.v1 import types_pb2`), so they are rewritten to live under
`baton_client._generated`.
"""

import re
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parents[4] / "proto"
IMPORT = re.compile(r"^from baton\.v1 import ", re.MULTILINE)


def generate(package_dir, proto_root=PROTO_ROOT):
    """Writes `<package_dir>/_generated/baton/v1/*_pb2*.py`."""
    from grpc_tools import protoc
    import grpc_tools

    out = Path(package_dir) / "_generated"
    protos = sorted((Path(proto_root) / "baton" / "v1").glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {proto_root}/baton/v1")
    out.mkdir(parents=True, exist_ok=True)

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on the baton.v1 protos")

    for path in (out / "baton" / "v1").glob("*.py"):
        text = IMPORT.sub("from baton_client._generated.baton.v1 import ", path.read_text())
        path.write_text(text)
    for folder in (out, out / "baton", out / "baton" / "v1"):
        (folder / "__init__.py").touch()
    return out


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent
    print(generate(target))
