package dcs

import "testing"

func TestSubscribersCoalesceAndCancel(t *testing.T) {
	var s subscribers
	a, cancelA := s.add()
	b, cancelB := s.add()
	s.signal()
	s.signal() // coalesces: a slow reader is never blocked on
	for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		default:
			t.Fatalf("subscriber %s was not signalled", name)
		}
		select {
		case <-ch:
			t.Fatalf("subscriber %s got two signals for coalesced changes", name)
		default:
		}
	}
	cancelA()
	s.signal()
	select {
	case <-a:
		t.Fatal("cancelled subscriber was signalled")
	default:
	}
	select {
	case <-b:
	default:
		t.Fatal("remaining subscriber was not signalled")
	}
	cancelB()
}
