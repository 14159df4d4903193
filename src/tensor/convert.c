#include "tensor/tensor.h"

#include <math.h>

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void widen(float *out, const void *src, modes_dtype t, size_t first, size_t n) {
    if (t == DT_F32) {
        memcpy(out, (const float *)src + first, n * sizeof *out);
        return;
    }
    const uint16_t *h = (const uint16_t *)src + first;
    if (t == DT_BF16)
        for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(h[i]);
    else
        for (size_t i = 0; i < n; i++) out[i] = f16_to_f32(h[i]);
}
