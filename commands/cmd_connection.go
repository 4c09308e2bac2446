package commands

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/acl"
	"github.com/sluicehq/sluice/resp"
)

// connectionCommands declares the commands about the connection itself:
// liveness, authentication, protocol and client metadata.
func connectionCommands() []*Command {
	clientFlags := FlagNoScript | FlagLoading | FlagStale
	clientCats := []string{"@slow", "@connection"}
	return []*Command{
		{Name: "ping", Arity: -1, Flags: FlagFast, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Returns PONG, or the message.", Complexity: "O(1)", Args: []Arg{{Name: "message", Type: "string", Optional: true}}, Handler: ping},
		{Name: "echo", Arity: 2, Flags: FlagFast, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Returns the message.", Complexity: "O(1)", Args: []Arg{{Name: "message", Type: "string"}}, Handler: echo},
		{Name: "quit", Arity: -1, Flags: FlagFast | FlagNoAuth | FlagLoading, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Closes the connection after replying OK.", Complexity: "O(1)", Handler: quit},
		{Name: "select", Arity: 2, Flags: FlagFast | FlagLoading, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Selects database 0, the only one.", Complexity: "O(1)", Args: []Arg{{Name: "index", Type: "integer"}}, Handler: selectDB},
		{Name: "auth", Arity: -2, Flags: FlagFast | FlagNoAuth | FlagLoading, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Authenticates the connection.", Complexity: "O(N) where N is the number of passwords defined for the user",
			Args: []Arg{{Name: "username", Type: "string", Optional: true}, {Name: "password", Type: "string"}}, Handler: auth, Redact: redactAuth},
		{Name: "hello", Arity: -1, Flags: FlagFast | FlagNoAuth | FlagLoading, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Handshakes: selects RESP2 or RESP3, optionally authenticates and names the connection.", Complexity: "O(1)",
			Args: []Arg{{Name: "arguments", Type: "block", Optional: true, Args: []Arg{
				{Name: "protover", Type: "integer"},
				{Name: "auth", Type: "block", Token: "AUTH", Optional: true, Args: []Arg{{Name: "username", Type: "string"}, {Name: "password", Type: "string"}}},
				{Name: "clientname", Type: "string", Token: "SETNAME", Optional: true}}}}, Handler: hello, Redact: redactHello},
		{Name: "client", Arity: -2, Group: "connection", Since: "0.1.0", Summary: "A container for client connection commands.", Complexity: "Depends on subcommand.",
			Categories: []string{"@slow"}, Subs: []*Command{
				{Name: "id", Arity: 2, Flags: clientFlags, Categories: clientCats, Group: "connection", Since: "0.1.0",
					Summary: "Returns the unique client ID of the connection.", Complexity: "O(1)", Handler: clientID},
				{Name: "setname", Arity: 3, Flags: clientFlags, Categories: clientCats, Group: "connection", Since: "0.1.0",
					Summary: "Sets the connection name.", Complexity: "O(1)", Args: []Arg{{Name: "connection-name", Type: "string"}}, Handler: clientSetName},
				{Name: "getname", Arity: 2, Flags: clientFlags, Categories: clientCats, Group: "connection", Since: "0.1.0",
					Summary: "Returns the name of the connection.", Complexity: "O(1)", Handler: clientGetName},
				{Name: "setinfo", Arity: 4, Flags: clientFlags, Categories: clientCats, Group: "connection", Since: "0.1.0",
					Summary: "Sets information specific to the client or connection.", Complexity: "O(1)",
					Args: []Arg{{Name: "attr", Type: "oneof", Args: []Arg{{Name: "libname", Type: "string", Token: "LIB-NAME"}, {Name: "libver", Type: "string", Token: "LIB-VER"}}}}, Handler: clientSetInfo},
				{Name: "info", Arity: 2, Flags: clientFlags, Categories: clientCats, Group: "connection", Since: "0.1.0",
					Summary: "Returns information about the connection.", Complexity: "O(1)", Handler: clientInfo},
				{Name: "list", Arity: -2, Flags: FlagAdmin | FlagNoScript | FlagLoading | FlagStale, Categories: []string{"@admin", "@slow", "@dangerous", "@connection"}, Group: "connection", Since: "0.1.0",
					Summary: "Lists open connections: all of them to a user holding @admin, else only the user's own.", Complexity: "O(N) where N is the number of client connections", Handler: clientList},
				{Name: "help", Arity: 2, Flags: FlagLoading | FlagStale, Categories: clientCats, Group: "connection", Since: "0.1.0",
					Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)", Handler: clientHelp},
			}},
	}
}

func ping(_ *Server, c *resp.Conn, args [][]byte) {
	if len(args) == 2 {
		c.WriteBulk(args[1])
		return
	}
	c.WriteSimple("PONG")
}

func echo(_ *Server, c *resp.Conn, args [][]byte) { c.WriteBulk(args[1]) }

func quit(_ *Server, c *resp.Conn, _ [][]byte) {
	c.WriteSimple("OK")
	c.CloseAfterReply()
}

func selectDB(_ *Server, c *resp.Conn, args [][]byte) {
	if string(args[1]) != "0" {
		if _, err := strconv.Atoi(string(args[1])); err != nil {
			c.WriteError(errNotInteger)
			return
		}
		c.WriteError(errDBIndex)
		return
	}
	c.WriteSimple("OK")
}

// login authenticates the connection as name with pw and returns "", or
// the error reply for a failure. An address that failed too often first
// waits its turn (see authGuard), before the password is checked, so the
// wait cannot be skipped by not reading the reply; a connection is closed
// after authConnFailures failures.
func (s *Server) login(c *resp.Conn, name, pw []byte) string {
	sess := sessionOf(c)
	addr := authAddr(sess.addr)
	wait, ok := s.authGuard.admit(addr, s.clock.Now())
	var u *acl.User
	if ok {
		if wait > 0 {
			s.cfg.Sleep(wait)
		}
		u = s.cfg.Users.Authenticate(name, pw)
		s.authGuard.finish(addr, s.clock.Now(), u == nil)
	}
	if u != nil {
		sess.user.Store(u)
		c.SetAuthenticated(true)
		return ""
	}
	s.authFailures.Add(1)
	if sess.authFailed++; sess.authFailed >= authConnFailures {
		s.log.Warn("closing a connection after repeated failed authentication", "client", sess.addr, "failures", sess.authFailed)
		c.CloseAfterReply()
	}
	if !ok {
		return errAuthBackoff
	}
	return errWrongPass
}

func auth(s *Server, c *resp.Conn, args [][]byte) {
	if len(args) > 3 {
		c.WriteError(errSyntax)
		return
	}
	name, pw := []byte("default"), args[1]
	if len(args) == 3 {
		name, pw = args[1], args[2]
	} else if s.cfg.Users.Default().NoPass {
		c.WriteError(errAuthNoPassword)
		return
	}
	if e := s.login(c, name, pw); e != "" {
		c.WriteError(e)
		return
	}
	c.WriteSimple("OK")
}

// hello serves HELLO [protover [AUTH username password] [SETNAME clientname]].
func hello(s *Server, c *resp.Conn, args [][]byte) {
	sess := sessionOf(c)
	proto := c.Proto()
	if len(args) >= 2 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			c.WriteError(errProtoVersion)
			return
		}
		if v != 2 && v != 3 {
			c.WriteError(errNoProto)
			return
		}
		proto = int(v)
	}
	var name []byte
	for i := 2; i < len(args); i++ {
		switch opt := strings.ToUpper(string(args[i])); {
		case opt == "AUTH" && i+2 < len(args):
			if e := s.login(c, args[i+1], args[i+2]); e != "" {
				c.WriteError(e)
				return
			}
			i += 2
		case opt == "SETNAME" && i+1 < len(args):
			if !validName(args[i+1]) {
				c.WriteError(errClientName)
				return
			}
			name = args[i+1]
			i++
		default:
			c.WriteError(errHelloOption(args[i]))
			return
		}
	}
	if !c.Authenticated() {
		c.WriteError(errHelloNoAuth)
		return
	}
	if name != nil {
		n := string(name)
		sess.name.Store(&n)
	}
	c.SetProto(proto)
	c.WriteMap(7)
	c.WriteBulkString("server")
	c.WriteBulkString("sluice")
	c.WriteBulkString("version")
	c.WriteBulkString(redisVersion)
	c.WriteBulkString("proto")
	c.WriteInt(int64(proto))
	c.WriteBulkString("id")
	c.WriteInt(int64(c.ID()))
	c.WriteBulkString("mode")
	c.WriteBulkString(s.mode())
	c.WriteBulkString("role")
	c.WriteBulkString("master")
	c.WriteBulkString("modules")
	c.WriteArray(0)
}

// validName reports whether a client name has no spaces or control bytes.
func validName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func clientID(_ *Server, c *resp.Conn, _ [][]byte) { c.WriteInt(int64(c.ID())) }

func clientSetName(_ *Server, c *resp.Conn, args [][]byte) {
	if !validName(args[2]) {
		c.WriteError(errClientName)
		return
	}
	n := string(args[2])
	sessionOf(c).name.Store(&n)
	c.WriteSimple("OK")
}

func clientGetName(_ *Server, c *resp.Conn, _ [][]byte) {
	if n := sessionOf(c).name.Load(); n != nil && *n != "" {
		c.WriteBulkString(*n)
		return
	}
	c.WriteNull()
}

// clientSetInfo serves CLIENT SETINFO LIB-NAME|LIB-VER value. As in Redis,
// the option is checked first, then the value: printable ASCII without
// spaces, so that a value can neither forge CLIENT LIST fields or lines nor
// carry control bytes into anything that shows it.
func clientSetInfo(_ *Server, c *resp.Conn, args [][]byte) {
	sess := sessionOf(c)
	var dst *atomic.Pointer[string]
	switch strings.ToUpper(string(args[2])) {
	case "LIB-NAME":
		dst = &sess.libName
	case "LIB-VER":
		dst = &sess.libVer
	default:
		c.WriteError(errClientInfoOption(args[2]))
		return
	}
	if !validName(args[3]) {
		c.WriteError(errClientInfoValue(args[2]))
		return
	}
	v := string(args[3])
	dst.Store(&v)
	c.WriteSimple("OK")
}

func load(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// clientLine formats one session the way Redis's CLIENT INFO/LIST do.
func clientLine(sess *session, proto int) string {
	age := int64(time.Since(sess.created) / time.Second)
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=%s redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
		sess.id, sess.addr, sess.laddr, load(sess.name.Load()), age, load(sess.lastCmd.Load()), sess.user.Load().Name, proto, load(sess.libName.Load()), load(sess.libVer.Load()))
}

func clientInfo(_ *Server, c *resp.Conn, _ [][]byte) {
	c.WriteVerbatim("txt", clientLine(sessionOf(c), c.Proto()))
}

// clientList serves CLIENT LIST. A user that holds the @admin category
// (+@all or +@admin) sees every connection; any other user sees only the
// connections authenticated as itself, so that a tenant allowed
// +@connection does not learn other tenants' clients, addresses and
// activity. Redis has no such filter: there, +@connection shows all.
func clientList(s *Server, c *resp.Conn, _ [][]byte) {
	me := sessionOf(c).user.Load()
	all := me.GrantsCategory("admin")
	s.mu.Lock()
	var b strings.Builder
	for _, sess := range s.sessions {
		if !all && sess.user.Load().Name != me.Name {
			continue
		}
		proto := 2
		if sess.id == c.ID() {
			proto = c.Proto()
		}
		b.WriteString(clientLine(sess, proto))
	}
	s.mu.Unlock()
	c.WriteVerbatim("txt", b.String())
}

func clientHelp(_ *Server, c *resp.Conn, _ [][]byte) {
	writeHelp(c, "CLIENT", []string{
		"GETNAME", "    Return the name of the current connection.",
		"ID", "    Return the ID of the current connection.",
		"INFO", "    Return information about the current client connection.",
		"LIST", "    Return information about client connections.",
		"SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
		"SETNAME <name>", "    Assign the name <name> to the current connection.",
	})
}
