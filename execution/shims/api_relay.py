"""The sandbox's door to the platform's own API (execution/platform_api.py).

Inside the sandbox, which has no network but its own loopback, this listens on
127.0.0.1:PORT and pipes every connection to the door's Unix socket, bound into the
sandbox; the model's ALGORITHMIA_API points here, so the unchanged Algorithmia client finds
the platform. Standard library only, Python 3.8 or newer: it runs with the platform's base
interpreter, as egress_relay.py does, and reuses its relay.

    python api_relay.py --listen 9180 --socket /run/marketplace/api.sock -- PROGRAM ARGS...
        binds the port, forks a child that relays (and dies with PROGRAM), and execs PROGRAM
        in this process with its environment unchanged.
"""

import argparse
import os
import sys

from egress_relay import Relay, die_with_parent, listen


def run_beside(program, listener, socket_path):
    parent_pid = os.getpid()
    child = os.fork()
    if child == 0:
        try:
            die_with_parent(parent_pid)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            keep = listener.fileno()
            os.closerange(3, keep)
            os.closerange(keep + 1, 65536)
            Relay(listener, socket_path, parent_pid).serve_forever()
        finally:
            os._exit(0)
    listener.close()
    try:
        os.execvp(program[0], program)
    except OSError as error:
        sys.stderr.write(f"api relay: cannot run {program[0]}: {error}\n")
        os._exit(127)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        sys.stderr.write("api relay: give the program to run after --\n")
        return 2
    split = argv.index("--")
    argv, program = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--socket", required=True, help="the door's Unix socket")
    args = parser.parse_args(argv)
    run_beside(program, listen(args.listen), args.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
