/* The pictures of a comparison, drawn into RGB images (0xRRGGBB, row-major): what
 * `bfm compare --png`, `bfm show` and the web review screen (`bfm serve`) show. One place for
 * the drawing, so every front end shows the same thing; writing a file or a PNG buffer is the
 * caller's choice (bf_image_write, bf_image_png). */
#ifndef BF_DRAW_H
#define BF_DRAW_H

#include "bf_bullet.h"
#include "bf_cmc.h"
#include "bf_feature.h"
#include "bf_striae.h"

#include <stddef.h>
#include <stdint.h>

typedef struct bf_image {
  int w, h;
  uint32_t *px; /* w*h colours 0xRRGGBB */
} bf_image;

/* Frees the pixels and zeroes the struct (a zeroed image is a no-op). */
void bf_image_clear(bf_image *im);
/* Writes the image as a file (format from the extension: .png). */
int bf_image_write(const bf_image *im, const char *path);
/* Encodes the image as PNG into a malloc'ed buffer (caller frees). */
int bf_image_png(const bf_image *im, uint8_t **png, size_t *len);

/* Heights to colours into rgb (row stride `stride` pixels): a blue-white-red ramp over
 * +-3 robust sd; missing points light grey. */
void bf_draw_heights(uint32_t *rgb, int stride, const float *z, int nx, int ny);

/* Cartridge cases: the reference a (left) with its congruent CMC cells beside the target b
 * (right) rotated by the consensus angle, the cells drawn where they registered. Both at the
 * comparison spacing. */
int bf_draw_cmc_pair(bf_image *out, const bf_feature *a, const bf_feature *b,
                     const bf_cmc_result *r);
/* Bullets: for the best phase, each scored land pair's aligned signatures as two traces
 * (a dark blue, b red), one band per land pair. fa/fb are the lands as given to
 * bf_bullet_compare. BF_ENOTFOUND when no land pair on the best phase was scored. */
int bf_draw_bullet_pair(bf_image *out, const bf_bullet_result *r, bf_feature *const *fa,
                        bf_feature *const *fb);
/* Bullets: the land-score matrix, one square per land pair (rows: lands of a, columns: lands
 * of b), white (0) to dark green (1), unscored pairs hatched grey, the best phase's pairs
 * framed in red. */
int bf_draw_land_matrix(bf_image *out, const bf_bullet_result *r);
/* Bullets, one land's extraction (`bfm features --show`): the crosscut with the fitted land
 * curve and the groove cuts (red) above, the signature below. */
int bf_draw_land_steps(bf_image *out, const bf_bullet_trace *t, const bf_feature *f);

#endif
