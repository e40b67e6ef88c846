"""Clusters: create (optionally with auto-storage), resize, show, delete.

A cluster's executor comes from openbai's extension ``properties.openbai.executor``
(``local`` by default). A local cluster of N nodes is N slots on this machine, allocated by
the dispatcher (scheduling/allocation.py): a new or resized cluster is ``resizing`` until it
has them, and an auto-scale cluster follows its queue between its minimum and maximum.
"""

from __future__ import annotations

import logging
import random
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openbai.errors import ConflictError, NotFoundError, SpecError
from openbai.installation import App
from openbai.scheduling.locations import MountedVolume
from openbai.scheduling.node_setup import has_setup_task, host_setup, setup_failures, slot_setup
from openbai.scheduling.volumes import mounted_volumes
from openbai.services import accounts, audit
from openbai.services.containers import check_runtime_installed
from openbai.services.gpus import gpu_count, with_gpus
from openbai.services.reach import require_installation_owner
from openbai.services.records import ClusterRecord, NodeStateCounts
from openbai.services.tokens import TokenInfo
from openbai.services.volumes import require_on_volume, resolve_mounts
from openbai.services.workspaces import check_not_deleting, named_in_workspace, workspace_row
from openbai.spec import (
    ClusterBaseProperties,
    ClusterCreateParameters,
    ClusterUpdateParameters,
    check_name,
    parse,
)
from openbai.storage.base import VolumeKind
from openbai.store.models import Cluster, Job, Workspace, utcnow
from openbai.store.specs import cluster_properties
from openbai.vocabulary import ON_NODES

log = logging.getLogger(__name__)

AUTO_STORAGE_RESOURCE_GROUP = "batchaiautostorage"
AUTO_STORAGE_SHARE_NAME = "batchaishare"
AUTO_STORAGE_CONTAINER_NAME = "batchaicontainer"
AUTO_STORAGE_ACCOUNT_PREFIX = "bai"
AUTO_STORAGE_SHARE_PATH = "autoafs"
AUTO_STORAGE_CONTAINER_PATH = "autobfs"


_CLUSTER = named_in_workspace(Cluster)


def cluster_row(s: Session, rg: str, ws: str, name: str) -> Cluster:
    """The cluster with its workspace, in one query built once."""
    row: Cluster | None = s.scalar(_CLUSTER, {"rg": rg, "ws": ws, "name": name})
    if row is None:
        workspace_row(s, rg, ws)  # says so when it is the workspace that is missing
        raise NotFoundError(
            f"The specified cluster {name} is not found", code="ClusterNotFound", target=name
        )
    return row


def busy_slots(s: Session, cluster: Cluster) -> set[int]:
    rows = s.scalars(
        select(Job.nodes).where(Job.cluster_id == cluster.id, Job.execution_state.in_(ON_NODES))
    )
    return {slot for nodes in rows for slot in (nodes or [])}


def node_counts(app: App, s: Session, cluster: Cluster) -> NodeStateCounts:
    props = cluster_properties(cluster)
    executor = app.executor(cluster.executor)
    hosts = host_setup(app, cluster) if has_setup_task(cluster.spec) else None
    # a Slurm host counts preparing until it ran the setup task, unusable if that failed
    counted = (
        hosts.counts()
        if hosts is not None
        else executor.node_counts({"partition": props.openbai.partition}, props.target_node_count)
    )
    if counted is not None:
        return NodeStateCounts(
            counted.idle, counted.running, counted.preparing, counted.unusable, counted.leaving
        )
    size = cluster.current_node_count
    busy = busy_slots(s, cluster)
    running = len({slot for slot in busy if slot < size})
    # slots above a lowered size still run their jobs: they leave when those end
    leaving = len({slot for slot in busy if slot >= size})
    setup = slot_setup(app, cluster, size)
    preparing = len(setup.preparing - busy)
    unusable = len(setup.unusable - busy)
    idle = max(0, size - running - preparing - unusable)
    return NodeStateCounts(idle, running, preparing, unusable, leaving)


def record(app: App, s: Session, row: Cluster) -> ClusterRecord:
    found = ClusterRecord.of(row, app.settings.subscription_id, node_counts(app, s, row))
    # as Batch AI's errors "encountered by various compute nodes during node setup": one a
    # node its setup task left unusable
    setup = [
        {"code": "SetupTaskFailed", "message": why, "details": [{"name": "nodeId", "value": node}]}
        for node, why in setup_failures(app, row, row.current_node_count)
    ]
    return replace(
        found, gpu_count=gpu_count(app, cluster_properties(row)), errors=[*found.errors, *setup]
    )


def create_cluster(
    app: App,
    rg: str,
    ws: str,
    name: str,
    body: Mapping[str, Any],
    *,
    use_auto_storage: bool = False,
    caller: TokenInfo | None = None,
) -> ClusterRecord:
    """A new cluster of ``body``; the file servers it mounts and a sandbox turned off are
    checked against ``caller``'s token (None: the local CLI).

    With ``use_auto_storage``, everything is checked before the auto-storage account is made
    (the workspace, the name, the spec, and that ``caller`` may create a storage account when
    there is none yet), and a cluster that still fails to be created takes it away again."""
    check_name(name, field="clusterName")
    params = parse(ClusterCreateParameters, dict(body))
    props = params.properties
    if not props.openbai.sandbox:
        require_installation_owner(
            caller,
            "a cluster without a sandbox (its jobs run with the server's identity)",
            field="properties.openbai.sandbox",
        )
    if props.openbai.share_gpus:
        require_installation_owner(
            caller,
            "a cluster sharing GPUs (it may use the GPUs that other workspaces' clusters hold)",
            field="properties.openbai.shareGpus",
        )
    # the volumes the body names (passwords sealed in place); auto-storage's are made below
    resolve_mounts(
        app,
        props.node_setup.mount_volumes if props.node_setup else None,
        root="AZ_BATCHAI_MOUNT_ROOT",
        field="properties.nodeSetup.mountVolumes",
        caller=caller,
    )
    auto = _plan_auto_storage(app, caller) if use_auto_storage else None
    if auto is not None:
        props = _with_auto_storage(props, auto.account)
    mounted = mounted_volumes(
        props.node_setup.mount_volumes if props.node_setup else None,
        root="AZ_BATCHAI_MOUNT_ROOT",
        field="properties.nodeSetup.mountVolumes",
    )
    secrets = {}
    if props.node_setup and props.node_setup.setup_task:
        for index, secret in enumerate(props.node_setup.setup_task.secrets):
            if secret.value is None:
                field = f"properties.nodeSetup.setupTask.secrets[{index}].valueSecretReference"
                raise SpecError(
                    f"{field}: Key Vault references cannot be resolved by openbai; give the value",
                    target=field,
                )
            secrets[secret.name] = secret.value
        _check_on_volume(props.node_setup.setup_task.std_out_err_path_prefix, mounted)
    if auto is not None:
        # nothing is made for a request that fails: check what the insert below checks again
        # (in its own transaction: the workspace may go meanwhile)
        with app.db.reading() as s:
            _insertable(app, s, rg, ws, name, props)
        _make_auto_storage(app, auto, caller)
    try:
        with app.db.session() as s:
            workspace, props = _insertable(app, s, rg, ws, name, props)
            wire = props.to_wire()
            row = Cluster(
                workspace=workspace,
                name=name,
                uid=str(uuid.uuid4()),
                spec=_public(wire),
                secrets=secrets,
                executor=props.openbai.executor,
                # the dispatcher allocates the nodes (an auto-scale cluster starts with its
                # initial count, within its bounds)
                current_node_count=_initial_nodes(props),
                allocation_state="resizing" if _wants_nodes(props) else "steady",
            )
            s.add(row)
            s.flush()
            result = record(app, s, row)
    except BaseException:
        if auto is not None and auto.new:
            _remove_auto_storage(app, auto, caller)
        raise
    app.changed()
    return result


def _insertable(
    app: App, s: Session, rg: str, ws: str, name: str, props: ClusterBaseProperties
) -> tuple[Workspace, ClusterBaseProperties]:
    """The workspace the cluster goes into and its properties with their GPUs placed, once
    the workspace, the name, the container runtime and the GPUs are checked."""
    workspace = _new_cluster_workspace(s, rg, ws, name)
    check_runtime_installed(app, props)
    return workspace, with_gpus(app, s, props)


def _new_cluster_workspace(s: Session, rg: str, ws: str, name: str) -> Workspace:
    """The workspace a cluster ``name`` is to be made in: it exists, is not being deleted, and
    has no cluster of that name (``ClusterAlreadyExists``)."""
    workspace = workspace_row(s, rg, ws)
    check_not_deleting(workspace, "workspace")
    taken = select(Cluster.id).where(Cluster.workspace_id == workspace.id, Cluster.name == name)
    if s.scalar(taken) is not None:
        raise ConflictError(
            f"cluster {name} already exists in workspace {ws}",
            code="ClusterAlreadyExists",
            target=name,
        )
    return workspace


def _check_on_volume(prefix: str, mounted: list[MountedVolume]) -> None:
    """The setup task's output must be on a volume of the cluster, as a job's must be on a
    volume of the job (``cluster file list`` lists it there)."""
    require_on_volume(
        prefix,
        mounted,
        "properties.nodeSetup.setupTask.stdOutErrPathPrefix",
        mounted_on="on the cluster's nodes",
        none_mounted="the cluster mounts none (nodeSetup.mountVolumes)",
    )


def _initial_nodes(props: ClusterBaseProperties) -> int:
    auto = props.scale_settings.auto_scale if props.scale_settings else None
    if auto is None:
        return 0
    return max(auto.minimum_node_count, auto.initial_node_count)


def _wants_nodes(props: ClusterBaseProperties) -> bool:
    scale = props.scale_settings
    return scale is not None and scale.manual is not None and scale.manual.target_node_count > 0


def _public(wire: dict[str, Any]) -> dict[str, Any]:
    """The stored spec: without setup-task secret values and mount keys."""
    return parse(ClusterBaseProperties, wire).to_public_wire()


@dataclass(frozen=True)
class _AutoStorage:
    account: str
    #: the account is to be made (none in ``batchaiautostorage`` yet)
    new: bool


def _plan_auto_storage(app: App, caller: TokenInfo | None) -> _AutoStorage:
    """Batch AI's ``--use-auto-storage``: the installation's account in ``batchaiautostorage``,
    or the name of a new one. Making one is what ``storage account create`` is: only the
    installation's owner (an owner token limited to no workspace) may; using the one there is
    needs no more than mounting any account's volumes does."""
    existing = [
        a for a in accounts.list_accounts(app) if a.resource_group == AUTO_STORAGE_RESOURCE_GROUP
    ]
    if existing:
        return _AutoStorage(existing[0].name, new=False)
    require_installation_owner(
        caller,
        "making the auto-storage account (a storage account create: there is none in"
        f" resource group {AUTO_STORAGE_RESOURCE_GROUP} yet)",
        field="openbai-use-auto-storage",
    )
    name = AUTO_STORAGE_ACCOUNT_PREFIX + "".join(random.choices(string.ascii_lowercase, k=12))
    return _AutoStorage(name, new=True)


def _make_auto_storage(app: App, auto: _AutoStorage, caller: TokenInfo | None) -> None:
    """The account (when new: in the audit log, as ``storage account create`` is) and its
    share and container; a new account is taken away again if they fail."""
    if auto.new:
        accounts.create_account(app, auto.account, resource_group=AUTO_STORAGE_RESOURCE_GROUP)
        _audit(app, caller, "storage.account.create", auto.account)
    try:
        for kind, volume in (
            (VolumeKind.FILE, AUTO_STORAGE_SHARE_NAME),
            (VolumeKind.BLOB, AUTO_STORAGE_CONTAINER_NAME),
        ):
            accounts.create_volume(app, auto.account, kind, volume, exist_ok=True)
    except BaseException:
        if auto.new:
            _remove_auto_storage(app, auto, caller)
        raise


def _remove_auto_storage(app: App, auto: _AutoStorage, caller: TokenInfo | None) -> None:
    """Take away the auto-storage account made for a cluster that was not created."""
    try:
        accounts.delete_account(app, auto.account)
    except Exception:
        log.exception("could not remove the auto-storage account %s", auto.account)
        return
    _audit(app, caller, "storage.account.delete", auto.account)


def _audit(app: App, caller: TokenInfo | None, action: str, account: str) -> None:
    """Record what a server's caller did to a storage account as a side of its request, as
    the account's own route would be recorded (the local CLI records nothing)."""
    if caller is None:
        return
    resource = f"/openbai/storage/accounts/{account}"
    audit.record(app, audit.AuditEntry(caller.name, action, resource, "succeeded", 200))


def _with_auto_storage(props: ClusterBaseProperties, account: str) -> ClusterBaseProperties:
    """``props`` mounting auto-storage's share and container of ``account`` on every node, at
    ``autoafs`` and ``autobfs``."""
    wire = props.to_wire()
    node_setup = wire.setdefault("nodeSetup", {})
    volumes = node_setup.setdefault("mountVolumes", {})
    volumes.setdefault("azureFileShares", []).append(
        {
            "accountName": account,
            "azureFileUrl": f"https://{account}.file.core.windows.net/{AUTO_STORAGE_SHARE_NAME}",
            "relativeMountPath": AUTO_STORAGE_SHARE_PATH,
        }
    )
    volumes.setdefault("azureBlobFileSystems", []).append(
        {
            "accountName": account,
            "containerName": AUTO_STORAGE_CONTAINER_NAME,
            "relativeMountPath": AUTO_STORAGE_CONTAINER_PATH,
        }
    )
    return parse(ClusterBaseProperties, wire, root="properties")


def get_cluster(app: App, rg: str, ws: str, name: str) -> ClusterRecord:
    with app.db.reading() as s:
        return record(app, s, cluster_row(s, rg, ws, name))


def list_clusters(
    app: App, rg: str, ws: str, *, offset: int = 0, limit: int | None = None
) -> list[ClusterRecord]:
    with app.db.reading() as s:
        workspace = workspace_row(s, rg, ws)
        query = (
            select(Cluster)
            .where(Cluster.workspace_id == workspace.id)
            .order_by(Cluster.name)
            .offset(offset)
            .limit(limit)
        )
        return [record(app, s, c) for c in s.scalars(query)]


def update_cluster(app: App, rg: str, ws: str, name: str, body: Mapping[str, Any]) -> ClusterRecord:
    """PATCH: only the scale settings change (resize, auto-scale)."""
    update = parse(ClusterUpdateParameters, dict(body))
    with app.db.session() as s:
        row = cluster_row(s, rg, ws, name)
        if update.properties.scale_settings is not None:
            spec = cluster_properties(row).to_wire()
            before = (spec.get("scaleSettings") or {}).get("manual")
            spec["scaleSettings"] = update.properties.scale_settings.to_wire()
            given = update.properties.scale_settings.manual
            if (
                given is not None
                and before
                and "node_deallocation_option" not in given.model_fields_set
            ):
                # a resize (az's sends only the count) keeps what the cluster does with the
                # jobs on the nodes it gives back
                spec["scaleSettings"]["manual"]["nodeDeallocationOption"] = before.get(
                    "nodeDeallocationOption", "requeue"
                )
            resized = with_gpus(app, s, parse(ClusterBaseProperties, spec), cluster_id=row.id)
            row.spec = _public(resized.to_wire())
            manual = update.properties.scale_settings.manual
            auto = update.properties.scale_settings.auto_scale
            if (manual is not None and manual.target_node_count != row.current_node_count) or (
                # a maximum lowered below the nodes it has: it gives them back as they idle
                auto is not None and auto.maximum_node_count < row.current_node_count
            ):
                row.allocation_state = "resizing"
            row.allocation_changed_at = utcnow()
        result = record(app, s, row)
    app.changed()
    return result
