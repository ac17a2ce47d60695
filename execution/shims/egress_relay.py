"""The sandbox's door to the platform's egress proxy (execution/egress.py).

A sandbox has no network but its own loopback. This script, run inside it, listens on
127.0.0.1:PORT and pipes every connection to the egress proxy's Unix socket, bound into the
sandbox; programs reach the internet through it as an HTTP proxy (HTTP_PROXY, HTTPS_PROXY).
Standard library only, Python 3.8 or newer, no Django: it runs with the model's interpreter.

    python egress_relay.py --listen 3128 --socket /run/egress.sock
        relays in the foreground until killed;
    python egress_relay.py --listen 3128 --socket /run/egress.sock -- PROGRAM ARGS...
        binds the port, forks a child that relays, and execs PROGRAM in this process with
        HTTP_PROXY, HTTPS_PROXY (and lower-case forms) set to http://127.0.0.1:3128 and
        NO_PROXY empty. The port is listening before PROGRAM starts, so its first request
        finds it; the child dies with PROGRAM (PR_SET_PDEATHSIG, and a parent check each
        second where that is not available).

One thread serves every connection (a selector), so the relay counts as one process against
the sandbox's process limit whatever the model does.
"""

import errno
import os
import selectors
import signal
import socket
import sys

# argparse and ctypes are imported where used: api_relay.py imports this module into a
# model's own interpreter, whose start should not pay for them.

CHUNK = 65536
# Bytes waiting for a slow side, per direction, before the relay stops reading the other.
BUFFER_LIMIT = 1024 * 1024
PARENT_CHECK_SECONDS = 1.0


class Pair:
    """One relayed connection: the sandboxed client's TCP socket and the proxy's Unix one."""

    def __init__(self, client, proxy):
        self.peer = {client: proxy, proxy: client}
        self.pending = {client: bytearray(), proxy: bytearray()}  # bytes to write to each
        self.eof = set()  # sockets that will send nothing more
        self.closed = False


class Relay:
    def __init__(self, listener, socket_path, parent_pid=None):
        self.listener = listener
        self.socket_path = socket_path
        self.parent_pid = parent_pid
        self.selector = selectors.DefaultSelector()
        self.pairs = {}

    def serve_forever(self):
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        while True:
            for key, events in self.selector.select(PARENT_CHECK_SECONDS):
                if key.fileobj is self.listener:
                    self._accept()
                    continue
                pair = self.pairs.get(key.fileobj)
                if pair is None or pair.closed:
                    continue
                try:
                    if events & selectors.EVENT_WRITE:
                        self._flush(pair, key.fileobj)
                    if events & selectors.EVENT_READ and not pair.closed:
                        self._read(pair, key.fileobj)
                except OSError:
                    self._close(pair)
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                return  # the program this relay served is gone

    def _accept(self):
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        proxy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proxy.connect(self.socket_path)
        except OSError as error:
            sys.stderr.write(f"egress relay: cannot reach {self.socket_path}: {error}\n")
            proxy.close()
            client.close()
            return
        pair = Pair(client, proxy)
        for sock in (client, proxy):
            sock.setblocking(False)
            self.pairs[sock] = pair
            self.selector.register(sock, selectors.EVENT_READ)

    def _read(self, pair, sock):
        peer = pair.peer[sock]
        try:
            data = sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        if data:
            pair.pending[peer] += data
            self._flush(pair, peer)
        else:
            pair.eof.add(sock)
            if not pair.pending[peer]:
                self._shutdown_write(peer)
        self._update(pair)

    def _flush(self, pair, sock):
        buffer = pair.pending[sock]
        while buffer:
            try:
                sent = sock.send(buffer)
            except (BlockingIOError, InterruptedError):
                break
            del buffer[:sent]
        if not buffer and pair.peer[sock] in pair.eof:
            self._shutdown_write(sock)
        self._update(pair)

    def _shutdown_write(self, sock):
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            if error.errno != errno.ENOTCONN:
                raise

    def _update(self, pair):
        """Read from a side until it ends or its peer's buffer is full; write to a side while
        bytes wait for it. Close both when both have ended and nothing waits."""
        if pair.closed:
            return
        if len(pair.eof) == 2 and not any(pair.pending.values()):
            self._close(pair)
            return
        for sock, peer in pair.peer.items():
            events = 0
            if sock not in pair.eof and len(pair.pending[peer]) < BUFFER_LIMIT:
                events |= selectors.EVENT_READ
            if pair.pending[sock]:
                events |= selectors.EVENT_WRITE
            key = self.selector.get_map().get(sock)
            if events and key is None:
                self.selector.register(sock, events)
            elif events and key.events != events:
                self.selector.modify(sock, events)
            elif not events and key is not None:
                self.selector.unregister(sock)

    def _close(self, pair):
        pair.closed = True
        for sock in pair.peer:
            if sock in self.selector.get_map():
                self.selector.unregister(sock)
            self.pairs.pop(sock, None)
            sock.close()


def listen(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    return listener


def die_with_parent(parent_pid):
    """Ask the kernel to kill this process when its parent ends (Linux); the serve loop
    also checks getppid(), for where this is not available."""
    try:
        import ctypes  # noqa: PLC0415 - see the imports above
    except ImportError:  # a Python built without libffi: the serve loop's getppid() check stays
        ctypes = None
    if ctypes is not None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent ended before the request took effect
        os._exit(0)


def proxy_environment(port):
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = url
    env["NO_PROXY"] = env["no_proxy"] = ""
    return env


def run_beside(program, listener, socket_path, port):
    """Fork a child that relays; exec the program in this process."""
    parent_pid = os.getpid()
    child = os.fork()
    if child == 0:
        try:
            die_with_parent(parent_pid)
            devnull = os.open(os.devnull, os.O_RDWR)
            os.dup2(devnull, 0)
            os.dup2(devnull, 1)
            # Hold none of the program's other descriptors (its result pipe, say) open.
            keep = listener.fileno()
            os.closerange(3, keep)
            os.closerange(keep + 1, 65536)
            Relay(listener, socket_path, parent_pid).serve_forever()
        finally:
            os._exit(0)
    listener.close()
    try:
        os.execvpe(program[0], program, proxy_environment(port))
    except OSError as error:
        sys.stderr.write(f"egress relay: cannot run {program[0]}: {error}\n")
        os._exit(127)


def main(argv=None):
    import argparse  # noqa: PLC0415 - see the imports above

    argv = list(sys.argv[1:] if argv is None else argv)
    program = []
    if "--" in argv:
        split = argv.index("--")
        argv, program = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--socket", required=True, help="the egress proxy's Unix socket")
    args = parser.parse_args(argv)
    listener = listen(args.listen)
    if program:
        run_beside(program, listener, args.socket, args.listen)
    else:
        Relay(listener, args.socket).serve_forever()


if __name__ == "__main__":
    main()
