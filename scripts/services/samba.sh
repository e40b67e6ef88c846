#!/usr/bin/env bash
# Samba as a local stand-in for Azure Files (SMB 3), for tests and local development.
#
#   samba.sh install               apt-get install samba (a no-op when smbd and net are there)
#   samba.sh start [DIR] [PORT]    run a private smbd on 127.0.0.1:PORT (default 1445), state in DIR
#   samba.sh stop [DIR]            stop the instance started with the same DIR
#   samba.sh env [DIR]             print its settings as shell assignments (OPENBAI_SAMBA_*)
#
# DIR defaults to .services/samba. It holds smb.conf, the password, Samba's state and logs,
# and shares/, under which every share is a directory. Shares are Samba *registry shares*
# (`registry shares = yes`): openbai's SMB backend creates, lists and deletes them with
# `net -s DIR/smb.conf conf addshare|listshares|delshare` (account option `samba_config`),
# and smbd serves a new share on the next connection without a reload. By hand:
#
#   net -s DIR/smb.conf conf addshare NAME DIR/shares/NAME writeable=y guest_ok=n
#
# Like Azure Files, the SMB user is the storage account's name and the password its key. By
# default they are Azurite's development account (devstoreaccount1 and its well-known, public
# key), so one connection string serves Azurite's blobs and these shares; set
# OPENBAI_SAMBA_USER / OPENBAI_SAMBA_PASSWORD at the first start for others. The user is also
# a Unix user (created here, no login shell), as Samba needs. Both are kept in DIR.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
default_dir="$root/.services/samba"
# Azurite's well-known development key (public, documented by Microsoft): not a secret.
dev_key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

die() { echo "samba.sh: $*" >&2; exit 1; }

install() {
    if command -v smbd >/dev/null && command -v net >/dev/null && command -v smbpasswd >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends samba >/dev/null
    command -v smbd >/dev/null || die "apt-get install samba finished but smbd is missing"
}

ensure_user() {
    local user=$1
    id "$user" >/dev/null 2>&1 && return 0
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
}

write_config() {
    local dir=$1 port=$2 state=$1/state
    cat >"$dir/smb.conf" <<EOF
# written by scripts/services/samba.sh: a private smbd for openbai (Azure Files stand-in)
[global]
    server role = standalone server
    interfaces = 127.0.0.1
    bind interfaces only = yes
    smb ports = $port
    server min protocol = SMB3
    disable netbios = yes
    host msdfs = no
    rpc start on demand helpers = no
    map to guest = never
    restrict anonymous = 2
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    usershare max shares = 0
    registry shares = yes
    passdb backend = tdbsam:$state/private/passdb.tdb
    private dir = $state/private
    lock directory = $state/lock
    state directory = $state/state
    cache directory = $state/cache
    pid directory = $state/pid
    ncalrpc dir = $state/ncalrpc
    log file = $dir/log/%m.log
    max log size = 1000
    logging = file
    log level = 1
    create mask = 0644
    directory mask = 0755
    map archive = no
    # as on Azure Files: opening for FILE_EXECUTE (smbclient's rename does) needs no x bit
    acl allow execute always = yes
    # read by openbai (storage/samba_shares.py): where new shares' directories go
    openbai:share root = $dir/shares
EOF
}

answers() {
    local port=$1
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

start() {
    local dir=${1:-$default_dir} port=${2:-1445}
    install
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local pidfile="$dir/smbd.pid"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        die "already running (pid $(cat "$pidfile")); stop it first"
    fi
    mkdir -p "$dir"/state/{private,lock,state,cache,pid,ncalrpc} "$dir/log" "$dir/shares"
    chmod 755 "$dir"  # smbd serves files as the SMB user, who must reach shares/
    chmod 700 "$dir/state/private"
    [[ -s "$dir/user" ]] || echo "${OPENBAI_SAMBA_USER:-devstoreaccount1}" >"$dir/user"
    [[ -s "$dir/password" ]] || (umask 077 && echo "${OPENBAI_SAMBA_PASSWORD:-$dev_key}" >"$dir/password")
    local user
    user=$(cat "$dir/user")
    ensure_user "$user"
    chown "$user:" "$dir/shares"
    runuser -u "$user" -- test -w "$dir/shares" ||
        die "$user cannot reach $dir/shares: every parent directory needs o+x (mktemp -d /tmp/... works)"
    echo "$port" >"$dir/port"
    write_config "$dir" "$port"
    local password
    password=$(cat "$dir/password")
    printf '%s\n%s\n' "$password" "$password" |
        smbpasswd -c "$dir/smb.conf" -s -a "$user" >"$dir/log/smbpasswd.out" 2>&1 ||
        { cat "$dir/log/smbpasswd.out" >&2; die "smbpasswd failed"; }
    # its own session: on shutdown smbd signals its whole process group, which must not be ours
    setsid smbd --foreground --no-process-group -s "$dir/smb.conf" \
        >"$dir/log/smbd.out" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 200); do
        if answers "$port"; then
            env_of "$dir"
            return 0
        fi
        kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$dir/log/smbd.out" >&2; die "smbd exited"; }
        sleep 0.05
    done
    cat "$dir/log/smbd.out" >&2
    die "smbd did not answer on port $port within 10 s"
}

stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    local dir=${1:-$default_dir}
    local pidfile="$dir/smbd.pid"
    [[ -f "$pidfile" ]] || return 0
    stop_pid "$(cat "$pidfile")"
    rm -f "$pidfile"
}

env_of() {
    local dir=${1:-$default_dir}
    [[ -f "$dir/smb.conf" ]] || die "no Samba set up in $dir (samba.sh start $dir)"
    dir=$(cd "$dir" && pwd)
    echo "OPENBAI_SAMBA_STATE=$dir"
    echo "OPENBAI_SAMBA_PORT=$(cat "$dir/port")"
    echo "OPENBAI_SAMBA_USER=$(cat "$dir/user")"
    echo "OPENBAI_SAMBA_PASSWORD=$(cat "$dir/password")"
    echo "OPENBAI_SAMBA_CONFIG=$dir/smb.conf"
}

cmd=${1:-}
shift || true
case "$cmd" in
    install) install ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    env) env_of "$@" ;;
    *) die "usage: samba.sh install | start [DIR] [PORT] | stop [DIR] | env [DIR]" ;;
esac
