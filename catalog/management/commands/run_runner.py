"""The host's runner service. It lives in catalog, not execution: it gives the runner the
catalogue's answers to what the runner cannot know itself (how to start a build's model,
which models to keep warm), and catalog sits above execution."""

import signal
import threading

from django.core.management.base import BaseCommand

from catalog.launch import launch_spec_for_build
from catalog.services import reservations_wanted
from execution.runner_service import pool_from_settings, serve, socket_path
from execution.sandbox import sandbox_enabled, warn_if_unsandboxed


class Command(BaseCommand):
    help = "Run this host's model runner: the warm pool of sandboxed model processes."

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        path = socket_path()
        sandbox = sandbox_enabled()
        warn_if_unsandboxed("runner")
        self.stdout.write(f"[runner] serving on {path} (sandbox {'on' if sandbox else 'OFF'})")
        serve(
            path,
            pool_from_settings(sandbox=sandbox),
            launch_spec_for_build=launch_spec_for_build,
            reservations_wanted=reservations_wanted,
            stop=stop,
        )
        self.stdout.write("[runner] stopped; every model process was ended")
