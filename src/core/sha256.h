/* SHA-256 (FIPS 180-4): policies record the hash of the config.json they were calibrated on. */
#ifndef MODES_CORE_SHA256_H
#define MODES_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

void sha256(const void *data, size_t len, uint8_t out[32]);
void sha256_hex(const uint8_t digest[32], char out[65]);

#endif
