// Functions for the image package's own PE fixtures (build.sh): leaf and
// non-leaf functions, a large frame (unpacked ARM64 .xdata), an export, a
// static function with a name longer than 80 bytes (saferwall/pe truncates
// those), and one only reached by a direct call.

int counter;

__declspec(noinline) static int leaf_only_called(int x) { return x * 3 + counter; }

__declspec(noinline) int
a_function_whose_name_is_deliberately_much_longer_than_eighty_bytes_to_test_coff_long_names(int x)
{
	return leaf_only_called(x) ^ 0x55;
}

__declspec(noinline) int big_frame(int *a, int n)
{
	int buf[300];
	for (int i = 0; i < n; i++)
		buf[i % 300] = a[i] + leaf_only_called(i);
	int s = 0;
	for (int i = 0; i < 300; i++)
		s += buf[i] * leaf_only_called(s);
	return s;
}

__declspec(noinline) int middle(int x) { return leaf_only_called(x) + leaf_only_called(x + 1); }

__declspec(dllexport) int exported_add(int x)
{
	return middle(x) + big_frame(&x, 1) +
	       a_function_whose_name_is_deliberately_much_longer_than_eighty_bytes_to_test_coff_long_names(x);
}

__declspec(dllexport) int exported_leaf(int x) { return x + 1; }

int _DllMainCRTStartup(void *h, unsigned reason, void *r)
{
	(void)h; (void)r;
	return reason != 0;
}
