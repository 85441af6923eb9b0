package secret

import "regexp"

// secretName is a secret-looking name: password, PGPASSWORD, passwd,
// passphrase, secret, token, api_key, access_key, credentials…
const secretName = `[a-z0-9_.-]*(?:passw(?:or)?d|passphrase|secret|token|api[_-]?key|access[_-]?key|credential)s?`

// secretAssignment matches such a name with its value as commands print
// them: password=x, PGPASSWORD=x, "password": "x", token: x,
// password='x', and a long flag (--password x). The name, separator and
// quote stay; the value becomes Redacted.
var secretAssignment = regexp.MustCompile(
	`(?i)((?:` + secretName + `)["']?\s*[:=]\s*["']?|--` + secretName + `\s+["']?)` +
		`([^\s"',;&]+)`)

// urlUserinfo matches scheme://user:password@ in URLs and conninfos.
var urlUserinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)([^\s/@]+)(@)`)

// RedactText replaces what looks like a secret in free text (a command's
// output, an error message) with Redacted, before the text is stored or
// served. It is a best effort over the common forms, not a guarantee:
// never send a secret to output on purpose.
func RedactText(s string) string {
	s = urlUserinfo.ReplaceAllString(s, "${1}"+Redacted+"${3}")
	return secretAssignment.ReplaceAllString(s, "${1}"+Redacted)
}
