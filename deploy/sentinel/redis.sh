#!/bin/sh
# Starts one Redis of the `sentinel` profile (docker-compose.yml): the master, or a replica
# when REPLICA_OF is set. Its config is written on the first start only, into its volume:
# Sentinel rewrites it (CONFIG REWRITE) when it makes this Redis a master or a replica, so
# after a failover a restart keeps the role Sentinel gave it.
#   ANNOUNCE_HOSTNAME  the name the others reach this Redis by (its service name)
#   REPLICA_OF         "host port" of the master to replicate at first, or empty
#   REDIS_PORT, REDIS_DIR  6379 and /data unless told
set -eu
port=${REDIS_PORT:-6379}
dir=${REDIS_DIR:-/data}
conf=$dir/redis.conf
if [ ! -s "$conf" ]; then
    {
        echo "port $port"
        echo "dir $dir"
        echo "protected-mode no"
        echo "appendonly yes"
        echo "appendfsync everysec"
        echo "maxmemory-policy noeviction"
        # Delivery records kept compact (README, "Sizing Redis").
        echo "hash-max-listpack-value 2048"
        # A master cut off from its replicas refuses writes: after a SENTINEL FAILOVER the
        # old master takes none that its demotion would wipe (the ingress answers 503).
        echo "min-replicas-to-write 1"
        echo "min-replicas-max-lag 10"
        # Replicas are known to Sentinel by this name rather than by a container IP, which
        # changes when the container is made anew (with Sentinel's resolve-hostnames).
        echo "replica-announce-ip ${ANNOUNCE_HOSTNAME:?set ANNOUNCE_HOSTNAME}"
        if [ -n "${REPLICA_OF:-}" ]; then
            echo "replicaof $REPLICA_OF"
        fi
    } >"$conf.new"
    mv "$conf.new" "$conf"
fi
# The image's entrypoint gives /data to the redis user and runs the server as that user.
exec docker-entrypoint.sh redis-server "$conf"
