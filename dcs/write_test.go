package dcs

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestCASLostRaceIsConflict(t *testing.T) {
	c := connect(t, startEtcd(t))
	key := c.Keys().Config()
	rev, err := c.CAS(ctxT(t), key, []byte(`{"ttl":30}`), 0)
	if err != nil {
		t.Fatalf("create-only CAS: %v", err)
	}
	if _, err := c.CAS(ctxT(t), key, []byte(`{"ttl":20}`), 0); !errors.Is(err, ErrConflict) {
		t.Errorf("second create-only CAS = %v, want ErrConflict", err)
	}
	// Two writers read rev; the first wins, the second loses.
	rev2, err := c.CAS(ctxT(t), key, []byte(`{"ttl":20}`), rev)
	if err != nil {
		t.Fatalf("CAS at current revision: %v", err)
	}
	if _, err := c.CAS(ctxT(t), key, []byte(`{"ttl":40}`), rev); !errors.Is(err, ErrConflict) {
		t.Errorf("CAS at stale revision = %v, want ErrConflict", err)
	}
	v, found, err := c.Get(ctxT(t), key)
	if err != nil || !found || string(v.Data) != `{"ttl":20}` || v.ModRevision != rev2 || v.CreateRevision != rev {
		t.Errorf("Get = %+v %v %v; want ttl 20 at mod %d create %d", v, found, err, rev2, rev)
	}
	if err := c.Delete(ctxT(t), key, rev); !errors.Is(err, ErrConflict) {
		t.Errorf("Delete at stale revision = %v, want ErrConflict", err)
	}
	if err := c.Delete(ctxT(t), key, rev2); err != nil {
		t.Errorf("Delete at current revision: %v", err)
	}
	if err := c.Delete(ctxT(t), key, 0); err != nil {
		t.Errorf("unconditional Delete of an absent key: %v", err)
	}
	if _, found, _ := c.Get(ctxT(t), key); found {
		t.Error("key still there")
	}
}

func TestInitializeRace(t *testing.T) {
	c := connect(t, startEtcd(t))
	if won, err := c.CreateInitialize(ctxT(t)); !won || err != nil {
		t.Fatalf("first CreateInitialize = %v, %v", won, err)
	}
	if won, err := c.CreateInitialize(ctxT(t)); won || err != nil {
		t.Fatalf("second CreateInitialize = %v, %v; want false, nil", won, err)
	}
	cl, err := c.Load(ctxT(t))
	if err != nil || cl.Initialize == nil || *cl.Initialize != "" {
		t.Fatalf("Load after create: %v, %v", cl.Initialize, err)
	}
	if err := c.SetInitialize(ctxT(t), "7218000000000000001"); err != nil {
		t.Fatal(err)
	}
	if cl, _ = c.Load(ctxT(t)); cl.Initialize == nil || *cl.Initialize != "7218000000000000001" {
		t.Errorf("Initialize = %v", cl.Initialize)
	}
	if err := c.DeleteInitialize(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if cl, _ = c.Load(ctxT(t)); cl.Initialize != nil {
		t.Errorf("Initialize = %q after delete", *cl.Initialize)
	}
}

func TestPutMemberIsOnOurLease(t *testing.T) {
	c := connect(t, startEtcd(t))
	id := mustGrant(t, c, 10*time.Second)
	lsn := uint64(0x5000060)
	m := Member{ConnURL: "postgres://127.0.0.1:5432/postgres", APIURL: "http://127.0.0.1:8008/patroni",
		State: "running", Role: "replica", Version: "3.0.2", XLogLocation: &lsn, Timeline: 1}
	if err := c.PutMember(ctxT(t), "pg1", m); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Raw().Get(ctxT(t), c.Keys().Member("pg1"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw get: %v", err)
	}
	if resp.Kvs[0].Lease != id {
		t.Errorf("member key on lease %s, want %s", hex(resp.Kvs[0].Lease), hex(id))
	}
	var raw map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &raw); err != nil || raw["xlog_location"] != float64(lsn) || raw["role"] != "replica" {
		t.Errorf("member JSON = %s (%v)", resp.Kvs[0].Value, err)
	}
	cl, err := c.Load(ctxT(t))
	if err != nil || cl.Members["pg1"].ConnURL != m.ConnURL {
		t.Errorf("Load members = %+v, %v", cl.Members, err)
	}
}
