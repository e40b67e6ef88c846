#!/usr/bin/env bash
# A real two-node Slurm cluster on this one machine, for openbai's tests and benchmarks.
#
#   slurm.sh install                      apt-get install slurm + munge + iproute2 + socat (idempotent)
#   slurm.sh start  [STATE_DIR] [opts]    start munged, slurmctld and two slurmd (node1, node2); waits for idle
#   slurm.sh stop   [STATE_DIR]           stop everything started, delete namespaces/veths (idempotent)
#   slurm.sh status [STATE_DIR]           exit 0 = running, 3 = stopped, 1 = partly running
#   slurm.sh env    [STATE_DIR]           print KEY=VALUE lines a Slurm client needs (SLURM_CONF=...)
#   slurm.sh forward   PORT... [--state-dir DIR]   let jobs on the nodes reach host 127.0.0.1:PORT
#   slurm.sh unforward PORT... [--state-dir DIR]
#
# start options:
#   --forward-port P   (repeatable) forward 127.0.0.1:P inside each node to the host's 127.0.0.1:P
#   --cpus N           CPUs declared per node (default 2)
#   --gpus N           GPUs declared per node (GRES gpu, default 2; 0: none). They are character
#                      devices made under STATE_DIR/dev (no hardware): Slurm hands them out to jobs
#                      that ask --gres=gpu:N and sets SLURM_JOB_GPUS / CUDA_VISIBLE_DEVICES
#   --timeout S        seconds to wait for both nodes to be idle (default 90)
#
# STATE_DIR defaults to $OPENBAI_SLURM_STATE, else <repo>/.services/slurm.
# Each node is a slurmd in its own network + UTS namespace (hostname node1 / node2, 10.77.0.11 / .12,
# veth into the bridge obslurm0 = 10.77.0.1 on the host, where slurmctld listens). No mount namespace:
# the filesystem is shared by the host and both nodes. See README-slurm.md.
#
# OPENBAI_SLURM_INSTANCE=NAME (a letter or two) gives a second cluster its own bridge, namespaces,
# owner file and /etc/hosts mark, so that it runs beside the default one; give it its own
# OPENBAI_SLURM_SUBNET and OPENBAI_SLURM_CTLD_PORT as well. Its nodes are still named node1 and
# node2, which /etc/hosts resolves to the first cluster's: jobs that reach other nodes by name
# (mpirun across nodes) need the default one.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)

NODES=(node1 node2)
CTLD_PORT=${OPENBAI_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${OPENBAI_SLURM_SLURMD_PORT:-6818}

die() { echo "slurm.sh: error: $*" >&2; exit 1; }
log() { echo "slurm.sh: $*" >&2; }

# ---------------------------------------------------------------- argument parsing
CMD=${1:-}
[ $# -gt 0 ] && shift
STATE_DIR=""
FORWARD_PORTS=()
PORT_ARGS=()
CPUS=2
GPUS=2
TIMEOUT=90
while [ $# -gt 0 ]; do
    case "$1" in
        --state-dir) STATE_DIR=$2; shift 2 ;;
        --state-dir=*) STATE_DIR=${1#*=}; shift ;;
        --forward-port) FORWARD_PORTS+=("$2"); shift 2 ;;
        --forward-port=*) FORWARD_PORTS+=("${1#*=}"); shift ;;
        --cpus) CPUS=$2; shift 2 ;;
        --cpus=*) CPUS=${1#*=}; shift ;;
        --gpus) GPUS=$2; shift 2 ;;
        --gpus=*) GPUS=${1#*=}; shift ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        -h|--help) CMD=help; shift ;;
        -*) die "unknown option $1" ;;
        *)
            if [ "$CMD" = forward ] || [ "$CMD" = unforward ]; then PORT_ARGS+=("$1")
            elif [ -z "$STATE_DIR" ]; then STATE_DIR=$1
            else die "unexpected argument $1"; fi
            shift ;;
    esac
done
STATE_DIR=${STATE_DIR:-${OPENBAI_SLURM_STATE:-$REPO_DIR/.services/slurm}}
mkdir -p "$STATE_DIR" 2>/dev/null || true
STATE_DIR=$(cd "$STATE_DIR" 2>/dev/null && pwd || echo "$STATE_DIR")
[[ "$GPUS" =~ ^[0-9]+$ ]] && [ "$GPUS" -le 16 ] || die "bad --gpus '$GPUS' (0 to 16)"
for p in "${FORWARD_PORTS[@]}" "${PORT_ARGS[@]}"; do
    [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || die "bad port '$p'"
done

# the instance and subnet a cluster was started with are kept in its state dir, so that later
# commands naming the state dir (forward, stop) find its namespaces without the variables
if [ -z "${OPENBAI_SLURM_INSTANCE+x}" ] && [ -s "$STATE_DIR/network" ]; then
    read -r OPENBAI_SLURM_INSTANCE OPENBAI_SLURM_SUBNET <"$STATE_DIR/network" || true
    [ "$OPENBAI_SLURM_INSTANCE" = - ] && OPENBAI_SLURM_INSTANCE=""   # the default instance
fi
INSTANCE=${OPENBAI_SLURM_INSTANCE:-}
[[ "$INSTANCE" =~ ^[a-z]{0,2}$ ]] || die "OPENBAI_SLURM_INSTANCE must be one or two lowercase letters"
SUBNET=${OPENBAI_SLURM_SUBNET:-10.77.0}          # /24; host = .1, nodeN = .1N
BRIDGE=obslurm${INSTANCE:-0}
NS_PREFIX=obslurm${INSTANCE}-                      # network namespaces obslurm-node1, obslurm-node2
VETH_PREFIX=obsl${INSTANCE}-                       # host-side veths obsl-node1, obsl-node2
OWNER_FILE=/run/openbai-slurm${INSTANCE:+-$INSTANCE}.owner   # which STATE_DIR owns the (machine-global) network setup
HOSTS_MARK="# openbai-slurm${INSTANCE:+-$INSTANCE}"

CONF=$STATE_DIR/etc/slurm.conf
RUN=$STATE_DIR/run
LOGD=$STATE_DIR/log
MUNGE_DIR=$STATE_DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
FWD_DIR=$STATE_DIR/fwd

ns_of()   { echo "${NS_PREFIX}$1"; }
veth_of() { echo "${VETH_PREFIX}$1"; }
ip_of()   { local i=${1#node}; echo "$SUBNET.1$i"; }

# ---------------------------------------------------------------- process helpers
# pid_alive PIDFILE [COMM]: the pid in PIDFILE is running (and its command name is COMM, if given)
pid_alive() {
    local f=$1 comm=${2:-} pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -d "/proc/$pid" ] || return 1
    if [ -n "$comm" ]; then
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
    fi
    # a zombie is not alive
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
}

# starting PIDFILE COMM: the process is COMM, or still one of the launchers start_bg runs it
# through (setsid, setpriv, env, nsenter, unshare, sh) a moment before they exec it
starting() {
    local f=$1 comm=$2 now
    pid_alive "$f" "$comm" && return 0
    pid_alive "$f" || return 1
    now=$(cat "/proc/$(cat "$f")/comm" 2>/dev/null) || return 1
    case "$now" in setsid|setpriv|env|nsenter|unshare|sh) return 0 ;; *) return 1 ;; esac
}

# kill_pids PID...: SIGTERM, wait up to 5 s, then SIGKILL what is left
kill_pids() {
    local pids=("$@") left i
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for i in $(seq 1 50); do
        left=()
        for p in "${pids[@]}"; do
            if [ -d "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; then left+=("$p"); fi
        done
        [ ${#left[@]} -eq 0 ] && return 0
        sleep 0.1
    done
    kill -KILL "${left[@]}" 2>/dev/null || true
}

# wait_reaped PID...: wait up to 5 s until the (dead) processes are reaped by their parent (init), so
# that no <defunct> entries are left in ps right after stop
wait_reaped() {
    local i p gone
    for i in $(seq 1 50); do
        gone=1
        for p in "$@"; do [ -d "/proc/$p" ] && gone=0 && break; done
        [ $gone = 1 ] && return 0
        sleep 0.1
    done
}

# expected command name for a pid file name
comm_for() {
    case "$(basename "$1")" in
        munged.pid) echo munged ;;
        slurmctld.pid) echo slurmctld ;;
        slurmd-*.pid) echo slurmd ;;
        fwd-*.pid) echo socat ;;
        *) echo "" ;;
    esac
}

# start_bg PIDFILE LOGFILE CMD...: run CMD detached (own session, no inherited stdio), record its pid
start_bg() {
    local pidfile=$1 logfile=$2; shift 2
    setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &   # 9>&-: do not inherit the lock
    echo $! >"$pidfile"
}

# ---------------------------------------------------------------- install
cmd_install() {
    local pkgs=(slurm-wlm slurmctld slurmd slurm-client munge libpmix-dev iproute2 socat util-linux procps)
    local missing=() p
    for p in "${pkgs[@]}"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then missing+=("$p"); fi
    done
    if [ ${#missing[@]} -eq 0 ]; then log "all packages already installed"; return 0; fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "installed"
}

# ---------------------------------------------------------------- config
write_config() {
    local first_job_id=1 ctl_host node ncpu=$CPUS cores n
    # keep job ids growing across restarts (even after an unclean end): the counter saved by stop,
    # or one past the highest job id in the previous controller log / job completion log
    [ -s "$STATE_DIR/next_job_id" ] && first_job_id=$(cat "$STATE_DIR/next_job_id")
    n=$(cat "$LOGD/slurmctld.log" "$LOGD/jobcomp.txt" 2>/dev/null | tail -c 2000000 \
        | grep -o 'JobId=[0-9]*' | cut -d= -f2 | sort -n | tail -1 || true)
    if [ -n "$n" ] && [ $((n + 1)) -gt "$first_job_id" ]; then first_job_id=$((n + 1)); fi
    ctl_host=$(hostname -s)
    cores=$ncpu
    mkdir -p "$STATE_DIR/etc"
    write_gres
    gres=""
    [ "$GPUS" -gt 0 ] && gres=" Gres=gpu:$GPUS"
    : >"$STATE_DIR/etc/plugstack.conf"
    {
        echo "# generated by scripts/services/slurm.sh -- do not edit, rewritten on every start"
        echo "ClusterName=openbai"
        echo "SlurmctldHost=$ctl_host($SUBNET.1)"
        echo "SlurmctldPort=$CTLD_PORT"
        echo "SlurmdPort=$SLURMD_PORT"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "AuthType=auth/munge"
        echo "CredType=cred/munge"
        echo "AuthInfo=socket=$MUNGE_SOCKET"
        echo "StateSaveLocation=$STATE_DIR/spool/ctld"
        echo "SlurmdSpoolDir=$STATE_DIR/spool/slurmd-%n"
        echo "SlurmctldPidFile=$RUN/slurmctld.pid"
        echo "SlurmdPidFile=$RUN/slurmd-%n.pid"
        echo "SlurmctldLogFile=$LOGD/slurmctld.log"
        echo "SlurmdLogFile=$LOGD/slurmd-%n.log"
        echo "SlurmctldDebug=info"
        echo "SlurmdDebug=info"
        echo "PlugStackConfig=$STATE_DIR/etc/plugstack.conf"
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "SwitchType=switch/none"
        echo "MpiDefault=none"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_Core"
        echo "SlurmdParameters=config_overrides"
        echo "SchedulerType=sched/backfill"
        echo "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=5,default_queue_depth=200"
        echo "AccountingStorageType=accounting_storage/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "JobCompType=jobcomp/filetxt"
        echo "JobCompLoc=$LOGD/jobcomp.txt"
        echo "FirstJobId=$first_job_id"
        echo "MaxJobCount=20000"
        echo "MinJobAge=30"
        echo "SlurmdTimeout=10"
        echo "SlurmctldTimeout=10"
        echo "MessageTimeout=10"
        echo "InactiveLimit=0"
        echo "KillWait=2"
        echo "ReturnToService=2"
        echo "HealthCheckInterval=0"
        echo "TmpFS=$STATE_DIR/spool/tmp-%n"   # per node: the PMIx plugin puts step dirs there
        echo "MailProg=/bin/true"
        [ "$GPUS" -gt 0 ] && echo "GresTypes=gpu"
        for node in "${NODES[@]}"; do
            echo "NodeName=$node NodeAddr=$(ip_of "$node") NodeHostname=$node CPUs=$ncpu Boards=1 SocketsPerBoard=1 CoresPerSocket=$cores ThreadsPerCore=1 RealMemory=1000${gres} State=UNKNOWN"
        done
        echo "PartitionName=debug Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
    } >"$CONF"
}

# GPUs without hardware: character devices with the NVIDIA driver's numbers (195, minor = index),
# shared by both nodes (one filesystem); Slurm only stats them, and with no device cgroup
# (TaskPlugin=task/none) nothing opens them. gres.conf sits next to slurm.conf, where Slurm reads it.
write_gres() {
    local i last
    rm -rf "$STATE_DIR/dev"
    : >"$STATE_DIR/etc/gres.conf"
    [ "$GPUS" -gt 0 ] || return 0
    mkdir -p "$STATE_DIR/dev"
    for i in $(seq 0 $((GPUS - 1))); do
        mknod "$STATE_DIR/dev/nvidia$i" c 195 "$i" || die "cannot make the GPU device $STATE_DIR/dev/nvidia$i"
    done
    last=$((GPUS - 1))
    echo "Name=gpu File=$STATE_DIR/dev/nvidia[0-$last]" >"$STATE_DIR/etc/gres.conf"
}

# ---------------------------------------------------------------- network
net_setup() {   # (called in a || context, where set -e is off: every step checks itself)
    local node ns veth
    ip link add "$BRIDGE" type bridge || return 1
    ip addr add "$SUBNET.1/24" dev "$BRIDGE" || return 1
    ip link set "$BRIDGE" up || return 1
    for node in "${NODES[@]}"; do
        ns=$(ns_of "$node"); veth=$(veth_of "$node")
        ip netns add "$ns" || return 1
        ip link add "$veth" type veth peer name "${veth}p" || return 1
        ip link set "${veth}p" netns "$ns" || return 1
        ip link set "$veth" master "$BRIDGE" || return 1
        ip link set "$veth" up || return 1
        nsenter --net="/run/netns/$ns" ip link set lo up || return 1
        nsenter --net="/run/netns/$ns" ip link set "${veth}p" name eth0 || return 1
        nsenter --net="/run/netns/$ns" ip addr add "$(ip_of "$node")/24" dev eth0 || return 1
        nsenter --net="/run/netns/$ns" ip link set eth0 up || return 1
        nsenter --net="/run/netns/$ns" ip route add default via "$SUBNET.1" || return 1
    done
}

# pids of all processes inside our node namespaces
ns_pids() {
    local node ns
    for node in "${NODES[@]}"; do
        ns=$(ns_of "$node")
        [ -e "/run/netns/$ns" ] && ip netns pids "$ns" 2>/dev/null || true
    done
}

net_teardown() {
    local node
    for node in "${NODES[@]}"; do
        ip netns del "$(ns_of "$node")" 2>/dev/null || true
        ip link del "$(veth_of "$node")" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}

# /etc/hosts entries so node names resolve (on the host and inside jobs). /etc/hosts may be a bind
# mount, so it is rewritten in place (cat >), never replaced (sed -i).
hosts_add() {
    local node tmp
    hosts_remove
    tmp=$(mktemp)
    cat /etc/hosts >"$tmp"
    for node in "${NODES[@]}"; do echo "$(ip_of "$node") $node $HOSTS_MARK" >>"$tmp"; done
    cat "$tmp" >/etc/hosts && rm -f "$tmp"
}
hosts_remove() {
    local tmp
    # anchored: "# openbai-slurm" must not match another instance's "# openbai-slurm-g"
    grep -q -- " $HOSTS_MARK\$" /etc/hosts 2>/dev/null || return 0
    tmp=$(mktemp)
    grep -v -- " $HOSTS_MARK\$" /etc/hosts >"$tmp" || true
    cat "$tmp" >/etc/hosts && rm -f "$tmp"
}

# ---------------------------------------------------------------- port forwarding
# Jobs run in the node's network namespace, whose 127.0.0.1 is not the host's. For each forwarded
# port P: on the host  socat UNIX-LISTEN:fwd/P.sock -> TCP:127.0.0.1:P, and in each node
# socat TCP-LISTEN:127.0.0.1:P -> UNIX-CONNECT:fwd/P.sock  (the filesystem is shared, so the Unix
# socket crosses the namespace boundary).
forward_start() {
    local port=$1 node ns sock=$FWD_DIR/$1.sock
    mkdir -p "$FWD_DIR"
    if ! pid_alive "$RUN/fwd-host-$port.pid" socat; then
        rm -f "$sock"
        start_bg "$RUN/fwd-host-$port.pid" "$LOGD/forward.log" \
            socat "UNIX-LISTEN:$sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$port"
    fi
    for node in "${NODES[@]}"; do
        ns=$(ns_of "$node")
        pid_alive "$RUN/fwd-$node-$port.pid" socat && continue
        start_bg "$RUN/fwd-$node-$port.pid" "$LOGD/forward.log" \
            nsenter --net="/run/netns/$ns" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$sock"
    done
    touch "$STATE_DIR/forward-ports"
    grep -qx "$port" "$STATE_DIR/forward-ports" || echo "$port" >>"$STATE_DIR/forward-ports"
    # wait until the listeners exist
    local i
    for i in $(seq 1 50); do
        [ -S "$sock" ] && break
        sleep 0.1
    done
    [ -S "$sock" ] || die "forwarder for port $port did not start; see $LOGD/forward.log"
    for node in "${NODES[@]}"; do
        for i in $(seq 1 50); do
            nsenter --net="/run/netns/$(ns_of "$node")" ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && break
            sleep 0.1
        done
    done
}

forward_stop() {
    local port=$1 f pids=()
    for f in "$RUN"/fwd-*-"$port".pid; do
        [ -e "$f" ] || continue
        pid_alive "$f" socat && pids+=("$(cat "$f")")
        rm -f "$f"
    done
    kill_pids "${pids[@]}"
    rm -f "$FWD_DIR/$port.sock"
    if [ -f "$STATE_DIR/forward-ports" ]; then
        grep -vx "$port" "$STATE_DIR/forward-ports" >"$STATE_DIR/forward-ports.tmp" || true
        mv "$STATE_DIR/forward-ports.tmp" "$STATE_DIR/forward-ports"
    fi
}

# ---------------------------------------------------------------- status helpers
client_env() { env SLURM_CONF="$CONF" "$@"; }

daemons_alive() {
    local node
    starting "$RUN/munged.pid" munged || return 1
    starting "$RUN/slurmctld.pid" slurmctld || return 1
    for node in "${NODES[@]}"; do starting "$RUN/slurmd-$node.pid" slurmd || return 1; done
}

any_alive() {
    local f
    for f in "$RUN"/*.pid; do
        [ -e "$f" ] || continue
        pid_alive "$f" "$(comm_for "$f")" && return 0
    done
    return 1
}

# node states, "node1 idle\nnode2 idle"
node_states() { client_env timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null | sort -u; }

all_idle() {
    local states node
    states=$(node_states) || return 1
    for node in "${NODES[@]}"; do
        echo "$states" | grep -qx "$node idle" || return 1
    done
}

show_logs() {
    local f
    for f in "$LOGD"/munged.log "$LOGD"/slurmctld.log "$LOGD"/slurmctld.out "$LOGD"/slurmd-*.log "$LOGD"/slurmd-*.out; do
        [ -s "$f" ] || continue
        echo "----- tail of $f" >&2
        tail -n 30 "$f" >&2
    done
    echo "----- sinfo" >&2
    client_env timeout 10 sinfo -N -l >&2 2>&1 || true
}

# ---------------------------------------------------------------- stop
do_stop() {
    local f pids=() owner
    # remember the job id counter so that job ids keep growing across restarts
    if pid_alive "$RUN/slurmctld.pid" slurmctld && [ -f "$CONF" ]; then
        client_env timeout 5 scontrol show config 2>/dev/null \
            | awk -F'= *' '/^NEXT_JOB_ID/ {print $2}' >"$STATE_DIR/next_job_id.tmp" || true
        if [ -s "$STATE_DIR/next_job_id.tmp" ]; then mv "$STATE_DIR/next_job_id.tmp" "$STATE_DIR/next_job_id"
        else rm -f "$STATE_DIR/next_job_id.tmp"; fi
    fi
    # our daemons and forwarders, by pid file
    for f in "$RUN"/*.pid; do
        [ -e "$f" ] || continue
        if pid_alive "$f" "$(comm_for "$f")"; then pids+=("$(cat "$f")"); fi
    done
    # everything inside our node namespaces (slurmd, slurmstepd, job processes, forwarders)
    owner=$(cat "$OWNER_FILE" 2>/dev/null || true)
    if [ -z "$owner" ] || [ "$owner" = "$STATE_DIR" ] || ! owner_active "$owner"; then
        while read -r p; do [ -n "$p" ] && pids+=("$p"); done < <(ns_pids)
    fi
    kill_pids "${pids[@]}"
    [ ${#pids[@]} -gt 0 ] && wait_reaped "${pids[@]}"
    rm -f "$RUN"/*.pid "$FWD_DIR"/*.sock "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock" 2>/dev/null || true
    if [ -z "$owner" ] || [ "$owner" = "$STATE_DIR" ] || ! owner_active "$owner"; then
        net_teardown
        hosts_remove
        rm -f "$OWNER_FILE"
    fi
}

# owner_active DIR: the cluster of another state dir is running
owner_active() { pid_alive "$1/run/slurmctld.pid" slurmctld; }

# ---------------------------------------------------------------- start
do_start() {
    local node ns i f owner munge_user=root
    owner=$(cat "$OWNER_FILE" 2>/dev/null || true)
    if [ -n "$owner" ] && [ "$owner" != "$STATE_DIR" ] && owner_active "$owner"; then
        die "another openbai Slurm cluster is running from $owner; stop it first: $0 stop $owner"
    fi
    command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ] || die "Slurm is not installed; run: $0 install"
    export PATH=$PATH:/usr/sbin:/sbin

    if daemons_alive && all_idle; then
        for p in "${FORWARD_PORTS[@]}"; do forward_start "$p"; done
        log "already running (state dir $STATE_DIR)"
        return 0
    fi
    # recover from anything left over (stale pids, namespaces, sockets)
    if any_alive || [ -e "/run/netns/$(ns_of "${NODES[0]}")" ] || ip link show "$BRIDGE" >/dev/null 2>&1; then
        log "cleaning up a previous (partial or unclean) run"
    fi
    do_stop

    mkdir -p "$STATE_DIR"/{etc,run,log,spool/ctld,fwd} "$MUNGE_DIR"
    rm -rf "${STATE_DIR:?}"/spool/ctld/* "${STATE_DIR:?}"/spool/slurmd-* "${STATE_DIR:?}"/spool/tmp-*   # fresh state
    for node in "${NODES[@]}"; do mkdir -p "$STATE_DIR/spool/slurmd-$node" "$STATE_DIR/spool/tmp-$node"; done
    echo "$STATE_DIR" >"$OWNER_FILE"
    echo "${INSTANCE:--} $SUBNET" >"$STATE_DIR/network"
    write_config
    # logs of the previous run go to log/previous/
    mkdir -p "$LOGD/previous"
    for f in "$LOGD"/*.log "$LOGD"/*.out "$LOGD"/jobcomp.txt; do [ -e "$f" ] && mv -f "$f" "$LOGD/previous/"; done

    # --- munge: own key, socket, pid and log under STATE_DIR
    id munge >/dev/null 2>&1 && munge_user=munge
    chmod 755 "$STATE_DIR"
    if [ ! -s "$MUNGE_DIR/munge.key" ]; then
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    fi
    # munged refuses a directory its user cannot reach, as under a private (0700) parent such
    # as mktemp's: then it runs as root, whose socket the daemons (root) reach all the same
    if [ "$munge_user" = munge ] && ! setpriv --reuid=munge --regid=munge --init-groups test -x "$MUNGE_DIR"; then
        munge_user=root
    fi
    chown -R "$munge_user:" "$MUNGE_DIR"
    chmod 755 "$MUNGE_DIR"; chmod 400 "$MUNGE_DIR/munge.key"
    touch "$LOGD/munged.log"; chown "$munge_user:" "$LOGD/munged.log"; chmod 640 "$LOGD/munged.log"
    # --force: munged refuses a socket directory whose every parent is not executable by all
    # (group too); a clone's parent may be 0701 (another service made it o+x), which its user
    # can pass but munged's check rejects
    local munge_cmd=(munged -F --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key"
                     --pid-file="$MUNGE_DIR/munged.pid" --log-file="$LOGD/munged.log"
                     --seed-file="$MUNGE_DIR/munged.seed" --num-threads=4 --force)
    if [ "$munge_user" = munge ]; then
        start_bg "$RUN/munged.pid" "$LOGD/munged.out" setpriv --reuid=munge --regid=munge --init-groups "${munge_cmd[@]}"
    else
        start_bg "$RUN/munged.pid" "$LOGD/munged.out" "${munge_cmd[@]}"
    fi
    for i in $(seq 1 100); do
        [ -S "$MUNGE_SOCKET" ] && munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1 && break
        starting "$RUN/munged.pid" munged || { show_logs; do_stop; die "munged did not start"; }
        sleep 0.1
    done
    [ -S "$MUNGE_SOCKET" ] || { show_logs; do_stop; die "munged socket $MUNGE_SOCKET did not appear"; }

    # --- network namespaces + bridge
    net_setup || { do_stop; die "network namespace setup failed"; }
    hosts_add

    # --- slurmctld on the host (listens on all addresses; nodes reach it at $SUBNET.1)
    start_bg "$RUN/slurmctld.pid" "$LOGD/slurmctld.out" env SLURM_CONF="$CONF" slurmctld -D -f "$CONF"
    for i in $(seq 1 100); do
        client_env timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' && break
        starting "$RUN/slurmctld.pid" slurmctld || { show_logs; do_stop; die "slurmctld exited"; }
        sleep 0.2
    done

    # --- one slurmd per node, each in its own network + UTS namespace
    for node in "${NODES[@]}"; do
        ns=$(ns_of "$node")
        start_bg "$RUN/slurmd-$node.pid" "$LOGD/slurmd-$node.out" \
            nsenter --net="/run/netns/$ns" unshare --uts \
            sh -c 'hostname "$1" && exec env SLURM_CONF="$2" slurmd -D -N "$1" -f "$2"' sh "$node" "$CONF"
    done

    # --- forwarders for host loopback services
    local ports=("${FORWARD_PORTS[@]}")
    if [ -f "$STATE_DIR/forward-ports" ]; then
        while read -r p; do [ -n "$p" ] && ports+=("$p"); done <"$STATE_DIR/forward-ports"
    fi
    : >"$STATE_DIR/forward-ports"
    for p in $(printf '%s\n' "${ports[@]}" | sort -un); do forward_start "$p"; done

    # --- wait for both nodes to be idle
    local deadline=$((SECONDS + TIMEOUT))
    until all_idle; do
        if [ $SECONDS -ge $deadline ] || ! daemons_alive; then
            show_logs
            do_stop
            die "the cluster did not become ready within ${TIMEOUT}s (logs above, full logs in $LOGD)"
        fi
        sleep 0.3
    done
    write_env_file
    log "running: nodes ${NODES[*]} idle in partition debug (state dir $STATE_DIR)"
    log "client env: $(print_env | tr '\n' ' ')"
}

print_env() {
    echo "SLURM_CONF=$CONF"
    echo "OPENBAI_SLURM_STATE=$STATE_DIR"
}
write_env_file() { print_env >"$STATE_DIR/env"; }

# ---------------------------------------------------------------- status
cmd_status() {
    local f name alive=0 total=0
    for f in "$RUN"/munged.pid "$RUN"/slurmctld.pid "$RUN"/slurmd-*.pid "$RUN"/fwd-*.pid; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid); total=$((total + 1))
        if pid_alive "$f" "$(comm_for "$f")"; then echo "$name: running (pid $(cat "$f"))"; alive=$((alive + 1))
        else echo "$name: dead"; fi
    done
    if [ $total -eq 0 ] || [ $alive -eq 0 ]; then echo "stopped (state dir $STATE_DIR)"; return 3; fi
    if daemons_alive; then
        client_env timeout 10 sinfo -N || true
        echo "running (state dir $STATE_DIR); client env: $(print_env | tr '\n' ' ')"
        return 0
    fi
    echo "partly running (state dir $STATE_DIR); run: $0 stop $STATE_DIR"
    return 1
}

# ---------------------------------------------------------------- main
lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w 120 9 || die "could not lock $STATE_DIR/.lock"
}

case "$CMD" in
    install) cmd_install ;;
    start) [ "$(id -u)" = 0 ] || die "must run as root"; lock; do_start ;;
    stop) [ "$(id -u)" = 0 ] || die "must run as root"; lock; export PATH=$PATH:/usr/sbin:/sbin; do_stop; log "stopped (state dir $STATE_DIR)" ;;
    status) cmd_status ;;
    env) print_env ;;
    forward|unforward)
        [ ${#PORT_ARGS[@]} -gt 0 ] || die "usage: $0 $CMD PORT... [--state-dir DIR]"
        for p in "${PORT_ARGS[@]}"; do
            [[ "$p" =~ ^[0-9]+$ ]] || die "bad port '$p'"
        done
        lock
        if [ "$CMD" = forward ]; then
            daemons_alive || die "the cluster in $STATE_DIR is not running"
            for p in "${PORT_ARGS[@]}"; do forward_start "$p"; done
            log "forwarding 127.0.0.1:{${PORT_ARGS[*]}} on ${NODES[*]} to the host"
        else
            for p in "${PORT_ARGS[@]}"; do forward_stop "$p"; done
        fi ;;
    help|"") sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$CMD' (install|start|stop|status|env|forward|unforward)" ;;
esac
