/* One rule for what an item's scans are: "a bullet is its land scans in land order".
 *
 * Every front end (compare, features, match, firearm/evidence add, ingest) turns what the user
 * gave — files, folders of *.x3p, comma (command line) or ';' (manifest) separated lists — into
 * the same ordered list of {path, land number}:
 *   - a folder contributes its *.x3p files, sorted by the land number in their names, then by
 *     name (natural order: "land2" before "land10");
 *   - lists and operands keep the order given;
 *   - land numbers: given explicitly (a manifest's `lands` column), else taken from the file
 *     names ("...Land3.x3p", "land_3", "LAND-3") when EVERY file carries one and no two share
 *     one, else the position 1..n;
 *   - the final list is in land order.
 * So a 6-land bullet with land 4 left out is lands 1,2,3,5,6 on every path, and the comparison
 * places the five lands where they belong. A cartridge case is the one-scan case (land 0 is
 * recorded by the callers for cartridges). */
#ifndef BF_SCANSET_H
#define BF_SCANSET_H

#include "bf_surface.h"

#define BF_SCANSET_MAX 64 /* scans in one item */

typedef struct bf_scan_ref {
  char *path;
  int land; /* 1-based once bf_scanset_number ran */
} bf_scan_ref;

typedef struct bf_scanset {
  int n;
  bf_scan_ref v[BF_SCANSET_MAX];
  int from_names; /* 1 when the land numbers came from the file names */
} bf_scanset;

/* Land number in a file name ("...Land3.x3p", "land_3.x3p"), 0 when it has none. */
int bf_scanset_land_number(const char *path);

/* Appends spec: a file, a folder (its *.x3p) or a list of either separated by sep (0: no
 * splitting). A relative path is taken relative to dir when dir is not NULL. Leading blanks of
 * list entries are dropped; empty entries are skipped. Names the path and problem on failure. */
int bf_scanset_add(bf_scanset *s, const char *spec, char sep, const char *dir);

/* Numbers the lands (see above) and puts the list in land order. lands (n of them, the count
 * of scans) gives them explicitly; NULL: from the names or by position. Explicit numbers must be
 * 1..BF_SCANSET_MAX and distinct (BF_EINVAL). */
int bf_scanset_number(bf_scanset *s, const int *lands, int n);

/* add for each of specs[0..nspecs) then number(NULL): the whole rule in one call. */
int bf_scanset_build(bf_scanset *s, char *const *specs, int nspecs, char sep, const char *dir);

void bf_scanset_clear(bf_scanset *s);

/* Which kind a scan shows: a long narrow scan (long side >= 1.8x the short side) is a bullet
 * land, else a cartridge case (BF_KIND_*). */
int bf_scanset_guess_kind(const bf_surface *s);
/* The same rule from a header's size and spacing (bf_x3p_probe), without reading the points. */
int bf_scanset_shape_kind(int nx, int ny, double dx, double dy);

#endif
