package diff

import (
	"encoding/binary"
	"hash/maphash"
)

// matcher pairs old and new functions.
type matcher struct {
	o, n   *view
	oldNew []int32 // old index -> new index, -1
	newOld []int32 // new index -> old index, -1
	how    []Match // by old index
	// eligible marks functions hash and call-graph matching may pair: those
	// without a unique name (unnamed, or a name several functions share).
	oldElig, newElig []bool
	seed             maphash.Seed
}

func newMatcher(o, n *view) *matcher {
	m := &matcher{o: o, n: n,
		oldNew: make([]int32, len(o.funcs)), newOld: make([]int32, len(n.funcs)),
		how: make([]Match, len(o.funcs)), oldElig: make([]bool, len(o.funcs)), newElig: make([]bool, len(n.funcs)),
		seed: maphash.MakeSeed()}
	for i := range m.oldNew {
		m.oldNew[i] = -1
	}
	for i := range m.newOld {
		m.newOld[i] = -1
	}
	return m
}

func (m *matcher) pair(oi, ni int, how Match) {
	m.oldNew[oi] = int32(ni)
	m.newOld[ni] = int32(oi)
	m.how[oi] = how
}

// run matches by name, then repeatedly by body hash and call-graph
// neighbours until nothing new pairs up.
func (m *matcher) run(maxRounds int) {
	m.byName()
	for round := 0; round < maxRounds; round++ {
		n := m.byHash()
		n += m.byCallGraph()
		if n == 0 {
			break
		}
	}
}

// byName pairs functions whose name occurs equally often on both sides
// (once, usually; several same-named static functions pair in address order).
// Other functions stay eligible for the structural matchers.
func (m *matcher) byName() {
	oldBy := map[string][]int{}
	for i := range m.o.funcs {
		if name := m.o.funcs[i].Name; name != "" {
			oldBy[name] = append(oldBy[name], i)
		}
	}
	newBy := map[string][]int{}
	for i := range m.n.funcs {
		if name := m.n.funcs[i].Name; name != "" {
			newBy[name] = append(newBy[name], i)
		}
	}
	for i := range m.n.funcs {
		name := m.n.funcs[i].Name
		if name == "" {
			m.newElig[i] = true
			continue
		}
		os, ns := oldBy[name], newBy[name]
		if len(os) != len(ns) {
			m.newElig[i] = true
			continue
		}
		if ns[0] != i {
			continue // paired with the first of its name
		}
		for k := range ns {
			m.pair(os[k], ns[k], MatchName)
		}
	}
	for i := range m.o.funcs {
		name := m.o.funcs[i].Name
		if name == "" || len(oldBy[name]) != len(newBy[name]) {
			m.oldElig[i] = true
		}
	}
}

// allowed reports whether a structural match may pair oi and ni: unpaired,
// and not two functions with distinct unique names (a removed function and
// an added one with the same body stay Removed and Added).
func (m *matcher) allowed(oi, ni int) bool {
	if m.oldNew[oi] >= 0 || m.newOld[ni] >= 0 {
		return false
	}
	on, nn := m.o.funcs[oi].Name, m.n.funcs[ni].Name
	if on != "" && nn != "" {
		return on == nn && m.oldElig[oi] && m.newElig[ni]
	}
	return m.oldElig[oi] || m.newElig[ni] || on == "" || nn == ""
}

// hash is a body's hash with function targets named by match identity (the
// old index of the pair, "?" for unpaired), so it is comparable across
// images.
func (m *matcher) hash(v *view, fi int, old bool) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	b := &v.bodies[fi]
	h.Write(b.masked)
	var buf [8]byte
	for j := range b.syms {
		s := &b.syms[j]
		h.WriteByte(byte(s.kind))
		binary.LittleEndian.PutUint32(buf[:], b.refs[j].inst)
		h.Write(buf[:4])
		switch s.kind {
		case skFunc:
			id := int64(-1)
			if int(s.fn) == fi {
				id = -2
			} else if old {
				if m.oldNew[s.fn] >= 0 {
					id = int64(s.fn)
				}
			} else if o := m.newOld[s.fn]; o >= 0 {
				id = int64(o)
			}
			binary.LittleEndian.PutUint64(buf[:], uint64(id))
			h.Write(buf[:])
			binary.LittleEndian.PutUint64(buf[:], uint64(s.off))
			h.Write(buf[:])
		case skData, skImport, skSection:
			h.WriteString(s.name)
			binary.LittleEndian.PutUint64(buf[:], uint64(s.off))
			h.Write(buf[:])
		case skConst:
			n := min(len(s.cst.data), 4)
			h.Write(s.cst.data[:n])
		case skTable:
			for _, e := range s.table.Entries {
				binary.LittleEndian.PutUint32(buf[:], e)
				h.Write(buf[:4])
			}
		}
	}
	return h.Sum64()
}

// byHash pairs eligible functions whose hash is unique on both sides.
func (m *matcher) byHash() int {
	type slot struct{ o, n, no, nn int }
	tab := map[uint64]*slot{}
	for i := range m.o.funcs {
		if m.oldNew[i] < 0 && m.oldElig[i] {
			h := m.hash(m.o, i, true)
			s := tab[h]
			if s == nil {
				s = &slot{}
				tab[h] = s
			}
			s.o = i
			s.no++
		}
	}
	if len(tab) == 0 {
		return 0
	}
	for i := range m.n.funcs {
		if m.newOld[i] < 0 && m.newElig[i] {
			if s := tab[m.hash(m.n, i, false)]; s != nil {
				s.n = i
				s.nn++
			}
		}
	}
	// Pair in old-index order so the result does not depend on map order.
	paired := 0
	for i := range m.o.funcs {
		if m.oldNew[i] >= 0 || !m.oldElig[i] {
			continue
		}
		s := tab[m.hash(m.o, i, true)]
		if s != nil && s.no == 1 && s.nn == 1 && m.allowed(s.o, s.n) {
			m.pair(s.o, s.n, MatchBodyHash)
			paired++
		}
	}
	return paired
}

// byCallGraph pairs unpaired functions reached from the same reference
// position of a matched pair with the same number of references (a call
// site, a tail jump, an address taken), when the vote is unanimous.
func (m *matcher) byCallGraph() int {
	votes := map[int]int{}    // old -> new (-2: conflicting)
	backVote := map[int]int{} // new -> old
	vote := func(oi, ni int) {
		if !m.allowed(oi, ni) {
			return
		}
		if w, ok := votes[oi]; ok && w != ni {
			votes[oi] = -2
		} else if !ok {
			votes[oi] = ni
		}
		if w, ok := backVote[ni]; ok && w != oi {
			backVote[ni] = -2
		} else if !ok {
			backVote[ni] = oi
		}
	}
	for oi := range m.o.funcs {
		ni := m.oldNew[oi]
		if ni < 0 {
			continue
		}
		ob, nb := &m.o.bodies[oi], &m.n.bodies[ni]
		if len(ob.syms) != len(nb.syms) {
			continue
		}
		for j := range ob.syms {
			os, ns := &ob.syms[j], &nb.syms[j]
			if os.kind == skFunc && ns.kind == skFunc && os.off == 0 && ns.off == 0 &&
				int(os.fn) != oi && int(ns.fn) != int(ni) {
				vote(int(os.fn), int(ns.fn))
			}
		}
	}
	// Callers: an unpaired function whose references reach paired functions
	// at the same positions as an unpaired function of the other image.
	paired := 0
	for oi := range m.o.funcs {
		ni, ok := votes[oi]
		if !ok || ni < 0 || backVote[ni] != oi || !m.allowed(oi, ni) {
			continue
		}
		m.pair(oi, ni, MatchCallGraph)
		paired++
	}
	return paired
}
