/* Compiled x86-64 functions for trampoline's execution tests, built by
 * build.sh with gcc -O2 -fPIE and clang -O2 -fPIE into flat blobs (code then
 * read-only data), so every reference is RIP-relative and the blob runs at
 * any address. Every exported function takes two integers and returns one
 * (SysV C ABI), reads but never writes memory (the tests map the blob
 * read+execute), and calls nothing outside the blob. */
typedef long long i64;

static const i64 primes[16] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53};
static const double weights[4] = {0.5, 1.25, 2.75, 4.125};
static const char text[] = "the quick brown fox jumps over the lazy dog";

__attribute__((noinline)) static i64 mix(i64 a, i64 b) { return a * 31 + (b ^ 0x5bd1e995); }

/* A switch dense enough for a jump table (lea; movslq; add; jmp *reg). */
i64 c_switch(i64 x, i64 y) {
	switch (x) {
	case 0: return y + 11;
	case 1: return y * 3;
	case 2: return y - 7;
	case 3: return mix(y, 3);
	case 4: return y << 2;
	case 5: return y ^ 0x55;
	case 6: return -y;
	case 7: return y / 3;
	case 9: return 1234;
	default: return 99;
	}
}

/* RIP-relative loads from a constant table. */
i64 c_table(i64 x, i64 y) { return primes[x & 15] * y + primes[(x >> 4) & 15]; }

/* SSE arithmetic with RIP-relative double constants. */
i64 c_float(i64 x, i64 y) {
	double s = 0;
	for (int i = 0; i < 4; i++)
		s += weights[i] * (double)(x + i);
	return (i64)(s * 3.0517578125 + (double)y * 0.1);
}

/* Conditional branches, a call, a 64-bit immediate. */
i64 c_bits(i64 x, i64 y) {
	i64 r = 0;
	if (x & (1LL << 40)) r += 5;
	if (!(x & 8)) r += mix(x, y);
	if (y & 2) r -= 17;
	return r + (x ? 0x123456789abcdefLL : 42);
}

/* A loop over a table. */
i64 c_loop(i64 x, i64 y) {
	i64 s = 0;
	for (i64 i = 0; i < (x & 255); i++)
		s += (i * y) % 7 + primes[i & 15];
	return s;
}

/* A string scan: lea of a string literal, byte loop. */
i64 c_strlen(i64 x, i64 y) {
	const char *p = text + (x & 15);
	i64 n = 0;
	while (*p && *p != (char)(y & 127)) p++, n++;
	return n;
}

/* A tail call (jmp rel32 out of the function). */
i64 c_tail(i64 x, i64 y) { return mix(x + 1, y - 1); }

/* Recursion (call rel32 to the function's own entry). */
i64 c_recurse(i64 x, i64 y) { return (x & 31) == 0 ? y : c_recurse(x - 1, y + x) + 1; }

/* Too short for a 5-byte jump: lea; ret. */
i64 c_tiny(i64 x, i64 y) { return x + y; }
