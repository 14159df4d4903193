/* Image decoding (PNG, JPEG, WebP through Debian's libpng, libjpeg-turbo and libwebp) into 8-bit RGB.
 * The declared size is checked against a decode budget (100 megapixels by default) before any pixel
 * is decoded, so a small file claiming 100000 x 100000 pixels is refused, not allocated. A PNG must
 * also hold enough compressed data for the size it declares (deflate packs at most 1032 bytes into
 * one), so a few bytes claiming 9000 x 9000 pixels are refused before the pixel buffer exists; JPEG
 * (arithmetic coding, end-of-band runs) and lossless WebP can code a flat picture of any size in a
 * few bytes, so for them the budget alone bounds the allocation (3 bytes a pixel). The budget is
 * about decoding safely: the model's processor then resizes any picture into its own pixel budget.
 * Alpha is dropped and greyscale replicated, as PIL's convert("RGB") does for the reference
 * processor. */
#ifndef MODES_IO_IMAGE_H
#define MODES_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "modes.h"

#define IMAGE_DEFAULT_MAX_PIXELS ((int64_t)100000000) /* 100 megapixels: 300 MB of RGB */
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)      /* image_load refuses larger files unread */

typedef struct {
    uint8_t *rgb; /* [h][w][3], owned */
    int w, h;
} rgb_image;

/* Decodes a file; the format is found from its first bytes, not its name. max_pixels <= 0 means
 * IMAGE_DEFAULT_MAX_PIXELS, which also caps larger budgets. Every failure (unknown format, truncated
 * or corrupt data, zero size, over budget, a PNG with too little data for its size) is MODES_E_INPUT with a message naming the file, except
 * running out of memory. On failure out is zeroed.
 *
 * Conversions follow Pillow's convert("RGB") on the mode Pillow opens the file as:
 * - PNG: palette looked up, 1/2/4-bit grey scaled to 8 bits, alpha and tRNS ignored. 16-bit samples
 *   keep their high byte (Pillow's "RGB;16B", "RGBA;16B", "LA;16B" raw modes), except 16-bit grey
 *   without alpha, which Pillow opens as "I;16" and converts to RGB by clamping at 255.
 * - JPEG: libjpeg's own YCbCr->RGB (default IDCT and fancy upsampling, as Pillow); CMYK and YCCK are
 *   taken as Adobe's inverted CMYK (Pillow assumes that for every CMYK JPEG) and converted with
 *   Pillow's cmyk2rgb: R = K - round((255 - C) * K / 255), C and K being the samples libjpeg returns.
 *   A file that ends early is an error (Pillow: "image file is truncated"); other libjpeg warnings
 *   (extraneous bytes, ...) are ignored, as Pillow does. EXIF orientation is not applied.
 * - WebP: still images, lossy or lossless; animations are refused. */
int image_load(const char *path, int64_t max_pixels, rgb_image *out, modes_error *err);
/* The same from memory; `what` names the source in messages. */
int image_decode(const void *data, size_t len, const char *what, int64_t max_pixels, rgb_image *out,
                 modes_error *err);
void rgb_image_free(rgb_image *img);

#endif
