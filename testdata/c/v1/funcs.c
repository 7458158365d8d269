/*
 * funcs.c, version 1: the functions of interest. Layout matters: functions are
 * emitted in source order (gcc: -fno-toplevel-reorder; clang: order of first
 * mention, so no function is called before its definition), and where v2
 * inserts or grows a function decides which of the later ones only move.
 * calls_moved lives in ../stable.c, linked before this file, so it never
 * moves while its callee moved_mix does. See ../../README.md for the table.
 */
#include "../fixture.h"

/* Globals: same names, types and sizes in v2 (new or resized writable data
 * cannot be hot-patched). */
long long total; /* written by record, read by read_total */
int hits;        /* read by read_hits; only v2's record writes it */
int slots[SLOT_CAP] = {11, 22, 33, 44, 55, 66, 77, 88,
                       0xdead, 0xdead, 0xdead, 0xdead,
                       0xdead, 0xdead, 0xdead, 0xdead};

/* Leaf: no calls, no memory. Unchanged, does not move. */
FIXTURE int leaf_mix(int a, int b) { return (a * 31) ^ (b + 7); }

/* Too short for a 5-byte jump on x86-64 (xor eax,eax; ret). Unchanged. */
FIXTURE int zero(void) { return 0; }

/* Read a global. Unchanged. */
FIXTURE long long read_total(void) { return total; }

/* Read a global. Unchanged. */
FIXTURE int read_hits(void) { return hits; }

/* Existing helper; v2's scale starts calling it. Unchanged. */
FIXTURE int clamp_small(int x) { return x < 0 ? 0 : (x > 100 ? 100 : x); }

/* String constant. v2 changes the text (same length). */
FIXTURE const char *greeting(void) { return "hello from v1"; }

/* Bug: no bounds check, so indexes 8..15 read the 0xdead filler.
 * v2 adds the bounds check and returns -1 instead. */
FIXTURE int slot_get(int i) { return slots[i & (SLOT_CAP - 1)]; }

/* Writes a global. v2 also writes hits. */
FIXTURE long long record(int x)
{
	total += x;
	return total;
}

/* Calls another function. v2 adds a call to the existing clamp_small. */
FIXTURE int scale(int x) { return leaf_mix(x, 3) * 2; }

/* Removed in v2 (dispatch stops calling it). Defined before its caller so
 * that clang, which lays functions out in order of first mention, and gcc
 * (-fno-toplevel-reorder: source order) agree on the layout. */
FIXTURE int legacy_step(int x) { return x * 5 + 2; }

/* Switch compiled to a jump table. v2 changes case 5, calls fresh_step
 * instead of legacy_step in case 6 and adds case 11. Eleven dense cases:
 * gcc for aarch64 only builds a jump table from 11 cases up. */
FIXTURE int dispatch(int op, int x)
{
	switch (op) {
	case 0: return x + 1;
	case 1: return x * 3;
	case 2: return clamp_small(x);
	case 3: return x ^ 0x5a5a;
	case 4: return x >> 1;
	case 5: return x - 100;
	case 6: return legacy_step(x);
	case 7: return leaf_mix(x, x);
	case 8: return x & 0x0f0f;
	case 9: return x * 9 + 1;
	case 10: return x | 0x100;
	default: return -1;
	}
}

/* Recursive (two self-calls, so not a loop after tail-call elimination).
 * Unchanged; moves in v2. */
FIXTURE int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* Unchanged; moves in v2 (fresh_step is inserted before it). */
FIXTURE int moved_mix(int x) { return leaf_mix(x, 7) ^ (x >> 2); }

/* Unchanged string constants; moves in v2. */
FIXTURE const char *label(int n) { return (n & 1) ? "odd" : "even"; }

/* Unchanged switch with a jump table; moves in v2. */
FIXTURE int classify(int kind, int x)
{
	switch (kind) {
	case 0: return x + 1000;
	case 1: return x * 5;
	case 2: return x & 0xff;
	case 3: return ~x;
	case 4: return x << 3;
	case 5: return -x;
	case 6: return x ^ 0x77;
	case 7: return x >> 4;
	case 8: return x - 3;
	case 9: return x * 13;
	case 10: return x | 0x40;
	default: return 0;
	}
}
