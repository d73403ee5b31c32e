#!/bin/sh
# Run PostgreSQL for the ivr nodes (docker-compose.yml, cluster profile).
# First start: initdb into $PGDATA (a volume). Every start: the role "ivr" gets the password
# in $IVR_STORE_PASSWORD_FILE (the compose secret the nodes read too, so changing that file
# and restarting both sides changes it) and owns the database "ivr". Clients log in over TCP
# with scram-sha-256 from the server's own networks only (pg_hba "samenet"); nothing trusts.
# initdb refuses root: started as root, the server runs as $PG_OS_USER (postgres); started as
# anyone else, as that user. PG_BIN, IVR_PG_SOCKET_DIR, PGPORT and IVR_PG_LISTEN let
# tests/integration/test_cluster_images.py run this outside a container.
set -eu
umask 077
data="${PGDATA:-/var/lib/postgresql/data/pgdata}"
secret="${IVR_STORE_PASSWORD_FILE:-/run/secrets/postgres-password}"
os_user="${PG_OS_USER:-postgres}"
bin="${PG_BIN:-/usr/lib/postgresql/bin}"
sockets="${IVR_PG_SOCKET_DIR:-/run/postgresql}"
port="${PGPORT:-5432}"
listen="${IVR_PG_LISTEN:-*}"

fail() { echo "postgres-entrypoint: $*" >&2; exit 1; }

[ -f "$secret" ] && [ -r "$secret" ] || fail "no password file $secret: create it first," \
    "e.g. (umask 077; mkdir -p secrets; openssl rand -hex 16 > secrets/postgres-password)"
# the same value the ivr nodes read (surrounding whitespace dropped); one line only
[ "$(grep -c . "$secret")" -eq 1 ] || fail "$secret must hold the password on one line"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$secret" | tr -d '\n' > "$work/pw"
[ -s "$work/pw" ] || fail "$secret is empty"

if [ "$(id -u)" -eq 0 ]; then     # the container: PostgreSQL runs as $os_user
    as_pg() { setpriv --reuid="$os_user" --regid="$os_user" --init-groups "$@"; }
else                              # already someone else (a test): as that user
    as_pg() { "$@"; }
fi

mkdir -p "$data" "$sockets"
[ "$(id -u)" -ne 0 ] || chown "$os_user:" "$data" "$sockets" "$work" "$work/pw"
chmod 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$data" -U postgres -E UTF8 --no-locale \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    printf '# the ivr nodes (postgres-entrypoint.sh)\nhost ivr ivr samenet scram-sha-256\n' \
        >> "$data/pg_hba.conf"
    echo "postgres-entrypoint: created the database cluster in $data"
fi

# The role and database, on a server that only listens on its Unix socket meanwhile.
as_pg "$bin/pg_ctl" -D "$data" -w -t 60 -l "$work/setup.log" \
    -o "-c listen_addresses='' -p $port -k $sockets" start >/dev/null
as_pg "$bin/psql" -X -q -h "$sockets" -p "$port" -U postgres -d postgres <<SQL
\set ON_ERROR_STOP on
\set pw \`cat $work/pw\`
SELECT 'CREATE ROLE ivr LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ivr')
\gexec
ALTER ROLE ivr LOGIN PASSWORD :'pw';
SELECT 'CREATE DATABASE ivr OWNER ivr'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ivr')
\gexec
SQL
as_pg "$bin/pg_ctl" -D "$data" -w -m fast stop >/dev/null
rm -rf "$work"
trap - EXIT

echo "postgres-entrypoint: role ivr and database ivr ready; listening on port $port"
set -- "$bin/postgres" -D "$data" -c "listen_addresses=$listen" -p "$port" -k "$sockets"
if [ "$(id -u)" -eq 0 ]; then
    exec setpriv --reuid="$os_user" --regid="$os_user" --init-groups "$@"
fi
exec "$@"
