"""The sandbox's door to the platform's own API (execution/platform_api.py).

Inside the sandbox, which has no network but its own loopback, this listens on
127.0.0.1:PORT and pipes every connection to the door's Unix socket, bound into the
sandbox; the model's ALGORITHMIA_API points here, so the unchanged Algorithmia client finds
the platform. Standard library only, Python 3.8 or newer: it runs with the platform's base
interpreter, as egress_relay.py does, and reuses its relay.

    python -S -E api_relay.py --listen 9180 --socket /run/marketplace/api.sock

Runtimes whose program is Python of ours (the python shim, and ADK algorithms through
adk_compat/sitecustomize.py) serve it in a thread instead (`serve_in_thread_if_asked`); for
the others it is started in the background beside the model (`sh -c 'python api_relay.py ... & exec
MODEL'`), not in front of it: an interpreter's start costs a loaded host a tenth of a second
and more, which the model's cold start would otherwise wait for. Once it listens it tells
the door (`GET /.relay-ready`), and the platform waits for that as well as for the model
before the process takes calls. It serves until the model (its parent, after the exec)
ends.
"""

import os
import socket
import sys
import threading

from egress_relay import Relay, die_with_parent, listen

READY_PATH = "/.relay-ready"


def tell_the_door(socket_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as door:
        door.settimeout(30)
        door.connect(socket_path)
        door.sendall(f"GET {READY_PATH} HTTP/1.1\r\nHost: relay\r\n\r\n".encode())
        door.recv(1024)


def serve_in_thread(port, socket_path):
    """The relay as a thread of a Python program (the python shim, an ADK algorithm), for
    runtimes that can host it: no second interpreter to start. Listening and told the door
    when this returns."""
    listener = listen(port)
    tell_the_door(socket_path)
    thread = threading.Thread(
        target=Relay(listener, socket_path).serve_forever, name="api-relay", daemon=True
    )
    thread.start()
    return thread


def serve_in_thread_if_asked():
    """What the platform's Python programs call first: serve the relay if the sandbox lends
    this process the platform's API (MARKETPLACE_API_SOCKET, MARKETPLACE_API_PORT)."""
    socket_path = os.environ.get("MARKETPLACE_API_SOCKET")
    if socket_path:
        serve_in_thread(int(os.environ["MARKETPLACE_API_PORT"]), socket_path)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        port = int(argv[argv.index("--listen") + 1])
        socket_path = argv[argv.index("--socket") + 1]
    except (ValueError, IndexError):
        sys.stderr.write("usage: api_relay.py --listen PORT --socket PATH\n")
        return 2
    parent_pid = os.getppid()  # the shell that becomes the model when it execs
    die_with_parent(parent_pid)
    listener = listen(port)
    # Hold none of the model's descriptors (its result pipe, say) open.
    keep = listener.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    tell_the_door(socket_path)
    Relay(listener, socket_path, parent_pid).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
