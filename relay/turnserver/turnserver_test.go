package turnserver

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

func start(t *testing.T) *Server {
	s, err := Start(Config{Listen: "127.0.0.1:0", PublicIP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// allocate asks for a relayed address with the given credentials.
func allocate(t *testing.T, s *Server, user, pass string) (net.PacketConn, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port()))
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Conn: conn, Username: user, Password: pass, Realm: Realm, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c.Allocate()
}

func TestAllocations(t *testing.T) {
	s := start(t)
	good := s.Credentials("session-1", time.Minute)
	relayed, err := allocate(t, s, good.Username, good.Password)
	if err != nil {
		t.Fatalf("valid credentials refused: %v", err)
	}
	if !strings.HasPrefix(relayed.LocalAddr().String(), "127.0.0.1:") {
		t.Errorf("relayed address %s", relayed.LocalAddr())
	}
	relayed.Close()

	expired := s.Credentials("session-2", -time.Minute)
	other := Issue([]byte("another relay's secret"), s.URLs(), "session-3", time.Minute)
	for name, c := range map[string][2]string{
		"no credentials":      {"", ""},
		"expired credentials": {expired.Username, expired.Password},
		"wrong password":      {good.Username, "AAAA" + good.Password[4:]},
		"foreign secret":      {other.Username, other.Password},
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := allocate(t, s, c[0], c[1]); err == nil {
				r.Close()
				t.Fatal("allocation accepted")
			}
		})
	}
	if got := s.URLs(); len(got) != 2 || !strings.Contains(got[1], "transport=tcp") {
		t.Errorf("URLs %v", got)
	}
}
