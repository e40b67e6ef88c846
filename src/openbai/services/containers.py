"""Whether a cluster's jobs can run in their images, checked when it is created and when a job
with ``containerSettings`` is submitted.

An image job runs in its image, with the runtime found on the node (podman, docker, apptainer,
in that order) unless one is configured. Running it on the host instead (preparations such as
``apt install`` as root on the machine) needs a cluster created with ``allowHostRuns``; then
the submitter is warned.
"""

from __future__ import annotations

from openbai.errors import ConflictError, SpecError
from openbai.installation import App
from openbai.runtime.containers import NO_RUNTIME, RUNTIMES
from openbai.spec import ClusterBaseProperties
from openbai.spec.job import JobBaseProperties


def configured_runtime(app: App, props: ClusterBaseProperties) -> str | None:
    return props.openbai.container_runtime or app.settings.container_runtime


def check_runtime_installed(app: App, props: ClusterBaseProperties) -> None:
    """A runtime the cluster (or the installation) names must be there."""
    runtime = configured_runtime(app, props)
    if runtime in (None, NO_RUNTIME) or app.executor(props.openbai.executor).has_container_runtime(
        runtime
    ):
        return
    field = (
        "properties.openbai.containerRuntime"
        if props.openbai.container_runtime
        else "OPENBAI_CONTAINER_RUNTIME"
    )
    raise SpecError(
        f"{field}: container runtime {runtime} is not installed on this machine"
        f" ({runtime} is not in the PATH); install it or choose another of {', '.join(RUNTIMES)}",
        target=field,
    )


def image_job_warnings(
    app: App, cluster_name: str, cluster: ClusterBaseProperties, job: JobBaseProperties
) -> list[str]:
    """Refuse an image job no node can run in its image; the warnings for one that runs on
    the host because its cluster allows it."""
    if job.container_settings is None:
        return []
    runtime = configured_runtime(app, cluster)
    if app.executor(cluster.openbai.executor).has_container_runtime(runtime):
        return []
    looked = runtime or ", ".join(RUNTIMES)
    image = job.container_settings.image_source_registry.image
    if runtime == NO_RUNTIME and not cluster.openbai.require_containers:
        return [
            f"OPENBAI_CONTAINER_RUNTIME is none: the job runs on the host, not in image {image}"
            " (its job preparation too)"
        ]
    if cluster.openbai.allow_host_runs and not cluster.openbai.require_containers:
        return [
            f"no container runtime ({looked}) is installed: the job runs on the host, not in "
            f"image {image}, as cluster {cluster_name} allows (its job preparation too)"
        ]
    raise ConflictError(
        f"properties.containerSettings: the job runs in image {image}, but no container runtime"
        f" ({looked}) is installed for cluster {cluster_name}; install one, or create the"
        " cluster with --allow-host-runs to run such jobs on the host",
        code="ContainerRuntimeUnavailable",
        target="properties.containerSettings",
    )
