package dcs

import "sync"

// subscribers broadcasts "the view changed" to any number of readers, each
// through its own coalescing channel, so a slow reader never blocks the
// watch and never steals the HA loop's notification.
type subscribers struct {
	mu   sync.Mutex
	next int
	chs  map[int]chan struct{}
}

func (s *subscribers) add() (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chs == nil {
		s.chs = map[int]chan struct{}{}
	}
	id := s.next
	s.next++
	ch := make(chan struct{}, 1)
	s.chs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.chs, id)
	}
}

func (s *subscribers) signal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.chs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
