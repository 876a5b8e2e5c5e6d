/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the replay driver's EDF/BDF reader (EDFlib's header parser
 * plus emgd's signal selection and chunked reads; see fuzz_replay.h).  The
 * first byte picks the suffix, .edf or .bdf: EDFlib decides the format from
 * the header, emgd only from the name.
 */
#include "fuzz_main.h"
#include "fuzz_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	return fuzz_replay(data + 1, size - 1, data[0] & 1 ? ".bdf" : ".edf");
}
