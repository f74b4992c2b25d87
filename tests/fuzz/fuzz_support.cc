#include "tests/fuzz/fuzz_support.h"
