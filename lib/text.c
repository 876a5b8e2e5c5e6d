/* SPDX-License-Identifier: MIT */
/* emg_text: clean client text for logs and annotations (see text.h). */
#include "text.h"

#include <stdint.h>

/* Length of the valid UTF-8 sequence at s and its code point, or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, c = s[0] & 0x1f, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3, c = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0; /* continuation byte, overlong lead (c0, c1) or beyond U+10FFFF */
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0; /* overlong, out of range, or a UTF-16 surrogate */
	*cp = c;
	return n;
}

size_t emg_text_clean(char *dst, size_t size, const char *src)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t in = 0, out = 0;

	if (!size)
		return 0;
	while (s[in]) {
		uint32_t cp;
		size_t n = utf8_seq(s + in, &cp);

		if (out + (n ? n : 1) > size - 1)
			break; /* the next character does not fit whole */
		if (n == 0) {
			dst[out++] = '?';
			in++;
		} else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
			/* C0 (newline, ESC), DEL and C1 (CSI U+009B): a journal or terminal acts on them */
			dst[out++] = ' ';
			in += n;
		} else {
			for (size_t i = 0; i < n; i++)
				dst[out++] = (char)s[in + i];
			in += n;
		}
	}
	dst[out] = '\0';
	return in;
}

int emg_text_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	for (; *p; p += n) {
		n = utf8_seq(p, &cp);
		if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
			return 0;
	}
	return 1;
}
