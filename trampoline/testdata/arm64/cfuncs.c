/* Compiled ARM64 functions for trampoline's execution tests: built twice
 * (gcc -O2: ADRP pairs, gcc jump tables; clang -O2 -mcmodel=tiny: ADR and
 * LDR (literal)) into flat blobs by build.sh. Every exported function takes
 * two integers and returns one (C ABI), reads but never writes memory (the
 * tests map the blob read+execute), and calls nothing outside the blob. */
typedef long long i64;

static const i64 primes[16] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53};
static const double weights[4] = {0.5, 1.25, 2.75, 4.125};
static const char names[5][6] = {"zero", "one", "two", "three", "four"};

__attribute__((noinline)) static i64 mix(i64 a, i64 b) { return a * 31 + (b ^ 0x5bd1e995); }

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

i64 c_table(i64 x, i64 y) { return primes[x & 15] * y + primes[(x >> 4) & 15]; }

i64 c_float(i64 x, i64 y) {
	double s = 0;
	for (int i = 0; i < 4; i++)
		s += weights[i] * (double)(x + i);
	return (i64)(s * 3.0517578125 + (double)y * 0.1);
}

i64 c_bits(i64 x, i64 y) {
	i64 r = 0;
	if (x & (1LL << 40)) r += 5;
	if (!(x & 8)) r += mix(x, y);
	if (y & 2) r -= 17;
	return r + (x ? 0x123456789abcdefLL : 42);
}

i64 c_loop(i64 x, i64 y) {
	i64 s = 0;
	for (i64 i = 0; i < (x & 255); i++)
		s += (i * y) % 7 + primes[i & 15];
	return s;
}

i64 c_strlen(i64 x, i64 y) {
	const char *s = names[(x < 0 ? -x : x) % 5];
	i64 n = 0;
	while (s[n]) n++;
	return n * 100 + s[0] + y;
}

typedef i64 (*op)(i64, i64);
static i64 op_add(i64 a, i64 b) { return a + b; }
static i64 op_sub(i64 a, i64 b) { return a - b; }
static i64 op_mul(i64 a, i64 b) { return a * b; }

i64 c_indirect(i64 x, i64 y) {
	op f = x == 0 ? op_add : x == 1 ? op_sub : op_mul;
	return f(x + 10, y) + mix(x, y);
}

i64 c_recurse(i64 x, i64 y) { return x <= 1 ? y : c_recurse(x - 1, y) + c_recurse(x - 2, y + 1); }

/* A dense switch: both compilers dispatch it through a table of offsets
 * from a code label (gcc: adr + ldrb + add sxtb #2 + br). */
i64 c_dense(i64 x, i64 y) {
	switch ((unsigned)x) {
	case 0: return y + 1;
	case 1: return y * 7;
	case 2: return y - 100;
	case 3: return y ^ 0xff;
	case 4: return y << 5;
	case 5: return y >> 2;
	case 6: return y | 0x1000;
	case 7: return y & 0xf0f;
	case 8: return y * y;
	case 9: return mix(y, 9);
	case 10: return 77;
	case 11: return -y;
	default: return 5;
	}
}
