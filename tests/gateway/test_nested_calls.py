"""Models that use data and call other models as their caller, through the real path: the
unchanged Algorithmia client (`Algorithmia.client()`, no arguments) inside a bubblewrap
sandbox with `network = false`, through the process's door to the platform's API
(execution/platform_api.py, shims/api_relay.py), to a live server."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import Algorithmia
import pytest
from Algorithmia.algorithm import OutputType
from Algorithmia.errors import AlgorithmException
from django.test import Client
from django.urls import reverse

from billing.models import UsageRecord
from execution.sandbox import find_bubblewrap, sandbox_enabled
from gateway.call_credentials import call_credential_issue
from gateway.models import Invocation, InvocationStatus
from tests.factories import UserFactory, make_key
from tests.gateway.conftest import publish

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sandbox_enabled() or find_bubblewrap()[0] is None,
        reason="the door to the platform's API is lent to sandboxed models only",
    ),
]

REQUIREMENTS = "algorithmia>=2.0.5\nalgorithmia-adk>=1.2.4\n"

# An unchanged ADK algorithm, as an Algorithmia user wrote them: a client made at import
# with no arguments, a data:// file read, another model called.
READER_MODEL = {
    "model.toml": """
name = "reader"
title = "Reader"
tagline = "Reads a file of its caller and has another model shout it"
runtime = "adk"
entrypoint = "src/Algorithm.py:apply"
requirements = "requirements.txt"
license = "mit"
task = "utility"
network = false
[io]
sample_input = "skip"
""",
    "requirements.txt": REQUIREMENTS,
    "src/Algorithm.py": """
import Algorithmia
from Algorithmia import ADK

client = Algorithmia.client()


def apply(input):
    if input == "skip":
        return "skipped"
    text = client.file(input["path"]).getString()
    shouted = client.algo(input["callee"]).pipe(text).result
    return {"text": text, "shouted": shouted}


algorithm = ADK(apply)
algorithm.init("skip")
""",
}

# A model that tries things: attacks on the door, a thread that outlives its call, reads
# and calls whose outcome it reports instead of failing.
PROBER_PY = """
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import Algorithmia

API = os.environ.get("ALGORITHMIA_API", "")
KEY = os.environ.get("ALGORITHMIA_API_KEY", "")
client = Algorithmia.client()


def status_of(path, key=KEY, method="GET"):
    request = urllib.request.Request(API + path, method=method, headers={"Authorization": key})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def raw_status(head):
    host, port = API.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head.encode())
        return int(sock.recv(4096).split(b" ")[1])


def linger(path):
    while True:
        with open("/tmp/attempts.txt", "a") as log:
            log.write(f"{status_of(path)}\\n")
        time.sleep(0.05)


def apply(input):
    action = input.get("action")
    if action == "env":
        return {"api": API, "key": KEY}
    if action == "probe":
        return {
            "keys": status_of("/v1/keys"),
            "admin": status_of("/admin/"),
            "models": status_of("/v1/models"),
            "dotdot": status_of("/v1/algo/../keys"),
            "proxy": raw_status("GET http://example.com/ HTTP/1.1\\r\\n\\r\\n"),
            "connect": raw_status("CONNECT example.com:443 HTTP/1.1\\r\\n\\r\\n"),
            "wrong_key": status_of(input["path"], key="simple_wrong"),
            "right_key": status_of(input["path"]),
        }
    if action == "linger":
        threading.Thread(target=linger, args=(input["path"],), daemon=True).start()
        return "lingering"
    if action == "read":
        try:
            return {"text": client.file(input["path"]).getString()}
        except Exception as error:
            return {"refused": str(error)}
    if action == "algo":
        client.file("data://.algo/temp/scratch.txt").put(input["text"])
        return {"read_back": client.file("data://.algo/temp/scratch.txt").getString()}
    if action == "write":
        client.file(input["path"]).put(input["text"])
        return {"wrote": client.file(input["path"]).getString()}
    if action == "call":
        algo = client.algo(input["target"])
        try:
            return {"result": algo.pipe(input["input"]).result}
        except Exception as error:
            return {"refused": str(error)}
    if action == "bounce":
        algo = client.algo(input["other"])
        try:
            answer = algo.pipe({"action": "bounce", "me": input["other"], "other": input["me"]})
            return {"at": input["me"], "nested": answer.result}
        except Exception as error:
            return {"at": input["me"], "refused": str(error)}
    return "idle"
"""


def prober(name: str) -> dict:
    return {
        "model.toml": f"""
name = "{name}"
title = "Prober {name}"
tagline = "Tries the platform's API from inside the sandbox"
runtime = "python"
entrypoint = "predict.py:apply"
requirements = "requirements.txt"
license = "mit"
task = "utility"
network = false
[io]
sample_input = {{action = "idle"}}
""",
        "requirements.txt": REQUIREMENTS,
        "predict.py": PROBER_PY,
    }


@pytest.fixture
def platform(settings, live_server, toolbox, runner, tmp_path):
    """The live server as the runner's doors reach it, ada's data on local disk."""
    settings.SANDBOX_API_URL = live_server.url
    settings.DATA_STORAGE = "local"
    settings.DATA_LOCAL_ROOT = tmp_path / "data-root"
    return live_server


def ada_client(owner, live_server, **key_options):
    _key, secret = make_key(owner, **key_options)
    return Algorithmia.client(secret, live_server.url)


def test_an_unchanged_adk_algorithm_reads_its_callers_file_and_calls_a_model(platform, owner):
    publish(owner, READER_MODEL, folder=Path(tempfile.mkdtemp()) / "reader")
    client = ada_client(owner, platform, project="research")
    client.dir("data://.my/inbox").create()
    client.file("data://.my/inbox/note.txt").put("hello from ada")

    response = client.algo("ada/reader").pipe(
        {"path": "data://.my/inbox/note.txt", "callee": "ada/toolbox"}
    )

    assert response.result == {"text": "hello from ada", "shouted": "HELLO FROM ADA"}
    top = Invocation.objects.get(parent__isnull=True, model__slug="reader")
    nested = Invocation.objects.get(parent=top)
    assert nested.model.slug == "toolbox" and nested.depth == 1
    assert nested.status == InvocationStatus.SUCCEEDED
    # Billed to the original caller, under the same request's project.
    assert nested.caller_team_id == top.caller_team_id and nested.api_key_id == top.api_key_id
    assert nested.project == top.project == "research"
    usage = UsageRecord.objects.get(request_id=nested.pk)
    assert usage.team_id == top.caller_team_id and usage.project == "research"
    # The request log shows where the nested call came from.
    browser = Client()
    browser.force_login(owner)
    page = browser.get(reverse("monitoring:request_log"), {"id": str(nested.pk)}).content.decode()
    assert f'data-field="parent">{top.pk}<' in page
    parent_page = browser.get(reverse("monitoring:request_log"), {"id": str(top.pk)})
    assert f'href="?id={nested.pk}"' in parent_page.content.decode()
    # And the invocation resource says it.
    answer = browser.get(f"/v1/invocations/{nested.pk}").json()
    assert answer["parent_request_id"] == str(top.pk) and answer["depth"] == 1


def test_the_door_lets_through_the_api_only_and_with_this_calls_credential(platform, owner):
    publish(owner, prober("prober"))
    client = ada_client(owner, platform)
    client.dir("data://.my/inbox").create()
    client.file("data://.my/inbox/note.txt").put("x")

    probed = (
        client.algo("ada/prober")
        .pipe({"action": "probe", "path": "/v1/data/.my/inbox/note.txt"})
        .result
    )

    assert probed["right_key"] == 200
    assert probed["wrong_key"] == 401
    for what in ("keys", "admin", "models", "dotdot", "proxy", "connect"):
        assert probed[what] == 403, (what, probed)


def test_a_leaked_credential_dies_with_its_call(platform, owner, runner):
    publish(owner, prober("prober"))
    client = ada_client(owner, platform)
    client.dir("data://.my/inbox").create()
    client.file("data://.my/inbox/note.txt").put("x")
    algo = client.algo("ada/prober")

    # What the model holds, sent to the platform from outside: not a key at all.
    leaked = algo.pipe({"action": "env"}).result
    assert leaked["api"].startswith("http://127.0.0.1:") and leaked["key"]
    for path in ("/v1/data/.my/inbox/note.txt", "/v1/algo/ada/toolbox"):
        request = urllib.request.Request(
            platform.url + path, headers={"Authorization": leaked["key"]}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=20)
        assert refused.value.code == 401

    # A thread the model leaves running is refused once the call has ended.
    assert algo.pipe({"action": "linger", "path": "/v1/data/.my/inbox/note.txt"}).result
    attempts = [Path(w.process.tmp_dir) / "attempts.txt" for w in runner._workers]
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline:
        seen = "".join(p.read_text() for p in attempts if p.exists())
        if "401" in seen.split():
            break
        time.sleep(0.1)
    assert "401" in seen.split(), seen

    # The call's own credential (which the door adds; the model never sees it) dies with
    # the call as well.
    finished = Invocation.objects.filter(status=InvocationStatus.SUCCEEDED).first()
    token = call_credential_issue(finished)
    request = urllib.request.Request(
        platform.url + "/v1/data/.my/inbox/note.txt", headers={"Authorization": token}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=20)
    assert refused.value.code == 401
    assert b"died when its call ended" in refused.value.read()


def test_another_callers_private_data_is_not_found(platform, owner):
    publish(owner, prober("prober"))
    bob = UserFactory(username="bob")
    bob_client = ada_client(bob, platform)
    bob_client.dir("data://.my/secrets").create()
    bob_client.file("data://.my/secrets/diary.txt").put("bob's")
    client = ada_client(owner, platform)

    prober_algo = client.algo("ada/prober")
    answer = prober_algo.pipe({"action": "read", "path": "data://bob/secrets/diary.txt"}).result
    missing = prober_algo.pipe({"action": "read", "path": "data://bob/nothing/diary.txt"}).result

    # Answered exactly like a collection that does not exist (the server's 404).
    assert answer["refused"].endswith("no such collection data://bob/secrets"), answer
    assert missing["refused"].endswith("no such collection data://bob/nothing"), missing
    # What ada may write, the model may write for her.
    client.dir("data://.my/out").create()
    wrote = (
        client.algo("ada/prober")
        .pipe({"action": "write", "path": "data://.my/out/result.txt", "text": "done"})
        .result
    )
    assert wrote == {"wrote": "done"}
    assert client.file("data://.my/out/result.txt").getString() == "done"


def test_a_loop_stops_at_the_depth_limit(platform, owner, settings):
    settings.NESTED_CALLS_MAX_DEPTH = 2
    publish(owner, prober("ping"))
    publish(owner, prober("pong"))
    client = ada_client(owner, platform)

    answer = (
        client.algo("ada/ping")
        .pipe({"action": "bounce", "me": "ada/ping", "other": "ada/pong"})
        .result
    )

    # ping (depth 0) -> pong (1) -> ping (2) -> pong refused: 508 Loop Detected.
    assert answer["at"] == "ada/ping" and answer["nested"]["at"] == "ada/pong"
    innermost = answer["nested"]["nested"]
    assert innermost["at"] == "ada/ping" and "508" in innermost["refused"], answer
    chain = list(Invocation.objects.order_by("depth").values_list("depth", "model__slug"))
    assert chain[-3:] == [(0, "ping"), (1, "pong"), (2, "ping")]


def test_a_nested_calls_timeout_is_capped_by_its_parents(platform, owner):
    publish(owner, prober("prober"))
    client = ada_client(owner, platform)
    algo = client.algo("ada/prober").set_options(timeout=15)

    # The nested call asks for the client's default 300 s and sleeps longer than the
    # parent may run: it is given what is left of the parent's 15 s, no more. Whether the
    # parent answers its nested call's 504 or times out itself first, the call fails.
    with pytest.raises(Exception, match=r"504|[Tt]ime"):
        answer = algo.pipe({"action": "call", "target": "ada/toolbox", "input": {"sleep": 120}})
        raise AlgorithmException(json.dumps(answer.result))
    nested = Invocation.objects.get(model__slug="toolbox", parent__isnull=False)
    assert nested.timeout_seconds <= 15
    assert nested.parent.timeout_seconds == 15


def test_a_model_keeps_files_in_its_own_collection_whoever_calls_it(platform, owner):
    """`data://.algo/...` is the model's own collection in its owner's namespace: the
    model writes there for any caller; callers do not see it."""
    publish(owner, prober("prober"))
    bob = UserFactory(username="bob")
    bob_client = ada_client(bob, platform)

    answer = bob_client.algo("ada/prober").pipe({"action": "algo", "text": "scratch"}).result

    assert answer == {"read_back": "scratch"}
    assert not bob_client.file("data://ada/algo.prober/temp/scratch.txt").exists()
    owners = ada_client(owner, platform)
    assert owners.file("data://ada/algo.prober/temp/scratch.txt").getString() == "scratch"
    # Outside a running model there is no such collection.
    assert not bob_client.file("data://.algo/temp/scratch.txt").exists()


def test_an_asynchronous_call_lends_its_model_the_api_too(platform, owner, async_worker):
    """output=void: a Celery worker runs the call on the runner, with the credential it
    issued for it; the nested call is recorded under it as for a synchronous one."""
    publish(owner, READER_MODEL, folder=Path(tempfile.mkdtemp()) / "reader")
    client = ada_client(owner, platform)
    client.dir("data://.my/inbox").create()
    client.file("data://.my/inbox/note.txt").put("later")

    response = (
        client.algo("ada/reader")
        .set_options(output=OutputType.void)
        .pipe({"path": "data://.my/inbox/note.txt", "callee": "ada/toolbox"})
    )

    deadline = time.monotonic() + 120
    top = Invocation.objects.get(pk=response.request_id)
    while not top.is_final and time.monotonic() < deadline:
        time.sleep(0.2)
        top.refresh_from_db()
    assert top.status == InvocationStatus.SUCCEEDED, top.error
    assert top.result == {"text": "later", "shouted": "LATER"}
    nested = Invocation.objects.get(parent=top)
    assert nested.model.slug == "toolbox" and nested.caller_team_id == top.caller_team_id


def test_a_callers_data_scopes_govern_its_data_but_not_the_models_own(platform, owner):
    """A caller whose key may call models but not touch data: the model still keeps files in
    its own collection (they are the model's, not the caller's), and still cannot read the
    caller's data through the caller's credential."""
    publish(owner, prober("prober"))
    bob = UserFactory(username="bob")
    full = ada_client(bob, platform)
    full.dir("data://.my/inbox").create()
    full.file("data://.my/inbox/note.txt").put("bob's note")
    calls_only = ada_client(bob, platform, scopes=["algo://*"])

    own = calls_only.algo("ada/prober").pipe({"action": "algo", "text": "scratch"}).result
    assert own == {"read_back": "scratch"}

    theirs = (
        calls_only.algo("ada/prober")
        .pipe({"action": "read", "path": "data://.my/inbox/note.txt"})
        .result
    )
    assert "refused" in theirs and "data:read" in theirs["refused"], theirs
    allowed = full.algo("ada/prober").pipe({"action": "read", "path": "data://.my/inbox/note.txt"})
    assert allowed.result == {"text": "bob's note"}
