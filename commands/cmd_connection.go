package commands

import (
	"fmt"
	"strconv"
	"strings"
	"time"

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
			Args: []Arg{{Name: "username", Type: "string", Optional: true}, {Name: "password", Type: "string"}}, Handler: auth},
		{Name: "hello", Arity: -1, Flags: FlagFast | FlagNoAuth | FlagLoading, Categories: []string{"@fast", "@connection"}, Group: "connection", Since: "0.1.0",
			Summary: "Handshakes: selects RESP2 or RESP3, optionally authenticates and names the connection.", Complexity: "O(1)",
			Args: []Arg{{Name: "arguments", Type: "block", Optional: true, Args: []Arg{
				{Name: "protover", Type: "integer"},
				{Name: "auth", Type: "block", Token: "AUTH", Optional: true, Args: []Arg{{Name: "username", Type: "string"}, {Name: "password", Type: "string"}}},
				{Name: "clientname", Type: "string", Token: "SETNAME", Optional: true}}}}, Handler: hello},
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
					Summary: "Lists open connections.", Complexity: "O(N) where N is the number of client connections", Handler: clientList},
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

// login authenticates the connection as name with pw, or counts a failure.
func (s *Server) login(c *resp.Conn, name, pw []byte) bool {
	u := s.cfg.Users.Authenticate(name, pw)
	if u == nil {
		s.authFailures.Add(1)
		return false
	}
	sessionOf(c).user.Store(u)
	c.SetAuthenticated(true)
	return true
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
	if !s.login(c, name, pw) {
		c.WriteError(errWrongPass)
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
			if !s.login(c, args[i+1], args[i+2]) {
				c.WriteError(errWrongPass)
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
	c.WriteBulkString("standalone")
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

func clientSetInfo(_ *Server, c *resp.Conn, args [][]byte) {
	v := string(args[3])
	if strings.ContainsAny(v, " \r\n") {
		c.WriteError(errClientInfoValue(args[2]))
		return
	}
	sess := sessionOf(c)
	switch strings.ToUpper(string(args[2])) {
	case "LIB-NAME":
		sess.libName.Store(&v)
	case "LIB-VER":
		sess.libVer.Store(&v)
	default:
		c.WriteError(errClientInfoOption(args[2]))
		return
	}
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

func clientList(s *Server, c *resp.Conn, _ [][]byte) {
	s.mu.Lock()
	var b strings.Builder
	for _, sess := range s.sessions {
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
