package middleware

// The index of a memoryShard finds the entry of a key. It is an open-addressing
// hash table with linear probing, kept at most half full. A slot holds the high
// 32 bits of the key's hash and the entry's position in ents plus one, or 0
// when empty, so that a probe reads the entries only for a likely match.
//
// A removal shifts the slots that follow it back instead of leaving a
// tombstone, so the constant churn of keys (every message reserves a new key,
// and in a full store every commit evicts one) never lengthens the probes. A
// Go map, which leaves tombstones, spent most of the store's time probing past
// them.

// minIndex is the smallest table; its length is always a power of two.
const minIndex = 64

// indexSlot returns the slot value of entry i whose hash has tag as its high
// half.
func indexSlot(tag uint32, i int32) uint64 { return uint64(tag)<<32 | uint64(i+1) }

// home returns the first slot to probe for a slot value or a hash. The low
// bits of a hash chose the shard, so the table uses the high ones.
func home(v uint64, mask int) int { return int(v>>32) & mask }

// find returns the entry of key, whose hash is h, or -1.
func (s *memoryShard) find(key Key, h uint64) int32 {
	if len(s.index) == 0 {
		return -1
	}
	mask := len(s.index) - 1
	tag := h >> 32
	for p := home(h, mask); ; p = (p + 1) & mask {
		v := s.index[p]
		if v == 0 {
			return -1
		}
		if v>>32 == tag {
			if i := int32(uint32(v)) - 1; s.ents[i].key == key {
				return i
			}
		}
	}
}

// addToIndex indexes entry i, whose key is not indexed yet.
func (s *memoryShard) addToIndex(i int32) {
	if 2*(s.indexed+1) > len(s.index) {
		s.growIndex()
	}
	s.place(indexSlot(s.ents[i].tag, i))
	s.indexed++
}

func (s *memoryShard) place(v uint64) {
	mask := len(s.index) - 1
	p := home(v, mask)
	for s.index[p] != 0 {
		p = (p + 1) & mask
	}
	s.index[p] = v
}

// growIndex doubles the table and places every slot again.
func (s *memoryShard) growIndex() {
	old := s.index
	s.index = make([]uint64, max(2*len(old), minIndex))
	for _, v := range old {
		if v != 0 {
			s.place(v)
		}
	}
}

// removeFromIndex takes entry i, which is indexed, out of the table.
func (s *memoryShard) removeFromIndex(i int32) {
	mask := len(s.index) - 1
	want := indexSlot(s.ents[i].tag, i)
	p := home(want, mask)
	for s.index[p] != want {
		p = (p + 1) & mask
	}
	// Shift back every following slot, up to the next empty one, that may
	// live at p: those whose home is not cyclically after p.
	for q := (p + 1) & mask; s.index[q] != 0; q = (q + 1) & mask {
		if (q-home(s.index[q], mask))&mask >= (q-p)&mask {
			s.index[p] = s.index[q]
			p = q
		}
	}
	s.index[p] = 0
	s.indexed--
}
