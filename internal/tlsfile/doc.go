// Package tlsfile reads the PEM files that TLS settings name — today the
// CA bundles of etcd.cacert, restapi.cafile and regentctl's --cacert — so
// that every place reads them the same way and its errors name the
// setting at fault.
//
// It owns only reading and parsing files; which settings exist and how a
// tls.Config is built from them belong to the caller. It imports nothing
// of Regent's, so any package can use it.
package tlsfile
