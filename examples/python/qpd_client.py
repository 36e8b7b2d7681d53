#!/usr/bin/python3
"""A third-party client of qpd's gRPC API, in Python.

qpd serves gRPC on a Unix socket (see proto/qpq/daemon/v1/daemon.proto).
This script needs only Debian's python3-grpcio and python3-protobuf and
protoc (protobuf-compiler): it compiles the .proto into a descriptor set at
start, so no generated Python code is kept in the repository.

    apt-get install python3-grpcio python3-protobuf protobuf-compiler
    examples/python/qpd_client.py [--socket PATH] status
    examples/python/qpd_client.py register
    examples/python/qpd_client.py create-group NAME
    examples/python/qpd_client.py send GROUP TEXT
    examples/python/qpd_client.py messages GROUP

Each command prints one JSON object. qpd answers only its own user (it
checks SO_PEERCRED); like qpctl, this script first checks that the socket's
listener runs as this user, and refuses to send anything otherwise.
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "proto")
PROTO = "qpq/daemon/v1/daemon.proto"
SERVICE = "qpq.daemon.v1.Daemon"


def default_socket():
    if os.environ.get("QPQ_SOCKET"):
        return os.environ["QPQ_SOCKET"]
    uid = os.getuid()
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "quicproquo", "qpd.sock")
    if os.path.isdir("/run/user/%d" % uid):
        return "/run/user/%d/quicproquo/qpd.sock" % uid
    return os.path.join(tempfile.gettempdir(), "quicproquo-%d" % uid, "qpd.sock")


def load_messages():
    """Compile daemon.proto with protoc and return a message class factory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "daemon.pb")
        includes = ["-I", PROTO_ROOT]
        if os.path.isdir("/usr/include/google/protobuf"):
            includes += ["-I", "/usr/include"]
        subprocess.run(["protoc", *includes, "--include_imports", "--descriptor_set_out=" + out, PROTO], check=True)
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)

    def cls(name):
        desc = pool.FindMessageTypeByName("qpq.daemon.v1." + name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)

    return cls


def check_listener(path):
    """Refuse a socket whose listener is another user (SO_PEERCRED)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        pid, uid, gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    finally:
        s.close()
    if uid != os.getuid():
        sys.exit("qpd_client: %s is served by uid %d, not by you (uid %d); nothing was sent" % (path, uid, os.getuid()))


class Daemon:
    def __init__(self, path):
        check_listener(path)
        self.cls = load_messages()
        self.channel = grpc.insecure_channel("unix:" + path)

    def call(self, method, **fields):
        req = self.cls(method + "Request")(**fields)
        resp_cls = self.cls(method + "Response")
        rpc = self.channel.unary_unary(
            "/%s/%s" % (SERVICE, method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString,
        )
        return json_format.MessageToDict(rpc(req, timeout=30), preserving_proto_field_name=True)


def main():
    p = argparse.ArgumentParser(description="Call qpd's gRPC API over its Unix socket.")
    p.add_argument("--socket", default=default_socket())
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status")
    sub.add_parser("register")
    g = sub.add_parser("create-group")
    g.add_argument("name")
    s = sub.add_parser("send")
    s.add_argument("group")
    s.add_argument("text")
    m = sub.add_parser("messages")
    m.add_argument("group")
    args = p.parse_args()

    d = Daemon(args.socket)
    try:
        if args.cmd == "status":
            out = d.call("Status")
        elif args.cmd == "register":
            out = d.call("Register")
        elif args.cmd == "create-group":
            out = d.call("CreateGroup", name=args.name)
        elif args.cmd == "send":
            out = d.call("Send", group=args.group, text=args.text)
        else:
            out = d.call("Messages", group=args.group)
    except grpc.RpcError as e:
        print(json.dumps({"error": {"code": e.code().name, "message": e.details()}}), file=sys.stderr)
        return 1
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
