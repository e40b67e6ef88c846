#!/usr/bin/env bash
# podman as the container runtime for jobs with containerSettings, and the local test image.
#
#   podman.sh install    apt-get install podman runc (and debootstrap for `image`, and for the
#                        tests' private registry docker-registry and htpasswd), and write the
#                        containers.conf settings podman needs on these machines; idempotent
#   podman.sh image      build the local test image once (a Debian minbase rootfs with bash,
#                        python3 and OpenMPI, imported with `podman import`) and print its name
#   podman.sh image-name print the test image's name (whether or not it is built)
#
# The settings (reference: platform-notes.md) go to a drop-in, containers.conf.d/50-openbai.conf:
# runc instead of crun (crun's setrlimit fails here), cgroupfs, a file events log, and ulimits
# that the sandbox allows. No image registry is reachable, so only local images run: `image`
# debootstraps bookworm (from Debian's package mirror, ~1 minute, once), keeps the rootfs
# tarball in .services/podman/ and imports it; later calls find the image in podman's store
# (or re-import the tarball in a few seconds). OPENBAI_TEST_IMAGE overrides the name.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache="$root/.services/podman"
# bump the tag when the image's contents change
image=${OPENBAI_TEST_IMAGE:-localhost/openbai/test-bookworm:3}
conf_dir=/etc/containers/containers.conf.d
conf=$conf_dir/50-openbai.conf

work=""
trap '[[ -z "$work" ]] || rm -rf "$work"' EXIT

die() { echo "podman.sh: $*" >&2; exit 1; }

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # other scripts may be running apt at the same time: wait for the lock instead of failing
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}

write_conf() {
    mkdir -p "$conf_dir"
    local text
    text=$(cat <<'CONF'
# written by openbai scripts/services/podman.sh
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=8192:8192"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
)
    if [[ ! -f "$conf" ]] || [[ "$(cat "$conf")" != "$text" ]]; then
        printf '%s\n' "$text" >"$conf"
    fi
}

install() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v htpasswd >/dev/null || missing+=(apache2-utils)
    if [[ ${#missing[@]} -gt 0 ]]; then
        apt_install "${missing[@]}"
    fi
    command -v podman >/dev/null || die "apt-get install podman finished but podman is missing"
    write_conf
    local runtime
    runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null) \
        || die "podman info failed: $(podman info 2>&1 | tail -5)"
    [[ "$runtime" == runc ]] || die "podman uses $runtime, not runc: is $conf read?"
}

build_rootfs() {
    local tarball=$1
    work=$(mktemp -d "$cache/rootfs.XXXXXX")
    echo "podman.sh: debootstrap bookworm into $work/rootfs (once)" >&2
    debootstrap --variant=minbase --include=python3,openmpi-bin,python3-mpi4py bookworm "$work/rootfs" \
        "${OPENBAI_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    ln -sf python3 "$work/rootfs/usr/bin/python"
    # lets a test tell that it runs in this image (its os-release may equal the host's)
    echo "$image" >"$work/rootfs/etc/openbai-test-image"
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    tar -C "$work/rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$work"
    work=""
}

build_image() {
    command -v podman >/dev/null || die "podman is not installed (podman.sh install)"
    if podman image exists "$image"; then
        echo "$image"
        return 0
    fi
    mkdir -p "$cache"
    exec 9>"$cache/.lock"
    flock 9  # one build at a time; the others find its image
    if podman image exists "$image"; then
        echo "$image"
        return 0
    fi
    local tarball="$cache/${image//[^a-zA-Z0-9._-]/_}.tar"
    [[ -f "$tarball" ]] || build_rootfs "$tarball"
    podman import --quiet --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
    echo "$image"
}

cmd=${1:-}
shift || true
case "$cmd" in
    install) install ;;
    image) build_image ;;
    image-name) echo "$image" ;;
    *) die "usage: podman.sh install | image | image-name" ;;
esac
