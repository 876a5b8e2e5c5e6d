/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "ads1299.h"
#include "batch.h"

int emg_batch_init(struct emg_batch *b, unsigned cap, unsigned channels, unsigned gain,
		   emg_batch_emit_fn emit, void *ud, uint64_t *emitted)
{
	if (!emit || !emitted || !cap || !channels || (size_t)cap * channels > EMG_BATCH_MAX_FLOATS ||
	    emg_ads1299_gain_index(gain) < 0)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->cap = cap;
	b->channels = channels;
	b->uv_per_count = emg_ads1299_uv_per_count(gain);
	b->emit = emit;
	b->ud = ud;
	b->emitted = emitted;
	return 0;
}

void emg_batch_reset(struct emg_batch *b, uint64_t next_seq)
{
	b->n = 0;
	b->lost = 0;
	b->seq = next_seq;
}

uint64_t emg_batch_next_seq(const struct emg_batch *b)
{
	return b->seq;
}

void emg_batch_flush(struct emg_batch *b)
{
	if (!b->n)
		return;
	b->emit(b->ud, b->out, b->n, b->first_seq, b->lost);
	*b->emitted += b->n;
	b->n = 0;
	b->lost = 0;
}

void emg_batch_put(struct emg_batch *b, const int32_t *counts, uint32_t lost)
{
	if (lost) {
		emg_batch_flush(b);
		b->seq += lost;
		b->lost = lost;
	}
	if (b->n == 0)
		b->first_seq = b->seq;
	float *o = b->out + (size_t)b->n * b->channels;
	for (unsigned c = 0; c < b->channels; c++)
		o[c] = (float)((double)counts[c] * b->uv_per_count);
	b->n++;
	b->seq++;
	if (b->n == b->cap)
		emg_batch_flush(b);
}

void emg_framing_reset(struct emg_framing *f)
{
	f->have = 0;
	f->locked = false;
	f->have_last = false;
}

void emg_framing_lose(struct emg_framing *f, uint64_t *losses)
{
	if (f->locked) {
		f->locked = false;
		(*losses)++;
	}
}

void emg_framing_realign(struct emg_framing *f, uint8_t *buf, uint8_t header, uint64_t *skipped)
{
	unsigned i = 1;

	while (i < f->have && buf[i] != header)
		i++;
	*skipped += i;
	memmove(buf, buf + i, f->have - i);
	f->have -= i;
}
