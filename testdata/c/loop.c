/*
 * loop.c: the long-running harness shared by every build and both versions.
 * Every interval it calls each function of interest once and prints one line
 *
 *   n=<counter> pid=<pid> greet=... leaf=... zero=... ...
 *
 * with a single write, so a test can read results line by line while a patch
 * is applied. libc-free (the ARM64 PE has no C runtime); the os_*.c file of
 * each platform supplies output, sleep and the process id.
 */
#include "fixture.h"

static char line[512];
static int pos;

FIXTURE void put_str(const char *s)
{
	while (*s != 0 && pos < (int)sizeof line - 1)
		line[pos++] = *s++;
}

FIXTURE void put_int(long long v)
{
	char digits[24];
	int n = 0;
	unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;

	do {
		digits[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		digits[n++] = '-';
	while (n > 0 && pos < (int)sizeof line - 1)
		line[pos++] = digits[--n];
}

FIXTURE void put_field(const char *key, long long v)
{
	put_str(key);
	put_int(v);
}

FIXTURE void fixture_run(long long iterations, int interval_ms)
{
	long long n;

	for (n = 0; n < iterations; n++) {
		int c = (int)(n & 0x7fffffff);
		long long rec;

		pos = 0;
		put_field("n=", n);
		put_field(" pid=", os_pid());
		put_str(" greet=");
		put_str(greeting());
		put_field(" leaf=", leaf_mix(c, 5));
		put_field(" zero=", zero());
		put_field(" slot=", slot_get(c % 12));
		rec = record(c);
		put_field(" rec=", rec);
		put_field(" total=", read_total());
		put_field(" hits=", read_hits());
		put_field(" scale=", scale(c));
		put_field(" disp=", dispatch(c % 13, c));
		put_field(" fib=", fib(c % 16));
		put_field(" moved=", moved_mix(c));
		put_field(" callee=", calls_moved(c));
		put_str(" label=");
		put_str(label(c));
		put_field(" class=", classify(c % 12, c));
		line[pos++] = '\n';
		os_write(line, pos);
		if (interval_ms > 0 && n + 1 < iterations)
			os_sleep_ms(interval_ms);
	}
}
