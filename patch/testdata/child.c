/* child.c: the process the patch tests commit into through ptrace (built
 * with gcc -no-pie at test time).
 *
 * usage: child N MODE
 *   N worker threads call value() and compute(x) in a loop; every 20000
 *   calls (every call in "busy" mode prints every 1M) they print
 *   "V C\n": value()'s last result and compute(1)'s. value() returns 1,
 *   value2() 2; compute(x) returns 3x+1, hook_compute(x) adds 1000 through
 *   orig_compute (the detour trampoline, set by the test). Any other result
 *   prints "bad ..." and exits with status 5.
 *   MODE "spin": one more thread calls spin() in a loop until a byte
 *   arrives on stdin, then prints
 *   "spun H S": how often hook_spin ran, and how often spin's body did.
 * "ready\n" is printed once every thread runs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline, noipa)) int value(void) { return 1; }
__attribute__((noinline, noipa)) int value2(void) { return 2; }

__attribute__((noinline, noipa)) int compute(int x) {
	volatile int y = x;
	return y * 3 + 1;
}

int (*orig_compute)(int);

__attribute__((noinline, noipa)) int hook_compute(int x) { return orig_compute(x) + 1000; }

volatile long spins;
volatile int spin_stop;
volatile int hooked;
void (*orig_spin)(void);

/* spin's instructions: 2 + 2 + 7 (RIP-relative) + 1 bytes, so the 5-byte
 * jump covers three instructions and a detour moves a RIP-relative one. */
__attribute__((naked, noinline)) void spin(void) {
	__asm__ volatile(
	    "xorl %eax, %eax\n"
	    "incl %eax\n"
	    "addq %rax, spins(%rip)\n"
	    "ret\n");
}

__attribute__((noinline, noipa)) void hook_spin(void) {
	hooked++;
	orig_spin();
}

static int busy;

static void bad(const char *what, int v) {
	char buf[64];
	int n = snprintf(buf, sizeof buf, "bad %s %d\n", what, v);
	(void)!write(1, buf, n);
	_exit(5);
}

static void *worker(void *arg) {
	(void)arg;
	for (;;) {
		int v = 0, c = 0;
		for (int i = 0; i < (busy ? 1000000 : 20000); i++) {
			v = value();
			if (v != 1 && v != 2)
				bad("value", v);
			int x = i & 7;
			c = compute(x);
			if (c != 3 * x + 1 && c != 3 * x + 1001)
				bad("compute", c);
		}
		c = compute(1);
		char buf[32];
		int n = snprintf(buf, sizeof buf, "%d %d\n", v, c);
		if (write(1, buf, n) != n)
			exit(3);
		if (!busy) {
			struct timespec ts = {0, 2 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static void *spinner(void *arg) {
	(void)arg;
	while (!spin_stop)
		spin();
	char buf[64];
	int n = snprintf(buf, sizeof buf, "spun %d %ld\n", hooked, spins);
	(void)!write(1, buf, n);
	return NULL;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 2;
	const char *mode = argc > 2 ? argv[2] : "loop";
	busy = strcmp(mode, "busy") == 0;
	setvbuf(stdout, NULL, _IONBF, 0);
	pthread_t t;
	for (int i = 0; i < n; i++)
		pthread_create(&t, NULL, worker, NULL);
	if (strcmp(mode, "spin") == 0)
		pthread_create(&t, NULL, spinner, NULL);
	(void)!write(1, "ready\n", 6);
	char b;
	if (read(0, &b, 1) == 1)
		spin_stop = 1;
	for (;;)
		pause();
}
