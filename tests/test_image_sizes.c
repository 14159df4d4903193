/* Pictures of any size on the embedded model (models/shapes-vqa: patch 16, merge 2, so factor 32;
 * min_pixels 36864, max_pixels 102400). Each picture is made here (libjpeg, libpng) and must be
 * resized as the reference processor's smart_resize does, worked out by hand below:
 * - 1280x720 JPEG: rounded 1280x704 is over max_pixels; beta = sqrt(921600 / 102400) = 3,
 *   floor(1280 / 3 / 32) = 13 and floor(720 / 3 / 32) = 7 -> 416x224, 13x7 = 91 vision tokens.
 * - 4000x30 PNG (aspect 133): rounded 4000x32 is over; beta = sqrt(120000 / 102400) = 1.0825,
 *   floor(4000 / 1.0825 / 32) = 115 -> 3680, and floor(30 / 1.0825 / 32) = 0 held at one factor ->
 *   32: 3680x32 (over max_pixels, as in the reference), 115x1 = 115 tokens.
 * - 10x10 PNG: rounds to 0x0, under min_pixels; beta = sqrt(36864 / 100) = 19.2,
 *   ceil(10 * 19.2 / 32) = 6 -> 192x192, 6x6 = 36 tokens.
 * (The reference cases in ../shared/ref/preprocess use another budget and sizes up to 640x480; their
 * sizes are checked by test_preprocess.) `modes run --stats` and `--json` report the same numbers.
 * Only what cannot be decoded safely is refused, with exit 1: a PNG declaring 9000x9000 with a few
 * bytes of data (before its 243 MB buffer exists) and a picture over 100 megapixels. */
#define _XOPEN_SOURCE 700
#include <png.h>
#include <stdint.h>
#include <unistd.h>

/* jpeglib.h needs size_t and FILE declared first. */
#include <jpeglib.h>

#include "golden.h"
#include "png_craft.h"

static char tmp[] = "/tmp/modes-image-sizes-XXXXXX";

static const char *tmp_file(const char *name) {
    static char buf[4][1200];
    static int slot;
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s", tmp, name);
    return b;
}

static uint8_t shade(int x, int y, int c) { return (uint8_t)((x * (c + 1) + y * 3) & 255); }

static void write_jpeg(const char *path, int w, int h) {
    FILE *f = fopen(path, "wb");
    if (!f) exit(2);
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 85, TRUE);
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * 3);
    while (ci.next_scanline < ci.image_height) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) row[x * 3 + c] = shade(x, (int)ci.next_scanline, c);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    fclose(f);
}

static void write_png(const char *path, int w, int h) {
    FILE *f = fopen(path, "wb");
    if (!f) exit(2);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    unsigned char *row = malloc((size_t)w * 3);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "writing %s failed\n", path);
        exit(2);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) row[x * 3 + c] = shade(x, y, c);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    fclose(f);
}

/* A well-formed PNG skeleton (every CRC right) declaring w x h RGB pixels, with an IDAT of 8 bytes. */
static void write_png_claim(const char *path, uint32_t w, uint32_t h) {
    unsigned char b[80];
    size_t n = 0;
    memcpy(b, "\x89PNG\r\n\x1a\n", 8), n = 8;
    put_be32(b + n, 13), memcpy(b + n + 4, "IHDR", 4);
    put_be32(b + n + 8, w), put_be32(b + n + 12, h);
    b[n + 16] = 8, b[n + 17] = 2, b[n + 18] = 0, b[n + 19] = 0, b[n + 20] = 0;
    put_be32(b + n + 21, crc32_of(b + n + 4, 17)), n += 25;
    static const unsigned char z[8] = {0x78, 0x9c, 0xed, 0xc1, 0x01, 0x0d, 0x00, 0x00}; /* a deflate start */
    put_be32(b + n, 8), memcpy(b + n + 4, "IDAT", 4), memcpy(b + n + 8, z, 8);
    put_be32(b + n + 16, crc32_of(b + n + 4, 12)), n += 20;
    put_be32(b + n, 0), memcpy(b + n + 4, "IEND", 4), put_be32(b + n + 8, crc32_of(b + n + 4, 4)), n += 12;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f)) exit(2);
}

typedef struct {
    const char *name;
    int w, h;           /* the picture */
    int rw, rh, tw, th; /* smart_resize by hand (see the top of this file) */
} size_case;

static const size_case cases[] = {
    {"photo.jpg", 1280, 720, 416, 224, 13, 7},
    {"wide.png", 4000, 30, 3680, 32, 115, 1},
    {"tiny.png", 10, 10, 192, 192, 6, 6},
};
enum { N_CASES = sizeof cases / sizeof *cases };

static void check_info(const char *label, const modes_image_info *in, const size_case *c) {
    CHECKF(in->width == c->w && in->height == c->h && in->resized_width == c->rw && in->resized_height == c->rh &&
               in->tokens_w == c->tw && in->tokens_h == c->th && in->tokens == c->tw * c->th,
           "%s %s: %dx%d -> %dx%d (%dx%d = %d tokens), want %dx%d -> %dx%d (%dx%d)", label, c->name, in->width,
           in->height, in->resized_width, in->resized_height, in->tokens_w, in->tokens_h, in->tokens, c->w, c->h,
           c->rw, c->rh, c->tw, c->th);
}

static void test_library(const char *model) {
    modes_model *m = NULL;
    modes_error err = {0};
    CHECKF(modes_model_load(model, &m, &err) == 0, "%s", err.msg);
    if (!m) return;
    char bufs[N_CASES][1200];
    const char *paths[N_CASES];
    for (int i = 0; i < N_CASES; i++) {
        paths[i] = strcpy(bufs[i], tmp_file(cases[i].name));
        modes_image_info in;
        int rc = modes_image_probe(m, paths[i], &in, &err);
        CHECKF(rc == 0, "probe %s: %s", cases[i].name, err.msg);
        if (!rc) check_info("probe", &in, &cases[i]);
    }
    modes_prompt *p = NULL;
    int rc = modes_prompt_new(m, NULL, "What shape is it?", paths, N_CASES, NULL, &p, &err);
    CHECKF(rc == 0, "prompt: %s", err.msg);
    if (!rc) {
        int n;
        const modes_image *imgs = modes_prompt_images(p, &n);
        for (int i = 0; i < N_CASES; i++) {
            modes_image_info in;
            CHECK(modes_prompt_image_info(p, i, &in, &err) == 0);
            check_info("prompt", &in, &cases[i]);
            CHECK(imgs[i].grid_h == cases[i].rh / 16 && imgs[i].grid_w == cases[i].rw / 16);
            CHECK(modes_image_tokens(m, &imgs[i]) == cases[i].tw * cases[i].th);
        }
        modes_image_info in;
        CHECK(modes_prompt_image_info(p, N_CASES, &in, &err) == MODES_E_INPUT && strstr(err.msg, "no image"));
        CHECK(modes_prompt_image_info(p, 0, NULL, &err) == MODES_E_INPUT && strstr(err.msg, "NULL"));
    }
    modes_prompt_free(p);
    modes_image_info in;
    CHECK(modes_image_probe(NULL, paths[0], &in, &err) == MODES_E_INPUT && strstr(err.msg, "NULL"));
    CHECK(modes_image_probe(m, NULL, &in, &err) == MODES_E_INPUT && strstr(err.msg, "NULL"));
    CHECK(modes_prompt_image_info(NULL, 0, &in, &err) == MODES_E_INPUT && strstr(err.msg, "NULL"));
    CHECK(modes_image_probe(m, tmp_file("claim.png"), &in, &err) == MODES_E_INPUT && strstr(err.msg, "too few"));
    modes_model_free(m);
}

/* Runs cmd with stdout and stderr in out; returns the exit status. */
static int run_cmd(const char *cmd, char *out, size_t cap) {
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1; echo \"rc=$?\"", cmd);
    if (golden_read_cmd(full, out, cap) < 0) return -1;
    const char *r = strstr(out, "rc=");
    int rc = -1;
    while (r) {
        rc = atoi(r + 3);
        r = strstr(r + 3, "rc=");
    }
    return rc;
}

static void test_cli(const char *model) {
    char cmd[4096], out[16384], want[512];
    int len = snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'What shape is it?' -n 2", golden_bin(), model);
    for (int i = 0; i < N_CASES; i++) len += snprintf(cmd + len, sizeof cmd - (size_t)len, " --image '%s'", tmp_file(cases[i].name));
    char stats[4200], json[4200];
    snprintf(stats, sizeof stats, "%s --stats", cmd);
    snprintf(json, sizeof json, "%s --json", cmd);
    CHECKF(run_cmd(stats, out, sizeof out) == 0, "run --stats failed: %s", out);
    for (int i = 0; i < N_CASES; i++) {
        const size_case *c = &cases[i];
        snprintf(want, sizeof want, "image %d (%s): %dx%d -> %dx%d pixels (%dx%d merged tokens = %d vision tokens)",
                 i + 1, tmp_file(c->name), c->w, c->h, c->rw, c->rh, c->tw, c->th, c->tw * c->th);
        CHECKF(strstr(out, want) != NULL, "--stats lacks '%s':\n%s", want, out);
    }
    CHECKF(run_cmd(json, out, sizeof out) == 0, "run --json failed: %s", out);
    for (int i = 0; i < N_CASES; i++) {
        const size_case *c = &cases[i];
        snprintf(want, sizeof want,
                 "\"width\": %d, \"height\": %d, \"resized_width\": %d, \"resized_height\": %d, \"tokens_w\": %d, "
                 "\"tokens_h\": %d, \"tokens\": %d}",
                 c->w, c->h, c->rw, c->rh, c->tw, c->th, c->tw * c->th);
        CHECKF(strstr(out, "\"images\": [{\"path\": ") && strstr(out, want), "--json lacks '%s':\n%s", want, out);
    }

    /* Refused before decoding, exit 1, one clear line naming the file. */
    static const struct { const char *file, *want; } bad[] = {
        {"claim.png", "declares 9000 x 9000 pixels but holds 8 bytes of compressed pixel data, too few"},
        {"over.png", "declares 12000 x 9000 pixels, over the decode limit of 100000000 pixels"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'What shape is it?' -n 1 --image '%s'", golden_bin(), model,
                 tmp_file(bad[i].file));
        int rc = run_cmd(cmd, out, sizeof out);
        CHECKF(rc == 1 && strstr(out, bad[i].want) && strstr(out, tmp_file(bad[i].file)) && !strstr(out, "AddressSanitizer"),
               "%s: rc %d, output:\n%s", bad[i].file, rc, out);
    }
}

int main(void) {
    char model[1024];
    const char *tests = getenv("MODES_TESTS");
    snprintf(model, sizeof model, "%s/../models/shapes-vqa", tests ? tests : "tests");
    if (!mkdtemp(tmp)) return 2;
    write_jpeg(tmp_file("photo.jpg"), 1280, 720);
    write_png(tmp_file("wide.png"), 4000, 30);
    write_png(tmp_file("tiny.png"), 10, 10);
    write_png_claim(tmp_file("claim.png"), 9000, 9000);
    write_png_claim(tmp_file("over.png"), 12000, 9000);
    test_library(model);
    test_cli(model);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return check_done();
}
