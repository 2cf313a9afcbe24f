#!/bin/sh
# The Python bank behind `coord gateway`, as one conformance participant
# (PROTOCOL.md §11): coord conformance --participant-cmd examples/python-bank/conformance.sh
# The gateway reads CONCORD_PARTICIPANT, CONCORD_PREFIX and CONCORD_LEASE_TTL
# from the environment the suite gives; $COORD is the coord binary (default:
# coord on the PATH).
set -e
here=$(dirname "$0")
state=${CONCORD_STATE_DIR:-.}
export CONCORD_GATEWAY_SECRET=${CONCORD_GATEWAY_SECRET:-conformance-secret}
portfile="$state/port.$$"
python3 "$here/bank.py" --port 0 --port-file "$portfile" --db "$state/bank.sqlite" &
for _ in $(seq 1 200); do
	[ -s "$portfile" ] && break
	sleep 0.05
done
port=$(cat "$portfile")
exec "${COORD:-coord}" gateway --etcd "$CONCORD_ETCD_ENDPOINTS" --url "http://127.0.0.1:$port" \
	--health-interval 200ms --health-failures 3 --log-level debug
