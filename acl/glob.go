package acl

// globMatch reports whether key matches a Redis-style glob: * ? [abc] [a-z]
// [^x] and backslash escapes. It does not allocate.
func globMatch(pattern string, key []byte) bool {
	p, k := 0, 0
	starP, starK := -1, 0
	for k < len(key) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starK = p, k
				p++
				continue
			case '?':
				p++
				k++
				continue
			case '[':
				if end, ok := matchClass(pattern, p, key[k]); ok {
					p = end
					k++
					continue
				}
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == key[k] {
					p += 2
					k++
					continue
				}
			default:
				if c == key[k] {
					p++
					k++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starK++
		p, k = starP+1, starK
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches b against the class starting at pattern[p] == '[' and
// returns the index after the class.
func matchClass(pattern string, p int, b byte) (int, bool) {
	i := p + 1
	neg := i < len(pattern) && pattern[i] == '^'
	if neg {
		i++
	}
	matched := false
	for ; i < len(pattern) && pattern[i] != ']'; i++ {
		switch {
		case pattern[i] == '\\' && i+1 < len(pattern):
			i++
			matched = matched || pattern[i] == b
		case i+2 < len(pattern) && pattern[i+1] == '-' && pattern[i+2] != ']':
			lo, hi := pattern[i], pattern[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			matched = matched || (lo <= b && b <= hi)
			i += 2
		default:
			matched = matched || pattern[i] == b
		}
	}
	if i >= len(pattern) {
		return 0, false // unterminated class matches nothing
	}
	return i + 1, matched != neg
}
