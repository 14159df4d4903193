/* Hand-made PNG bytes for the image tests: chunks need big-endian lengths and a CRC-32 over their
 * type and data, or libpng stops at the checksum before the check a test means to reach. */
#ifndef MODES_TESTS_PNG_CRAFT_H
#define MODES_TESTS_PNG_CRAFT_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static inline void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

#endif
