"""Start Arize Phoenix with its gRPC receiver on 127.0.0.1 instead of every interface.

Run with the Python of Phoenix's own virtualenv. Phoenix binds its OTLP/gRPC port as
``[::]:PORT`` with no setting to change it; this rewrites that address before Phoenix starts.
Everything else is Phoenix's own ``phoenix serve``.
"""

import sys

import grpc.aio._server as aio_server

_add_insecure_port = aio_server.Server.add_insecure_port


def _loopback_only(self, address):  # type: ignore[no-untyped-def]
    return _add_insecure_port(self, address.replace("[::]:", "127.0.0.1:").replace("0.0.0.0:", "127.0.0.1:"))


aio_server.Server.add_insecure_port = _loopback_only

from phoenix.server.main import main  # noqa: E402

sys.argv = ["phoenix", "serve"]
sys.exit(main())
