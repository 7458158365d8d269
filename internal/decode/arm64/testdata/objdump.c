/* Input for TestAgainstLLVMObjdump: compiled at test time for AArch64 (gcc
 * -O2 -static, and clang -mcmodel=tiny which reaches globals and constants
 * through ADR and LDR (literal)), then every PC-relative instruction's target
 * is compared with llvm-objdump's. */
#ifdef FREESTANDING
typedef unsigned long size_t;
#else
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#endif

static int table[256];
static long long wide[64];
volatile float fscale = 1.5f;
const double dconst[4] = {3.14159265358979, 2.718281828, 1.41421356, 0.5772156649};
volatile __int128 big = 12345;

__attribute__((noinline)) int sw(int x) {
	switch (x) {
	case 0: return 3;
	case 1: return 9;
	case 2: return 17;
	case 3: return 4;
	case 5: return 99;
	case 7: return 1;
	case 9: return 77;
	default: return -1;
	}
}

__attribute__((noinline)) double fl(double a) { return a * 3.14159265358979 + 2.718281828 * dconst[(int)a & 3]; }
__attribute__((noinline)) float ff(float a) { return a * 0.333333f + fscale; }
__attribute__((noinline)) long long bits(long long v) {
	long long r = 0;
	if (v & (1LL << 40)) r += 5;
	if (!(v & 8)) r += wide[v & 63];
	if (v) r ^= 0x123456789abcdefLL;
	return r + (long long)big;
}

#ifdef FREESTANDING
int run(int argc) {
	int s = 0;
	for (int i = 0; i < argc; i++) table[i & 255] = sw(i);
	s += (int)fl(argc) + (int)ff(argc) + (int)bits(argc);
	return s + table[3];
}
void _start(void) { run(3); for (;;) {} }
#else
int main(int argc, char **argv) {
	for (int i = 0; i < argc; i++) table[i & 255] = sw(atoi(argv[i]));
	printf("%d %f %f %lld\n", table[0], fl(argc), ff(argc), bits(argc));
	return (int)strlen(argv[0]);
}
#endif
