"""A running model's temporary files (`data://.algo/temp/...`, stored in its owner's
`algo.<model>` collection) are deleted a day after they were last written, as Algorithmia's
were; nothing else is."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from data.models import DataEntry, TeamDataUsage
from data.tasks import purge_models_temp_files
from tests.data.test_api import make_collection, put


def _age(collection: str, parent: str, name: str, hours: int) -> None:
    DataEntry.objects.filter(collection__name=collection, parent=parent, name=name).update(
        modified_at=timezone.now() - timedelta(hours=hours)
    )


def test_temporary_files_of_models_expire_after_a_day(
    ada_api, ada, data_root, django_capture_on_commit_callbacks
):
    make_collection(ada_api, "algo.reader")
    make_collection(ada_api, "notes")
    for path in (
        "algo.reader/temp/old.txt",
        "algo.reader/temp/deep/old.txt",
        "algo.reader/temp/new.txt",
        "algo.reader/kept/old.txt",
        "notes/temp/old.txt",
    ):
        assert put(ada_api, f".my/{path}", b"12345").status_code == 200, path
    _age("algo.reader", "temp", "old.txt", 25)
    _age("algo.reader", "temp/deep", "old.txt", 25)
    _age("algo.reader", "kept", "old.txt", 25)
    _age("notes", "temp", "old.txt", 25)
    used = TeamDataUsage.objects.get(team=ada.personal_team).bytes_used

    with django_capture_on_commit_callbacks(execute=True):  # blobs go after the commit
        assert purge_models_temp_files() == 2

    def status(path):
        return ada_api.get(f"/v1/data/.my/{path}").status_code

    assert status("algo.reader/temp/old.txt") == 404
    assert status("algo.reader/temp/deep/old.txt") == 404
    assert status("algo.reader/temp/new.txt") == 200
    assert status("algo.reader/kept/old.txt") == 200
    assert status("notes/temp/old.txt") == 200
    assert TeamDataUsage.objects.get(team=ada.personal_team).bytes_used == used - 10
    stored = [p for p in data_root.rglob("*") if p.is_file()]
    assert len(stored) == 3, stored
    assert purge_models_temp_files() == 0
