#!/bin/sh
# One-shot join of the `cluster` profile's Redis nodes (docker-compose.yml's
# redis-cluster-init): 3 masters and a replica each, once every node answers.
# Idempotent: a cluster that already serves every slot is left as it is, and one already
# created but still settling is only waited for; only six empty nodes are joined.
#   CLUSTER_NODES  the nodes, host:port separated by spaces
set -eu
nodes=${CLUSTER_NODES:?set CLUSTER_NODES to "host:port host:port ..."}
first=${nodes%% *}

ask() { # ask host:port COMMAND... -> the answer, or nothing when the node does not answer
    target=$1
    shift
    redis-cli -h "${target%:*}" -p "${target##*:}" "$@" 2>/dev/null | tr -d '\r' || true
}
field() { # field host:port NAME -> NAME's value in the node's CLUSTER INFO
    ask "$1" cluster info | sed -n "s/^$2://p"
}

for node in $nodes; do
    until [ "$(ask "$node" ping)" = PONG ]; do
        echo "waiting for $node"
        sleep 1
    done
done

if [ "$(field "$first" cluster_state)" = ok ]; then
    echo "the cluster already serves every slot: nothing to do"
    exit 0
fi
assigned=0
for node in $nodes; do
    slots=$(field "$node" cluster_slots_assigned)
    assigned=$((assigned + ${slots:-0}))
done
if [ "$assigned" = 0 ]; then
    # shellcheck disable=SC2086 # one argument per node
    redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes
else
    echo "the cluster exists: waiting for it to serve every slot"
fi
tries=0
until [ "$(field "$first" cluster_state)" = ok ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
        echo "the cluster does not serve every slot after 60 s: see 'redis-cli --cluster check $first'" >&2
        exit 1
    fi
    sleep 1
done
echo "the cluster serves every slot"
