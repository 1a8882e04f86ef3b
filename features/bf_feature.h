/* A comparison-ready feature of one scan: what the store keeps and the engine compares. */
#ifndef BF_FEATURE_H
#define BF_FEATURE_H

#include "bf_surface.h"

/* BF_KIND_FIRINGPIN: a cartridge item's second mark (bf_firingpin.h), stored beside the
 * breech face; never an item kind of its own. */
enum { BF_KIND_CARTRIDGE = 1, BF_KIND_BULLET = 2, BF_KIND_FIRINGPIN = 3 };

/* Quality flags (any kind). A flagged feature is stored and reported, never silently scored. */
enum {
  BF_Q_MOSTLY_MISSING = 1 << 0, /* too few valid points */
  BF_Q_NO_REGION = 1 << 1,      /* cartridge: no breech face found / bullet: no grooves found */
  BF_Q_TOO_SHORT = 1 << 2,      /* bullet: signature too short to compare */
  BF_Q_SPACING = 1 << 3,        /* spacing far from the comparison spacing */
  BF_Q_NO_MARKS = 1 << 4,       /* no striae / texture above noise */
  BF_Q_ORIENTATION = 1 << 5     /* bullet: orientation flag contradicts the data */
};

/* Cartridge: the processed breech face, nx*ny heights at dx (= dy) micrometres.
 * Bullet land: the striation signature, nx points at dx micrometres, ny = 1.
 * params[] holds per-kind scalars documented in the extracting module's header. */
typedef struct bf_feature {
  int kind;
  int nx, ny;
  double dx, dy;
  float *z; /* nx*ny, micrometres, NaN = missing */
  int land; /* bullet: land number, 1-based; 0 when unknown or a cartridge */
  int quality_flags;
  float valid_fraction;
  int version; /* algorithm version that made it */
  double params[8];
} bf_feature;

int bf_feature_new(bf_feature **out, int kind, int nx, int ny, double dx, double dy);
/* A deep copy of f (its heights and every field). */
int bf_feature_dup(bf_feature **out, const bf_feature *f);
void bf_feature_free(bf_feature *f);
const char *bf_kind_name(int kind);
/* The quality flags as comma-separated names from the one table ("no-grooves" for a bullet's
 * BF_Q_NO_REGION, "no-region" for a cartridge's), "" when none; buf is returned. */
const char *bf_quality_names(char *buf, size_t len, int flags, int kind);

/* Runs the pipeline of `kind` on a scan with default options: the breech-face pipeline for
 * cartridge cases, the land-signature pipeline for bullet lands (land = land number, 1-based,
 * or 0). A usable but poor scan gives a feature with quality_flags set, not an error.
 * Defined in extract.c. */
int bf_feature_extract(bf_feature **out, const bf_surface *scan, int kind, int land);

#endif
