#!/usr/bin/env bash
# Start a real one-node Slurm cluster on this machine (Debian's slurm-wlm and munge), for the
# Slurm tests and for trying `nnr-profile run --launcher slurm --partition debug` locally.
# Idempotent: a cluster that answers is left alone; a slurm.conf this script did not write is
# never replaced. Needs root and apt-get to install; elsewhere it says why and exits 0 (the
# Slurm tests then skip).
set -uo pipefail
marker="# written by nnr-profile scripts/start-slurm.sh"
conf=/etc/slurm/slurm.conf

say() { echo "start-slurm: $*" >&2; }

answers() { timeout 20 srun --quiet --time=1 hostname >/dev/null 2>&1; }

if command -v srun >/dev/null 2>&1 && timeout 5 scontrol ping 2>/dev/null | grep -q UP \
    && answers; then
    say "Slurm already answers ($(scontrol ping | head -1))"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    say "not root: cannot install or start Slurm here (the Slurm tests will skip)"
    exit 0
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "slurm-wlm and munge are missing and apt-get is not here: install them to test Slurm"
        exit 0
    fi
    say "installing slurm-wlm and munge"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq slurm-wlm munge >/dev/null; }; then
        say "could not install slurm-wlm and munge (the Slurm tests will skip)"
        exit 0
    fi
fi

host=$(hostname -s)
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
    say "$conf was not written by this script: using it as it is"
else
    # `slurmd -C` prints this machine's CPUs, sockets, cores and RealMemory as a NodeName line.
    node=$(slurmd -C 2>/dev/null | grep '^NodeName=' | sed "s/^NodeName=[^ ]*/NodeName=$host/")
    [ -n "$node" ] || node="NodeName=$host CPUs=$(nproc)"
    # GPUs as a generic resource: the NVIDIA device files, or on a machine without any one
    # stand-in GPU (File=/dev/null), so GPU sweeps can be submitted here; their tasks find no
    # GPU and store that as a clear failure.
    count=$(find /dev -maxdepth 1 -name 'nvidia[0-9]*' 2>/dev/null | wc -l)
    if [ "$count" -gt 0 ]; then
        gpu_files="/dev/nvidia[0-$((count - 1))]"
    else
        count=1
        gpu_files=/dev/null
    fi
    mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
    chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm
    printf '%s\nNodeName=%s Name=gpu File=%s\n' "$marker" "$host" "$gpu_files" \
        > /etc/slurm/gres.conf
    cat > "$conf.new" <<EOF
$marker
ClusterName=nnr
GresTypes=gpu
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=slurm
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node Gres=gpu:$count State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if cmp -s "$conf.new" "$conf"; then
        rm "$conf.new"
    else
        mv "$conf.new" "$conf"
        pgrep -x slurmctld >/dev/null && scontrol reconfigure >/dev/null 2>&1
    fi
fi

if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged || { say "munged did not start"; exit 0; }
fi
if ! pgrep -x slurmctld >/dev/null; then
    /usr/sbin/slurmctld || { say "slurmctld did not start (see /var/log/slurm)"; exit 0; }
fi
if ! pgrep -x slurmd >/dev/null; then
    /usr/sbin/slurmd || { say "slurmd did not start (see /var/log/slurm)"; exit 0; }
fi

for _ in $(seq 60); do
    if timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
        scontrol update nodename="$host" state=resume >/dev/null 2>&1
        if answers; then
            say "Slurm answers: partition debug on $host ($(sinfo -h -o '%c CPUs, %m MB'))"
            exit 0
        fi
    fi
    sleep 1
done
say "Slurm did not answer within a minute (see /var/log/slurm); the Slurm tests will skip"
exit 0
