#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server on loopback for the tests marked `postgres`.
#   tools/postgres-test-server.sh start DIR   -> prints the SQLAlchemy URL on stdout
#   tools/postgres-test-server.sh stop DIR
# As root the server runs as the `postgres` system user (initdb refuses root).
set -euo pipefail
cmd=${1:?usage: postgres-test-server.sh start|stop DIR}
dir=${2:?usage: postgres-test-server.sh start|stop DIR}
# SUTURE_PG_FSYNC: off (the default: the tests need no durability across a crash of the
# machine) or on (a durable server, each commit flushed: for benchmark figures of one).
fsync=${SUTURE_PG_FSYNC:-off}
case "$fsync" in on|off) ;; *) echo "SUTURE_PG_FSYNC is on or off, not '$fsync'" >&2; exit 2 ;; esac
# SUTURE_PG_PORT, or a free loopback port (another server already listening is no obstacle).
port=${SUTURE_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1)")
[ -x "$bindir/postgres" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir/data" -A trust -U suture --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=$fsync -c max_connections=200" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql+psycopg://suture@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: postgres-test-server.sh start|stop DIR" >&2; exit 2 ;;
esac
