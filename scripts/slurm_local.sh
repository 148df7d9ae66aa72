#!/usr/bin/env bash
# A real single-node SLURM on this machine, for testing the SLURM profile (tests/test_slurm.py) and for trying
# `snakemake --profile profiles/slurm` without a cluster.
#
#   scripts/slurm_local.sh up   DIR   # install Debian's slurm + munge if missing, start munged, slurmctld, slurmd
#   scripts/slurm_local.sh down DIR   # stop exactly the daemons `up DIR` started (by their pid files in DIR)
#   scripts/slurm_local.sh env  DIR   # print the `export SLURM_CONF=...` line clients need
#
# Everything lives under DIR: slurm.conf, state, spool, logs, pid files, and a private munge key + socket; ports are
# picked free at `up`. The one thing outside DIR is the symlink /etc/slurm/slurm.conf -> DIR/slurm.conf (job steps
# need the default path, see link_system_conf), so one such cluster runs per host at a time. One node (this host, on
# 127.0.0.1, CPUs/memory from `slurmd -C`), proctrack/linuxproc, task/none, no accounting (so `sacct` does not work:
# use the plugin's `slurm-status-command: squeue`, which MinJobAge=3600 keeps reliable).
# Needs root (daemons run as root, munged as user munge). No systemd involved.
set -euo pipefail

usage() {
    echo "usage: $0 up|down|env DIR" >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
action=$1
dir=$2

die() {
    echo "slurm_local: $*" >&2
    exit 1
}

install_packages() {
    local missing=0
    for bin in slurmctld slurmd sbatch munged; do
        command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$bin" >/dev/null 2>&1 || missing=1
    done
    [[ $missing -eq 0 ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "slurmctld/slurmd/munged not installed and no apt-get to install them"
    echo "slurm_local: installing slurmctld slurmd slurm-client munge (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# True if the pid in pid file $1 is alive and runs program $2 (guards against a recycled pid).
pid_is() {
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm ]] || return 1
    [[ $(</proc/"$pid"/comm) == "$name" ]]
}

stop_daemon() {
    local pidfile=$1 name=$2 pid i
    if ! pid_is "$pidfile" "$name"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(<"$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        [[ -d /proc/$pid ]] || break
        sleep 0.2
    done
    if [[ -d /proc/$pid ]]; then
        echo "slurm_local: $name ($pid) ignored SIGTERM for 10 s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# Job steps cannot use SLURM_CONF: the Snakemake jobstep plugin strips SLURM_* variables before calling `srun`, so
# srun inside a job finds its configuration only at the default path. Point /etc/slurm/slurm.conf at ours (a symlink;
# never over a real file or over the link of another running slurm_local cluster).
SYSTEM_CONF=/etc/slurm/slurm.conf

link_system_conf() {
    local target
    if [[ -L $SYSTEM_CONF ]]; then
        target=$(readlink "$SYSTEM_CONF")
        if [[ $target != "$dir/slurm.conf" ]] && pid_is "$(dirname "$target")/run/slurmctld.pid" slurmctld; then
            die "another local cluster ($(dirname "$target")) is running and owns $SYSTEM_CONF; stop it first"
        fi
        rm -f "$SYSTEM_CONF" # stale link of a cluster that is gone
    elif [[ -e $SYSTEM_CONF ]]; then
        die "$SYSTEM_CONF exists and was not written by $0; refusing to replace a real SLURM configuration"
    fi
    mkdir -p "$(dirname "$SYSTEM_CONF")"
    ln -s "$dir/slurm.conf" "$SYSTEM_CONF"
}

up() {
    [[ $(id -u) -eq 0 ]] || die "needs root (slurmd runs jobs as their submitting user, munged as user munge)"
    install_packages
    export PATH="$PATH:/usr/sbin"
    id munge >/dev/null 2>&1 || die "user munge missing (is the munge package installed?)"
    if pid_is "$dir/run/slurmctld.pid" slurmctld; then
        die "a cluster is already running from $dir (run: $0 down $dir)"
    fi

    mkdir -p "$dir"/{state,spool,log,run,munge}
    dir=$(cd "$dir" && pwd -P)
    # munged (user munge) must traverse every parent of its socket and key; they must not be group/world writable.
    chmod 755 "$dir"
    runuser -u munge -- test -x "$dir" ||
        die "user munge cannot reach $dir (a parent directory is not world-executable); pick a directory such as /tmp/slurm-xyz"
    chown munge:munge "$dir/munge"
    chmod 755 "$dir/munge"  # munged wants execute-for-all on the socket directory
    if [[ ! -s $dir/munge/munge.key ]]; then
        head -c 1024 /dev/urandom >"$dir/munge/munge.key"
        chown munge:munge "$dir/munge/munge.key"
        chmod 400 "$dir/munge/munge.key"
    fi

    local node ctld_port slurmd_port
    # `slurmd -C` prints this host's line: NodeName=<host> CPUs=.. Boards=.. ... RealMemory=..
    node=$(slurmd -C | head -n 1)
    [[ $node == NodeName=* ]] || die "slurmd -C printed no NodeName line"
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    while [[ $slurmd_port == "$ctld_port" ]]; do slurmd_port=$(free_port); done

    cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm_local.sh for a throwaway single-node cluster; see that script.
ClusterName=biasdiff-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue for an hour: tests read every job's final state after the run, and the
# Snakemake plugin's squeue status check needs MinJobAge >= 3 x slurm-init-seconds-before-status-checks.
MinJobAge=3600
SchedulerParameters=sched_interval=2
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

    # munged as user munge, with a private key, socket, pid file, log and seed under $dir/munge.
    runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed" ||
        die "munged failed to start; see $dir/munge/munged.log"
    cp "$dir/munge/munged.pid" "$dir/run/munged.pid"

    link_system_conf
    export SLURM_CONF=$dir/slurm.conf
    slurmctld -f "$SLURM_CONF" || die "slurmctld failed to start; see $dir/log/slurmctld.log"
    slurmd -f "$SLURM_CONF" || die "slurmd failed to start; see $dir/log/slurmd.log"

    local i state=""
    for i in $(seq 150); do
        state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n 1 || true)
        [[ $state == idle* ]] && break
        sleep 0.2
    done
    [[ $state == idle* ]] || die "node not idle after 30 s (state '${state:-none}'); see $dir/log/"
    echo "slurm_local: up ($node) in $dir" >&2
    echo "export SLURM_CONF=$SLURM_CONF"
}

down() {
    [[ -d $dir ]] || die "no such directory: $dir"
    dir=$(cd "$dir" && pwd -P)
    if [[ -f $dir/slurm.conf ]] && pid_is "$dir/run/slurmctld.pid" slurmctld; then
        # Cancel what is left so no job step outlives its slurmd.
        SLURM_CONF=$dir/slurm.conf timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
    fi
    stop_daemon "$dir/run/slurmd.pid" slurmd
    stop_daemon "$dir/run/slurmctld.pid" slurmctld
    stop_daemon "$dir/run/munged.pid" munged
    if [[ -L $SYSTEM_CONF && $(readlink "$SYSTEM_CONF") == "$dir/slurm.conf" ]]; then
        rm -f "$SYSTEM_CONF"
    fi
    rm -f "$dir/munge/munged.pid"
    echo "slurm_local: down ($dir)" >&2
}

case $action in
up) up ;;
down) down ;;
env) echo "export SLURM_CONF=$(cd "$dir" && pwd -P)/slurm.conf" ;;
*) usage ;;
esac
