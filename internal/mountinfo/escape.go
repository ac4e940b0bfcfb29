package mountinfo

import "strings"

// unescape decodes the octal escapes the kernel writes for characters that
// would break the space-separated format: mangle() and seq_path() in
// fs/proc_namespace.c escape space (\040), tab (\011), newline (\012) and
// backslash (\134). Any \ooo with three octal digits and a value below 0400 is
// decoded; anything else (a lone backslash, \9, \400) is kept as written, so
// that a line the kernel never wrote still round-trips. The common case, no
// backslash at all, returns s itself without allocating.
func unescape(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) && s[i+1] <= '3' {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 4
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
