/* SPDX-License-Identifier: MIT */
/* Fuzz target: the replay driver's CSV reader (see fuzz_replay.h). */
#include "fuzz_main.h"
#include "fuzz_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_replay(data, size, ".csv");
}
