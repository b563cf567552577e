package pinreport

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Log lines as pgpoolx writes them (zap's JSON encoder with ISO8601 time
// stamps), for tests. TestZapFormat checks them against zap itself.

// t0 is when test logs begin, in a zone that is not UTC.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("", 3600))

func at(d time.Duration) string { return t0.Add(d).Format("2006-01-02T15:04:05.000Z0700") }

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func pinnedLine(d time.Duration, client int, reason, digest string) string {
	return fmt.Sprintf(`{"level":"info","ts":"%s","logger":"pgpoolx.client","msg":"session pinned","client_id":%d,"db":"appdb","user":"app","reason":%s,"detail":%s,"digest":%s,"query_bytes":%d,"server_pid":4242,"hint":%s}`,
		at(d), client, jsonString(reason), jsonString("detail of "+reason), jsonString(digest), len(digest), jsonString("hint for "+reason))
}

func unpinnedLine(d time.Duration, client int, reason string, pinnedFor time.Duration, tx int) string {
	return fmt.Sprintf(`{"level":"info","ts":"%s","logger":"pgpoolx.client","msg":"session unpinned","client_id":%d,"db":"appdb","user":"app","reason":%s,"pinned_for":%v,"transactions":%d,"server_pid":4242}`,
		at(d), client, jsonString(reason), pinnedFor.Seconds(), tx)
}

func rdsLine(d time.Duration, reason, digest, initQuery string) string {
	iq := ""
	if initQuery != "" {
		iq = `,"init_query":` + jsonString(initQuery)
	}
	return fmt.Sprintf(`{"level":"info","ts":"%s","logger":"pgpoolx.client","msg":"would pin on rds proxy","client_id":1,"db":"appdb","user":"app","reason":%s,"detail":%s,"digest":%s,"hint":%s%s}`,
		at(d), jsonString(reason), jsonString("rds detail of "+reason), jsonString(digest), jsonString("rds hint for "+reason), iq)
}

func listeningLine(d time.Duration) string {
	return fmt.Sprintf(`{"level":"info","ts":"%s","logger":"pgpoolx","msg":"listening","addr":"127.0.0.1:6432","version":"dev","databases":1}`, at(d))
}

func statsLine(d time.Duration, db string, clients, pinned, waiting, conns int) string {
	return fmt.Sprintf(`{"level":"info","ts":"%s","logger":"pgpoolx","msg":"pool stats","db":%s,"user":"app","clients":%d,"clients_pinned":%d,"clients_waiting":%d,"server_conns":%d,"server_conns_idle":0,"server_prepared_statements":0,"client_prepared_statements":0}`,
		at(d), jsonString(db), clients, pinned, waiting, conns)
}

func otherLine(d time.Duration) string {
	return fmt.Sprintf(`{"level":"info","ts":"%s","logger":"pgpoolx.pool","msg":"server connection opened","db":"appdb","user":"app","server_pid":4243}`, at(d))
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
