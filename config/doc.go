// Package config is Regent's configuration: regent.yml, the member's
// local settings, and the dynamic config in the cluster's `config` key.
//
// It owns:
//   - regent.yml decoded strictly (yamlstrict.go): unknown or duplicate
//     keys are errors naming the dotted key, with a "did you mean" for a
//     typo; ${VAR} in a value is the environment variable, an unset one
//     an error naming the key (Load, Parse);
//   - the dynamic config (Dynamic): Patroni's keys, read leniently from
//     etcd (ParseDynamic; a member applies what it can over what it runs,
//     ApplyDynamic) but strictly where it is written: every key an edit or
//     bootstrap.dcs sets is implemented with a value members accept —
//     parameters against PostgreSQL 15's catalogue — or refused by name
//     (CheckKeys); the pure half of PATCH and PUT /config (DecodeObject,
//     MergePatch, EncodePatch, EncodeDynamic);
//   - durations read as Patroni reads them: a bare number is seconds, in
//     regent.yml as in the dynamic config; NaN, negative and absurd
//     values are refused;
//   - the member's tags (Tags) and the callbacks section (Callbacks);
//   - the rules that cross sections: loop_wait + 2·retry_timeout ≤ ttl,
//     and the safety margin against ttl and loop_wait (CheckSafetyMargin).
//
// The sections' types stay owned by the packages that consume them —
// dcs.Config, restapi.Config, postgres.Config, fencing.Config,
// fencing.HookConfig and routing.Config — each with its SetDefaults and
// Validate; Config composes them and calls both.
//
// It never does I/O beyond reading the file it is given: the agent reads
// and writes the config key, runs the callbacks and builds the logger's
// output. Loosely typed values ("on", "20") are read with
// internal/lenient, as everywhere else in Regent.
package config
