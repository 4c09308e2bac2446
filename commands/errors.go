package commands

import (
	"fmt"
	"strings"
)

// Error replies, worded as Redis words them.
const (
	errSyntax         = "ERR syntax error"
	errNotInteger     = "ERR value is not an integer or out of range"
	errDBIndex        = "ERR DB index is out of range"
	errNoProto        = "NOPROTO unsupported protocol version"
	errWrongPass      = "WRONGPASS invalid username-password pair or user is disabled."
	errAuthNoPassword = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errClientName     = "ERR Client names cannot contain spaces, newlines or special characters."
	errDenied         = "DENIED Sluice is running in protected mode because no password is set for the default user. In this mode connections are only accepted from the loopback interface. To serve other hosts, set a password with --requirepass (or SLUICE_REQUIREPASS, or --requirepass-file) or users with --aclfile, or, only on a network you trust, start with --protected-mode=false."
	errDebugDisabled  = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"no\", you need to start the server with --enable-debug-command to use it."
)

func errArity(fullName string) string {
	return "ERR wrong number of arguments for '" + fullName + "' command"
}

func errUnknownSubcommand(sub []byte, parent string) string {
	return fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", clean(truncate(sub, 128)), strings.ToUpper(parent))
}

// errUnknownCommand is Redis 7's reply for an unknown command, including its
// trailing space: each argument is quoted until 128 bytes of them are shown.
func errUnknownCommand(args [][]byte) string {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		n := min(len(a), 128-b.Len())
		b.WriteString("'")
		b.WriteString(clean(a[:n]))
		b.WriteString("' ")
	}
	return fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", clean(truncate(args[0], 128)), b.String())
}

// clean replaces CR and LF with spaces, as Redis does in error replies.
// Other bytes, valid UTF-8 or not, pass through unchanged.
func clean(b []byte) string {
	out := []byte(string(b))
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	return string(out)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Authentication and authorisation replies, as Redis words them.
const (
	errNoAuth    = "NOAUTH Authentication required."
	errNoPermKey = "NOPERM No permissions to access a key"
)

func errNoPermCmd(user, cmd string) string {
	return fmt.Sprintf("NOPERM User %s has no permissions to run the '%s' command", user, cmd)
}
