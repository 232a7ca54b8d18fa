#!/usr/bin/env bash
# Data-parallel training between two hosts over TCP, on one machine: two network namespaces joined
# by a veth pair stand for two machines, and mpirun starts one process in each through
# `ip netns exec` where it would use ssh between real machines (docs/SCALING.md). Trains RECIPE for
# STEPS steps on the two "hosts", then in one process with train.accumulation 2, and checks the two
# checkpoints are bitwise equal; then times steps across the hosts (tessera bench). Needs root.
#
# usage: bench/two_hosts.sh [RECIPE] [STEPS]      (default recipes/vit_fmnist.yaml 30)
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:-recipes/vit_fmnist.yaml}
steps=${2:-30}
out=${OUT:-runs/two_hosts}
host_a=tessera-a host_b=tessera-b net=10.77.0

cleanup() {
  ip netns del "$host_a" 2> /dev/null || true
  ip netns del "$host_b" 2> /dev/null || true
  rm -f "${agent:-}"
}
trap cleanup EXIT
cleanup
ip netns add "$host_a"
ip netns add "$host_b"
ip link add veth-a type veth peer name veth-b
ip link set veth-a netns "$host_a"
ip link set veth-b netns "$host_b"
ip -n "$host_a" addr add "$net.1/24" dev veth-a
ip -n "$host_b" addr add "$net.2/24" dev veth-b
for ns in "$host_a" "$host_b"; do ip -n "$ns" link set lo up; done
ip -n "$host_a" link set veth-a up
ip -n "$host_b" link set veth-b up

# Open MPI's launch agent, called as "AGENT HOST COMMAND...", in place of ssh.
agent=$(mktemp)
printf '#!/bin/sh\nhost="$1"; shift\nexec ip netns exec "$host" /bin/sh -c "$*"\n' > "$agent"
chmod +x "$agent"
# Both the launcher's and the processes' traffic over the veth only: TCP between the hosts, no
# shared memory. The two "hosts" are one machine underneath, so each would bind its process to
# its first core, the same core: --bind-to none.
mpirun=(ip netns exec "$host_a" mpirun --allow-run-as-root --host "$host_a,$host_b" -np 2
        --bind-to none --mca plm_rsh_agent "$agent" --mca plm_rsh_no_tree_spawn 1
        --mca oob_tcp_if_include "$net.0/24" --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24")
budget=(--set train.epochs=0 --set train.steps="$steps" --set schedule.warmup_steps=$((steps / 5))
        --set eval.every=0 --set eval.max_batches=10 --threads 1)

echo "== two hosts ($host_a $net.1, $host_b $net.2), one process each"
"${mpirun[@]}" build/tessera train "$recipe" --run-dir "$out/two_hosts" --overwrite "${budget[@]}" 2>&1 \
  | grep -v "setpgid" | tail -n 4
echo "== one process, the batch cut in two (train.accumulation 2)"
build/tessera train "$recipe" --run-dir "$out/one_process" --overwrite "${budget[@]}" --set train.accumulation=2 \
  | tail -n 2
echo "== the same result?"
/usr/bin/python3 bench/compare_checkpoints.py "$out/two_hosts/last.h5" "$out/one_process/last.h5"
echo "== speed across the two hosts"
"${mpirun[@]}" build/tessera bench "$recipe" --threads 1 --steps 20 --warmup 3 2>&1 | grep -v "setpgid"
