/*
 * funcs.c, version 2: v1 with the fixes. Every difference from v1 is listed
 * in ../../README.md and ../../groundtruth.json.
 */
#include "../fixture.h"

/* Globals: same names, types and sizes as v1. */
long long total; /* written by record, read by read_total */
int hits;        /* read by read_hits; written by record (new in v2) */
int slots[SLOT_CAP] = {11, 22, 33, 44, 55, 66, 77, 88,
                       0xdead, 0xdead, 0xdead, 0xdead,
                       0xdead, 0xdead, 0xdead, 0xdead};

/* Declared here because dispatch calls it before its definition; clang then
 * places it right after dispatch, which is also where it is defined. */
int fresh_step(int x);

/* Leaf: no calls, no memory. Unchanged, does not move. */
FIXTURE int leaf_mix(int a, int b) { return (a * 31) ^ (b + 7); }

/* Too short for a 5-byte jump on x86-64 (xor eax,eax; ret). Unchanged. */
FIXTURE int zero(void) { return 0; }

/* Read a global. Unchanged. */
FIXTURE long long read_total(void) { return total; }

/* Read a global. Unchanged. */
FIXTURE int read_hits(void) { return hits; }

/* Existing helper; scale now calls it. Unchanged. */
FIXTURE int clamp_small(int x) { return x < 0 ? 0 : (x > 100 ? 100 : x); }

/* CHANGED: the string constant (same length as v1's). */
FIXTURE const char *greeting(void) { return "hello from v2"; }

/* CHANGED: bug fix, new bounds check. */
FIXTURE int slot_get(int i)
{
	if ((unsigned)i >= SLOT_USED)
		return -1;
	return slots[i];
}

/* CHANGED: also writes the global hits. */
FIXTURE long long record(int x)
{
	total += x;
	hits++;
	return total;
}

/* CHANGED: new call to the existing helper clamp_small. */
FIXTURE int scale(int x) { return leaf_mix(x, 3) * 2 + clamp_small(x); }

/* legacy_step: REMOVED (v1 had it here). */

/* CHANGED switch: case 5 differs, case 6 calls fresh_step, new case 11. */
FIXTURE int dispatch(int op, int x)
{
	switch (op) {
	case 0: return x + 1;
	case 1: return x * 3;
	case 2: return clamp_small(x);
	case 3: return x ^ 0x5a5a;
	case 4: return x >> 1;
	case 5: return x - 200;
	case 6: return fresh_step(x);
	case 7: return leaf_mix(x, x);
	case 8: return x & 0x0f0f;
	case 9: return x * 9 + 1;
	case 10: return x | 0x100;
	case 11: return x * x;
	default: return -1;
	}
}

/* ADDED: inserted here, so everything below only moves. */
FIXTURE int fresh_step(int x) { return x * 7 - 3; }

/* Recursive. Unchanged; moves. */
FIXTURE int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* Unchanged; moves (fresh_step is inserted before it). */
FIXTURE int moved_mix(int x) { return leaf_mix(x, 7) ^ (x >> 2); }

/* Unchanged string constants; moves. */
FIXTURE const char *label(int n) { return (n & 1) ? "odd" : "even"; }

/* Unchanged switch with a jump table; moves. */
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
