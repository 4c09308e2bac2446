package acl

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, key string
		want         bool
	}{
		{"*", "", true}, {"*", "anything", true}, {"tenant1:*", "tenant1:ip:1.2.3.4", true},
		{"tenant1:*", "tenant2:x", false}, {"tenant1:*", "tenant1", false}, {"a?c", "abc", true},
		{"a?c", "ac", false}, {"a[bc]d", "acd", true}, {"a[^bc]d", "acd", false}, {"a[a-c]d", "abd", true},
		{"a[c-a]d", "abd", true}, {`a\*b`, "a*b", true}, {`a\*b`, "axb", false}, {"*:*:x", "a:b:c:x", true},
		{"a*b*c", "aXbYbZc", true}, {"a*b*c", "aXbYbZ", false}, {"[", "[", false}, {"**", "x", true},
	} {
		assert.Equal(t, c.want, globMatch(c.pattern, []byte(c.key)), "%q ~ %q", c.pattern, c.key)
	}
}
