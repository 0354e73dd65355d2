# Throwaway Postgres for tests and benchmarks, started from the installed
# binaries. Source this file, then call `pg_start` (exports DATABASE_URL,
# BATON_PGDATA, BATON_PGPORT) and `pg_stop`.
#
# initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` user and every server command runs through runuser.

pg_bin() {
  local dir
  for dir in "${PG_BINDIR:-}" /usr/lib/postgresql/*/bin; do
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)" && return
  echo "pg.sh: no Postgres binaries found (set PG_BINDIR)" >&2
  return 1
}

pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# pg_start [extra postgres -c settings...]
pg_start() {
  local bin; bin=$(pg_bin) || return 1
  BATON_PGROOT=$(mktemp -d /tmp/baton-pg.XXXXXX)
  BATON_PGDATA=$BATON_PGROOT/data
  BATON_PGPORT=$(pg_free_port)
  [ "$(id -u)" = 0 ] && chown postgres: "$BATON_PGROOT"
  pg_as_owner "$bin/initdb" -D "$BATON_PGDATA" -U postgres -A trust \
    --no-sync >"$BATON_PGROOT/initdb.log" 2>&1 || {
    cat "$BATON_PGROOT/initdb.log" >&2; return 1; }
  local opts="-c listen_addresses=127.0.0.1 -c port=$BATON_PGPORT"
  opts+=" -c unix_socket_directories=$BATON_PGROOT -c max_connections=400"
  local setting
  for setting in "$@"; do opts+=" -c $setting"; done
  pg_as_owner "$bin/pg_ctl" -D "$BATON_PGDATA" -l "$BATON_PGROOT/server.log" \
    -o "$opts" -w -t 60 start >/dev/null || {
    cat "$BATON_PGROOT/server.log" >&2; return 1; }
  export BATON_PGROOT BATON_PGDATA BATON_PGPORT
  export BATON_PG_CTL="$bin/pg_ctl"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$BATON_PGPORT/postgres"
}

pg_stop() {
  [ -n "${BATON_PGDATA:-}" ] || return 0
  pg_as_owner "$BATON_PG_CTL" -D "$BATON_PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$BATON_PGROOT"
  unset BATON_PGDATA
}
