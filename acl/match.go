package acl

// Match reports whether key matches a Redis-style glob (* ? [abc] [a-z]
// [^x] and backslash escapes), the matching ACL key patterns and SCAN's
// MATCH use. It does not allocate.
func Match(pattern string, key []byte) bool { return globMatch(pattern, key) }
