/* Shared by the batch tests (test_batch, test_batch_mpi): a small synthetic cartridge store and a
 * store's hits as rows sorted by (query, candidate). */
#ifndef BF_BATCH_KIT_H
#define BF_BATCH_KIT_H

#include "bf_error.h"
#include "bf_prefilter.h"
#include "bf_store.h"
#include "bf_synth.h"
#include "bf_x3p.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* nf firearms with 2 test-fired cases each, and per-2 crime-scene cases per firearm (its later
 * firings, each its own evidence item), small processed synthetic breech faces. Writes the scans
 * as X3P too. */
static inline int make_store_n(const char *path, const char *dir, int nf, int per, int mixed)
{
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  so.cart_diameter = 1600; /* small: the CLI plumbing is under test, not accuracy */
  so.max_rotation = 20;
  bf_synth *g = NULL;
  bf_store *st = NULL;
  int rc = bf_synth_new(&g, &so);
  if (!rc)
    rc = bf_store_create(path, "tester");
  if (!rc)
    rc = bf_store_open(&st, path, BF_STORE_WRITE, "tester");
  if (!rc)
    rc = bf_store_begin(st);
  int64_t *fids = calloc((size_t)nf + 1, sizeof *fids);
  if (!fids)
    rc = BF_ENOMEM;
  /* mixed: firing-major order (every firearm's first firing, then the second...), so the mates
   * of an item are far from it in the queue */
  for (int idx = 0; idx < nf * per && !rc; idx++) {
    int fa = mixed ? idx % nf : idx / per, k = mixed ? idx / nf : idx % per;
    int64_t eid = 0, item = 0;
    if (k == 0) {
      bf_firearm f;
      memset(&f, 0, sizeof f);
      snprintf(f.serial, sizeof f.serial, "SN-%d", fa);
      snprintf(f.make, sizeof f.make, "Ruger");
      snprintf(f.model, sizeof f.model, "P95");
      snprintf(f.calibre, sizeof f.calibre, "9mm");
      snprintf(f.export_country, sizeof f.export_country, "Utopia");
      rc = bf_store_add_firearm(st, &fids[fa], &f);
    }
    int64_t fid = fids[fa];
    {
      if (k >= 2) {
        bf_evidence e;
        memset(&e, 0, sizeof e);
        snprintf(e.case_no, sizeof e.case_no, "C-%d", 100 * (k - 1) + fa);
        snprintf(e.item, sizeof e.item, "1");
        snprintf(e.agency, sizeof e.agency, "Met");
        e.kind = BF_KIND_CARTRIDGE;
        rc = bf_store_add_evidence(st, &eid, &e);
      }
      bf_surface *s = NULL;
      bf_feature *ft = NULL;
      char x3p[4300];
      snprintf(x3p, sizeof x3p, "%s/F%d-%d.x3p", dir, fa, k);
      if (!rc)
        rc = bf_synth_cartridge(&s, g, fa, k, NULL);
      if (!rc)
        rc = bf_x3p_write(x3p, s, 'F');
      uint8_t *bytes = NULL;
      size_t nb = 0;
      FILE *fp = fopen(x3p, "rb");
      if (!rc && fp) {
        fseek(fp, 0, SEEK_END);
        nb = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        bytes = malloc(nb);
        if (fread(bytes, 1, nb, fp) != nb)
          rc = BF_EIO;
      }
      if (fp)
        fclose(fp);
      if (!rc)
        rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, "9mm",
                               k < 2 ? BF_OWNER_FIREARM : BF_OWNER_EVIDENCE, k < 2 ? fid : eid);
      int64_t sid = 0;
      if (!rc)
        rc = bf_store_add_scan(st, &sid, item, 0, bytes, nb, x3p, s);
      if (!rc)
        rc = bf_feature_new(&ft, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy);
      if (!rc) {
        memcpy(ft->z, s->z, sizeof(float) * s->nx * s->ny);
        ft->version = 1;
        rc = bf_store_put_feature(st, "cartridge", item, sid, ft);
      }
      free(bytes);
      bf_feature_free(ft);
      bf_surface_free(s);
    }
  }
  if (!rc)
    rc = bf_store_commit(st);
  if (rc)
    fprintf(stderr, "make_store: %s\n", bf_error_last());
  bf_store_close(st);
  bf_synth_free(g);
  free(fids);
  return rc;
}

/* NF firearms, 3 firings each (2 test-fires, 1 crime-scene case) */
enum { NF = 3 };
static inline int make_store(const char *path, const char *dir)
{
  return make_store_n(path, dir, NF, 3, 0);
}

typedef struct hitrow {
  int64_t q, c;
  double s;
  int rank;
} hitrow;

static inline int cmp_hitrow(const void *a, const void *b)
{
  const hitrow *x = a, *y = b;
  if (x->q != y->q)
    return x->q < y->q ? -1 : 1;
  return x->c < y->c ? -1 : x->c > y->c;
}

/* all hits of a store, sorted by (query, candidate); returns the count (-1: error) */
static inline int hit_rows(const char *path, hitrow *r, int max, int *dup, int *searched)
{
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t n = 0;
  if (bf_store_open(&st, path, BF_STORE_READ, NULL) || bf_store_query_hits(st, NULL, &h, &n)) {
    bf_store_close(st);
    return -1;
  }
  int k = 0;
  for (size_t i = 0; i < n && k < max; i++)
    r[k++] = (hitrow){h[i].query, h[i].candidate, h[i].score, h[i].rank};
  if (searched) {
    *searched = 0;
    for (size_t i = 0; i < bf_store_nitems(st); i++)
      *searched += bf_store_items(st)[i].searched != 0;
  }
  free(h);
  bf_store_close(st);
  qsort(r, k, sizeof *r, cmp_hitrow);
  *dup = 0;
  for (int i = 1; i < k; i++)
    *dup += r[i].q == r[i - 1].q && r[i].c == r[i - 1].c;
  return k;
}

static inline int same_rows(const hitrow *a, int na, const hitrow *b, int nb)
{
  if (na != nb)
    return 0;
  for (int i = 0; i < na; i++)
    if (a[i].q != b[i].q || a[i].c != b[i].c || a[i].s != b[i].s || a[i].rank != b[i].rank) {
      fprintf(stderr, "first difference: %lld->%lld score %g rank %d vs %lld->%lld score %g rank %d\n",
              (long long)a[i].q, (long long)a[i].c, a[i].s, a[i].rank, (long long)b[i].q,
              (long long)b[i].c, b[i].s, b[i].rank);
      return 0;
    }
  return 1;
}

/* adds an item whose stored feature has no valid surface (but a descriptor, item 1's): it
 * cannot be screened as a query. Returns its id (0: failed). */
static inline int64_t add_bad_item(const char *path)
{
  bf_store *st = NULL;
  int64_t item = 0, sid = 0;
  bf_feature **d = NULL, *f = NULL;
  int nd = 0;
  const char *pk = bf_prefilter_kind_name(BF_KIND_CARTRIDGE);
  int rc = bf_store_open(&st, path, BF_STORE_WRITE, "tester");
  if (!rc)
    rc = bf_store_begin(st);
  if (!rc)
    rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, "9mm", BF_OWNER_EVIDENCE, 1);
  if (!rc)
    rc = bf_store_add_scan(st, &sid, item, 0, "x", 1, "empty.x3p", NULL);
  if (!rc)
    rc = bf_store_get_features(st, pk, 1, &d, &nd);
  if (!rc)
    rc = bf_feature_new(&f, BF_KIND_CARTRIDGE, 64, 64, 25, 25);
  if (!rc) {
    for (int i = 0; i < 64 * 64; i++)
      f->z[i] = NAN;
    f->version = 1;
    rc = bf_store_put_feature(st, "cartridge", item, sid, f);
  }
  if (!rc && nd)
    rc = bf_store_put_feature(st, pk, item, sid, d[0]);
  if (!rc)
    rc = bf_store_commit(st);
  if (rc)
    fprintf(stderr, "add_bad_item: %s\n", bf_error_last());
  bf_store_features_free(d, nd);
  bf_feature_free(f);
  bf_store_close(st);
  return rc ? 0 : item;
}

#endif
