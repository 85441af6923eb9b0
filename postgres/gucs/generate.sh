#!/usr/bin/env bash
# Regenerates pg<major>.txt, PostgreSQL's own parameter catalogue
# (pg_settings), from a throwaway server. Run as root from this folder:
#   ./generate.sh /usr/lib/postgresql/15/bin > pg15.txt
# One line per parameter: name|vartype|unit|min|max|enumvals (';'-joined)|context
set -euo pipefail
bin=${1:?usage: generate.sh BINDIR}
tmp=$(mktemp -d)
chown postgres "$tmp"
trap 'su postgres -c "$bin/pg_ctl -D $tmp/d -m immediate stop" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
su postgres -c "$bin/initdb -D $tmp/d -A trust" >/dev/null
su postgres -c "$bin/pg_ctl -D $tmp/d -o '-p 5499 -k $tmp -c listen_addresses=' -l $tmp/log -w start" >/dev/null
su postgres -c "psql -h $tmp -p 5499 -AtX -d postgres -c \"
  select name||'|'||vartype||'|'||coalesce(unit,'')||'|'||coalesce(min_val,'')||'|'||
         coalesce(max_val,'')||'|'||coalesce(array_to_string(enumvals,';'),'')||'|'||context
  from pg_settings order by name\""
