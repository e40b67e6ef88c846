"""Two-step deletes: begun at once (marked deleting, jobs asked to stop), finished later."""

from __future__ import annotations

from typing import Any

import pytest
from job_files import logged_job

from openbai.errors import ConflictError, NotFoundError, OpenBaiError
from openbai.installation import App
from openbai.services import accounts, clusters, deletions, jobs, volumes, workspaces
from openbai.storage.base import VolumeKind

JOB = {"properties": logged_job("sleep 60")}


@pytest.fixture
def installation(app: App) -> App:
    workspaces.create_workspace(app, "rg", "ws")
    workspaces.create_experiment(app, "rg", "ws", "exp")
    accounts.create_account(app, "acct")
    accounts.create_volume(app, "acct", VolumeKind.FILE, "logs")
    clusters.create_cluster(
        app, "rg", "ws", "c", {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}}
    )
    return app


def test_begin_marks_and_finish_removes(installation: App) -> None:
    app = installation
    begun = deletions.begin(app, "experiment", "rg", "ws", "exp")
    assert workspaces.get_experiment(app, "rg", "ws", "exp").provisioning.state == "deleting"
    assert deletions.begin(app, "experiment", "rg", "ws", "exp") == begun  # again: the same
    assert deletions.state(app, begun) == "InProgress"
    with pytest.raises(ConflictError):
        workspaces.create_experiment(app, "rg", "ws", "exp")
    deletions.finish(app, begun)
    assert deletions.state(app, begun) == "Succeeded"
    deletions.finish(app, begun)  # nothing left to do

    workspaces.create_experiment(app, "rg", "ws", "exp")  # the name is free again
    assert deletions.state(app, begun) == "Succeeded"  # a new experiment, not the one deleted


def test_a_busy_cluster_is_not_deleted(installation: App) -> None:
    app = installation
    jobs.create_job(app, "rg", "ws", "exp", "j", JOB, cluster="c")
    with pytest.raises(ConflictError) as busy:
        deletions.begin(app, "cluster", "rg", "ws", "c")
    assert busy.value.code == "ClusterInUse"
    assert clusters.get_cluster(app, "rg", "ws", "c").provisioning.state == "succeeded"


def test_pending_deletes_are_finished_children_first(installation: App) -> None:
    app = installation
    jobs.create_job(app, "rg", "ws", "exp", "j", JOB, cluster="c")
    deletions.begin(app, "job", "rg", "ws", "j", experiment="exp")
    deletions.begin(app, "workspace", "rg", "", "ws")
    assert [d.kind for d in deletions.pending(app)] == ["job", "workspace"]
    deletions.finish_pending(app)
    assert deletions.pending(app) == []
    assert workspaces.list_workspaces(app) == []


@pytest.mark.parametrize("deleted", ["begun", "finished"])
def test_a_cluster_deleted_while_a_job_is_created_takes_no_job(
    installation: App, monkeypatch: pytest.MonkeyPatch, deleted: str
) -> None:
    """A create checks its cluster, resolves its volumes, then inserts the job: a delete of
    the cluster in between (another client's) leaves no job running on a deleted cluster."""
    app = installation
    resolve = volumes.resolve_mounts

    def resolved_while_the_cluster_is_deleted(*args: Any, **kwargs: Any) -> Any:
        found = resolve(*args, **kwargs)
        begun = deletions.begin(app, "cluster", "rg", "ws", "c")
        if deleted == "finished":
            deletions.finish(app, begun)
        return found

    monkeypatch.setattr(jobs, "resolve_mounts", resolved_while_the_cluster_is_deleted)
    with pytest.raises(OpenBaiError) as refused:
        jobs.create_job(app, "rg", "ws", "exp", "j", JOB, cluster="c")
    expected = "ResourceBeingDeleted" if deleted == "begun" else "ClusterNotFound"
    assert refused.value.code == expected
    with pytest.raises(NotFoundError):
        jobs.get_job(app, "rg", "ws", "exp", "j")


def test_a_workspace_deleted_while_a_job_is_created_on_another_ones_cluster_takes_no_job(
    installation: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's cluster (named by ARM id) is another workspace's: the delete of its own
    workspace, begun meanwhile, is what refuses it."""
    app = installation
    workspaces.create_workspace(app, "rg", "other")
    clusters.create_cluster(
        app,
        "rg",
        "other",
        "oc",
        {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}},
    )
    resolve = volumes.resolve_mounts

    def resolved_while_the_workspace_is_deleted(*args: Any, **kwargs: Any) -> Any:
        found = resolve(*args, **kwargs)
        deletions.begin(app, "workspace", "rg", "", "ws")
        return found

    monkeypatch.setattr(jobs, "resolve_mounts", resolved_while_the_workspace_is_deleted)
    cluster = f"/subscriptions/{app.settings.subscription_id}/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/other/clusters/oc"
    with pytest.raises(OpenBaiError) as refused:
        jobs.create_job(app, "rg", "ws", "exp", "j", JOB, cluster=cluster)
    assert refused.value.code == "ResourceBeingDeleted"
    assert "workspace ws is being deleted" in refused.value.message
