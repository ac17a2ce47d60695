"""How long what each process remembers (marketplace/core/change_feed.py) outlives a change,
on a whole platform with several web workers, all of them warm and under load:

- revoke: a key is revoked by another process (a Django shell on the platform's database)
  while 8 clients call with it; the figure is the time from the revocation's commit to the
  start of the last call that still succeeded
  (no call succeeds later than this on any worker). Goal: under 1 s.
- publish: a new version is published while 8 clients call `latest`; the model answers with
  its own version, and the figure is the time from the moment the new version is visible in
  the API to the start of the last call that still got the old one. Goal: under 1 s.

The baseline, measured in the same run: the time between two calls of one client (a change
cannot be seen sooner than the next call). Each figure is printed with its ratio to it.

    .venv/bin/python bench/invalidation.py [--rounds 3] [--web-workers 3]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _platform import Platform, publish
from invoke_latency import platform_env, platform_python

CLIENTS = 8


def request(url: str, method: str, headers: dict, body: bytes | None = None) -> tuple[int, dict]:
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.request(method, parsed.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


class Callers:
    """CLIENTS threads calling `url` until stopped, each call recorded as (start, status,
    body), each on a new connection so gunicorn spreads them over its workers."""

    def __init__(self, url: str, headers: dict):
        self.url, self.headers = url, headers
        self.calls: list[tuple[float, int, dict]] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def _run(self) -> None:
        while not self.stopping.is_set():
            started = time.time()
            try:
                status, body = request(self.url, "POST", self.headers, b'{"text": "hi"}')
            except OSError:
                status, body = 0, {}
            with self.lock:
                self.calls.append((started, status, body))

    def __enter__(self) -> Callers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def gap(self) -> float:
        """Median time between two successive calls of one client."""
        starts = sorted(start for start, _, _ in self.calls)
        return statistics.median(b - a for a, b in itertools.pairwise(starts)) * CLIENTS


def publish_answering(platform: Platform, folder: Path, answer: int) -> None:
    (folder / "predict.py").write_text(f"def apply(data):\n    return {{'version': {answer}}}\n")
    publish(platform, folder)


MAKE_KEY = """
import json
from marketplace.accounts.models import Team
from marketplace.accounts.services import api_key_create
team = Team.objects.get(slug="demo")
actor = team.memberships.filter(role="owner").first().user
key, secret = api_key_create(actor=actor, team=team, name="revoked by the bench", scopes=["algo://*"])
print(json.dumps({"id": str(key.pk), "secret": secret}))
"""
# Revoked from another process, as an admin's page or another worker would: only PostgreSQL
# tells the web workers.
REVOKE = """
import json, time
from django.utils import timezone
from marketplace.accounts.models import ApiKey
ApiKey.objects.filter(pk="{key_id}").update(revoked_at=timezone.now())
print(json.dumps({{"committed_at": time.time()}}))
"""


def revoke_round(platform: Platform, call_url: str) -> tuple[float, float]:
    created = platform_python(platform, MAKE_KEY)
    headers = {"Authorization": f"Simple {created['secret']}", "Content-Type": "application/json"}
    with Callers(call_url, headers) as callers:
        time.sleep(2)  # every worker has seen the key
        revoked = platform_python(platform, REVOKE.format(key_id=created["id"]))["committed_at"]
        time.sleep(3)
    accepted = [start for start, code, _ in callers.calls if code == 200]
    # 429 once the address has sent too many refused keys (the credential throttle).
    refused = [s for s, code, _ in callers.calls if code in (401, 429) and s > revoked]
    if not (accepted and refused):
        seen = Counter(code for _, code, _ in callers.calls)
        raise SystemExit(f"no calls seen before or after the revocation: {dict(seen)}")
    return max(accepted) - revoked, callers.gap()


def publish_round(
    platform: Platform, headers: dict, call_url: str, folder: Path, answer: int
) -> tuple[float, float]:
    api = f"{platform.url}/v1/models/demo/stale"
    with Callers(call_url, headers) as callers:
        time.sleep(2)
        worker = threading.Thread(target=publish_answering, args=(platform, folder, answer))
        worker.start()
        visible = None
        while visible is None:
            _status, model = request(api, "GET", headers)
            if model.get("latest_version") == f"{answer}.0.0":
                visible = time.time()
        worker.join()
        time.sleep(3)
    old = [
        s for s, code, body in callers.calls if code == 200 and body["result"]["version"] != answer
    ]
    new = [
        s for s, code, body in callers.calls if code == 200 and body["result"]["version"] == answer
    ]
    assert new, "no call reached the new version"
    return (max(old) - visible if old else float("-inf")), callers.gap()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--web-workers", type=int, default=3)
    args = parser.parse_args()
    with Platform(web_workers=args.web_workers, env=platform_env(False)) as platform:
        headers = {"Authorization": f"Simple {platform.key}", "Content-Type": "application/json"}
        folder = Path(tempfile.mkdtemp()) / "stale"
        folder.mkdir()
        (folder / "model.toml").write_text(
            'name = "stale"\nruntime = "python"\nentrypoint = "predict.py:apply"\n'
        )
        publish_answering(platform, folder, 1)
        call_url = f"{platform.url}/v1/algo/demo/stale"
        revokes = [revoke_round(platform, call_url) for _ in range(args.rounds)]
        publishes = [
            publish_round(platform, headers, call_url, folder, answer)
            for answer in range(2, 2 + args.rounds)
        ]
    print(f"{args.web_workers} web workers, {CLIENTS} clients, {args.rounds} rounds each")
    print("(the start of the last call that saw the old state, after (+) or before (-) the change)")
    print("                         worst ms   median ms   baseline ms (call gap)   ratio")
    for name, rounds in (("revoked key accepted", revokes), ("old version served", publishes)):
        late = [late for late, _ in rounds]
        gap = statistics.median(gap for _, gap in rounds)
        print(
            f"{name:24s} {max(late) * 1000:9.1f} {statistics.median(late) * 1000:11.1f} "
            f"{gap * 1000:24.1f} {max(max(late), 0) / gap:7.2f}x"
        )


if __name__ == "__main__":
    main()
