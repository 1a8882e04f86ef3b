/* The scan data model: a regular grid of heights in micrometres, NaN where missing. */
#ifndef BF_SURFACE_H
#define BF_SURFACE_H

#include <stddef.h>
#include <stdint.h>

#define BF_MAX_POINTS (1L << 28) /* cap on nx*ny: real scans are < 2^24, this stops zip bombs */

/* What the X3P header said about where the scan came from. Empty strings when absent. */
typedef struct bf_meta {
  char manufacturer[128], model[128], serial[128], version[128];
  char creator[256], date[64], calibration_date[64], comment[1024];
  char probing_type[64], probing_id[128];
  char feature_type[8]; /* SUR, PRF, PCL */
} bf_meta;

/* One annotation of an X3P mask: a colour in mask.png and what it marks. */
typedef struct bf_mask_label {
  uint32_t rgb; /* 0xRRGGBB */
  char name[128];
} bf_mask_label;

/* Flags describing conversions the reader applied. */
enum {
  BF_SURF_XY_FROM_UM = 1 << 0, /* increments were in micrometres, not metres */
  BF_SURF_Z_FROM_UM = 1 << 1,  /* heights were in micrometres, not metres */
  BF_SURF_HAS_MASK = 1 << 2,   /* mask.png present */
  BF_SURF_HAS_VALID = 1 << 3,  /* valid.bin present and applied */
  BF_SURF_PROCESSED = 1 << 4   /* already cropped/levelled/filtered (set by feature code) */
};

typedef struct bf_surface {
  int nx, ny;        /* points along X (fastest) and Y */
  double dx, dy;     /* spacing, micrometres */
  float *z;          /* nx*ny heights in micrometres, z[y*nx+x], NaN = missing */
  uint32_t *mask;    /* NULL or nx*ny colours 0xRRGGBB from mask.png */
  uint32_t mask_background;  /* the mask's background colour */
  bf_mask_label *labels;     /* annotation legend of the mask */
  int nlabels;
  int flags;
  bf_meta meta;
} bf_surface;

/* Allocates an nx*ny surface filled with NaN. */
int bf_surface_new(bf_surface **out, int nx, int ny, double dx, double dy);
void bf_surface_free(bf_surface *s);
int bf_surface_copy(bf_surface **out, const bf_surface *s);

typedef struct bf_surface_stats {
  size_t n, nvalid;
  double missing_fraction;
  double zmin, zmax, zmean, zsd; /* over valid points, micrometres */
} bf_surface_stats;

void bf_surface_stats_get(bf_surface_stats *st, const bf_surface *s);

#endif
