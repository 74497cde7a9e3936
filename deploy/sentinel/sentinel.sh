#!/bin/sh
# Starts one Sentinel of the `sentinel` profile (docker-compose.yml). Its config is written
# on the first start only, into its volume: Sentinel rewrites that file as it learns the
# other Sentinels and replicas and after each failover, so it must be writable and kept.
#   SENTINEL_MASTER    the master's name; the same as Switchboard's SWITCHBOARD_SENTINEL_MASTER
#   MASTER_HOST        the master to monitor at first (MASTER_PORT: 6379)
#   QUORUM             Sentinels that must agree the master is down (2)
#   ANNOUNCE_HOSTNAME  the name the others and clients reach this Sentinel by
#   SENTINEL_PORT, SENTINEL_DIR  26379 and /data unless told
set -eu
port=${SENTINEL_PORT:-26379}
dir=${SENTINEL_DIR:-/data}
conf=$dir/sentinel.conf
name=${SENTINEL_MASTER:?set SENTINEL_MASTER}
if [ ! -s "$conf" ]; then
    {
        echo "port $port"
        echo "dir $dir"
        echo "protected-mode no"
        # Hostnames, not container IPs: the service names stay right when a container is
        # made anew, and clients are told names that they resolve on the network.
        echo "sentinel resolve-hostnames yes"
        echo "sentinel announce-hostnames yes"
        echo "sentinel announce-ip ${ANNOUNCE_HOSTNAME:?set ANNOUNCE_HOSTNAME}"
        echo "sentinel monitor $name ${MASTER_HOST:?set MASTER_HOST} ${MASTER_PORT:-6379} ${QUORUM:-2}"
        echo "sentinel down-after-milliseconds $name 5000"
        echo "sentinel failover-timeout $name 60000"
        echo "sentinel parallel-syncs $name 1"
    } >"$conf.new"
    mv "$conf.new" "$conf"
fi
# The image's entrypoint gives /data to the redis user and runs the server as that user.
exec docker-entrypoint.sh redis-server "$conf" --sentinel
