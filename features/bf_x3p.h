/* X3P (ISO 5436-2 / ISO 25178-72) reader and writer. */
#ifndef BF_X3P_H
#define BF_X3P_H

#include "bf_surface.h"

#define BF_X3P_MAX_MEMBER (1L << 31) /* largest zip member we inflate (2 GiB): zip-bomb guard */

/* What the reader saw and did, for `bfm info`. */
typedef struct bf_x3p_info {
  char data_type;        /* 'D', 'F', 'I' or 'L' for the Z axis */
  char main_xml_path[256]; /* where main.xml was inside the zip (it may be in a sub-folder) */
  int xy_converted_from_um; /* increments were micrometres: converted */
  int z_converted_from_um;  /* heights were micrometres: converted */
  int md5_main_ok;       /* 1 verified, 0 absent (no md5checksum.hex) */
  int md5_data_ok;       /* 1 verified, 0 absent (no MD5ChecksumPointData) */
  int md5_valid_ok;      /* 1 verified, 0 absent (no valid.bin or no MD5ChecksumValidPoints) */
  int has_mask, has_valid;
  double z_increment, z_offset; /* raw CZ values from the header */
  long file_bytes;
  long nx, ny;           /* points along X and Y */
  double dx_um, dy_um;   /* spacing in micrometres, after the unit decision */
  char feature_type[8];  /* "SUR" (the only one read) */
  bf_meta meta;          /* Record2: instrument, creator, date (also in the surface read) */
} bf_x3p_info;

/* Reads path into a new surface (heights in micrometres, NaN missing). info may be NULL.
 * Every failure names path and the problem, on one line, in bf_error_last(). Checksums are
 * verified (main.xml, data.bin, valid.bin): a mismatch is BF_ECHECKSUM. Units: increments over
 * 1 mm, or a 1st-99th percentile height spread over 1 cm (1 mm when the increments were
 * micrometres), are taken as micrometres and flagged in info and s->flags. Refused: anything
 * but a regular file (checked before it is read, so a FIFO cannot hang the reader), FeatureType
 * other than SUR, X and Y increments in different units, a spacing outside 1 nm - 1 mm or axes
 * more than 20x apart, and a big zip member compressed more than 64:1 (a bomb). */
int bf_x3p_read(bf_surface **out, const char *path, bf_x3p_info *info);
/* Reads main.xml only (no point data is inflated) and checks it as bf_x3p_read does: regular
 * file, zip, feature type, axes, spacing and size. Fills info's data_type, main_xml_path,
 * xy_converted_from_um, z_increment, z_offset, file_bytes, nx, ny, dx_um, dy_um, feature_type
 * and meta; the checksum and mask fields stay 0. */
int bf_x3p_probe(const char *path, bf_x3p_info *info);
/* The same from bytes already in memory (name is used in messages). */
int bf_x3p_read_mem(bf_surface **out, const void *buf, size_t len, const char *name, bf_x3p_info *info);

/* Writes s as X3P with Z as 'D' (float64) or 'F' (float32), in metres, standard layout
 * (main.xml valid against ISO5436_2.xsd, bindata/data.bin, md5checksum.hex, and the mask as
 * x3ptools writes it), both checksums. Reading it back gives the same floats, bit for bit,
 * for 'D' always and for 'F' when the heights came from a metre F file; about 4 % of arbitrary
 * floats have no float in metres and come back one ulp away. Writes to a temporary file and
 * renames it into place. */
int bf_x3p_write(const char *path, const bf_surface *s, char data_type);

#endif
