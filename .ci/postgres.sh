#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on 127.0.0.1 for the storage tests, installing it from Debian's packages
# when it is missing. Idempotent and non-interactive: a second run finds the server up and only prints the URL.
#
#   eval "$(bash .ci/postgres.sh)"      # start (install if needed); stdout is one `export` line
#   bash .ci/postgres.sh stop            # stop the server this script started
#
# stdout carries only `export DATABASE_URL_TEST=postgres://...`; progress goes to stderr. The URL is also written to
# "$CWH_PG_ENV_FILE" when that variable is set. The test role may create databases: each test file makes its own.
#
# Environment (all optional): CWH_PG_PORT (default 55432), CWH_PG_DATA (default /var/lib/postgresql/cwh-test as
# root, else ${TMPDIR:-/tmp}/cwh-postgres-$UID), CWH_PG_ENV_FILE.
set -euo pipefail

port="${CWH_PG_PORT:-55432}"
if [ "$(id -u)" -eq 0 ]; then
  data="${CWH_PG_DATA:-/var/lib/postgresql/cwh-test}"
else
  data="${CWH_PG_DATA:-${TMPDIR:-/tmp}/cwh-postgres-$(id -u)}"
fi
role=cwh_test
password=cwh_test
database=cwh_test
url="postgres://${role}:${password}@127.0.0.1:${port}/${database}"

say() { printf 'ci-postgres: %s\n' "$*" >&2; }

find_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then printf '%s' "$dir"; fi
}

# Runs a server-side binary as the server's owner: `postgres` when we are root (initdb refuses root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bindir="$(find_bindir)"

if [ "${1:-start}" = "stop" ]; then
  if [ -n "$bindir" ] && [ -f "$data/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
  else
    say "no server running in $data"
  fi
  exit 0
fi

if [ -z "$bindir" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "PostgreSQL is not installed and installing it needs root: apt-get install -y postgresql"
    exit 1
  fi
  say "installing postgresql from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
  bindir="$(find_bindir)"
  if [ -z "$bindir" ]; then
    say "postgresql was installed but no /usr/lib/postgresql/*/bin/initdb was found"
    exit 1
  fi
fi

if [ ! -f "$data/PG_VERSION" ]; then
  say "creating a cluster in $data"
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$data"; fi
  chmod 700 "$data"
  as_owner "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C --no-sync >"$data.initdb.log" 2>&1 || {
    cat "$data.initdb.log" >&2
    exit 1
  }
fi

if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  say "starting the server on 127.0.0.1:$port"
  # fsync off: a throwaway test server, durability across power loss does not matter here.
  as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data -c fsync=off" start >/dev/null || {
    tail -n 30 "$data/server.log" >&2
    exit 1
  }
fi

psql_admin() {
  as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$data" -p "$port" -U postgres -d postgres "$@"
}
psql_admin -c "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN
    CREATE ROLE ${role} LOGIN CREATEDB PASSWORD '${password}';
  END IF;
END \$\$;" >&2
if [ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '${database}'")" != "1" ]; then
  psql_admin -c "CREATE DATABASE ${database} OWNER ${role}" >&2
fi

if [ -n "${CWH_PG_ENV_FILE:-}" ]; then
  printf 'export DATABASE_URL_TEST=%s\n' "$url" >"$CWH_PG_ENV_FILE"
fi
say "ready: $url"
printf 'export DATABASE_URL_TEST=%s\n' "$url"
