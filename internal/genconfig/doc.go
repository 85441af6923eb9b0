// Package genconfig writes a regent.yml: `regent generate-config`, after
// Patroni 3.2's --generate-config. Given a connection to a running
// PostgreSQL (Inspect), the file describes that server — its data
// directory, the directory of its binaries, where it listens, the
// parameters it runs with and its pg_hba.conf rules — so the host can
// become a Regent member without retyping them; without one, a sample
// for a new member.
//
// Inspect only reads (SHOW, pg_settings, pg_hba_file_rules, postmaster.pid
// and /proc); Render is a pure function from what was read and the
// operator's flags to the file. Secrets never go into the file: it
// references them as ${PGSUPERPASS}, ${PGREPLPASS} and
// ${RESTAPI_PASSWORD}, like examples/regent.yml. It never talks to etcd.
package genconfig
