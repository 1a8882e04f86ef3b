/* bfm synth: a folder of synthetic X3P scans and a key.csv naming their sources. */
#include "bf_error.h"
#include "bf_feature.h"
#include "bf_synth.h"
#include "bf_x3p.h"
#include "bfm_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct item {
  int kind, a, b, land; /* firearm/barrel, firing/bullet (0-based), land (1-based) */
  char rel[128];        /* path under the output folder */
  bf_synth_truth truth;
  int rc;
} item;

static int mkdir_p(const char *path)
{
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0777) && errno != EEXIST)
        return bf_error_set(BF_EIO, "%s: cannot create folder: %s", buf, strerror(errno));
      *p = '/';
    }
  if (mkdir(buf, 0777) && errno != EEXIST)
    return bf_error_set(BF_EIO, "%s: cannot create folder: %s", buf, strerror(errno));
  return 0;
}

static int parse_int(const char *s, int lo, int hi, int *v)
{
  char *end;
  long x = strtol(s, &end, 10);
  if (*end || end == s || x < lo || x > hi)
    return -1;
  *v = (int)x;
  return 0;
}

static int parse_num(const char *s, double lo, double hi, double *v)
{
  char *end;
  double x = strtod(s, &end);
  if (*end || end == s || !(x >= lo && x <= hi))
    return -1;
  *v = x;
  return 0;
}

/* manifest.csv for `bfm ingest` (columns in tools/cmd_store.c): one firearm row per known
 * test-fired item (serial SYN-nnnn), one evidence row per questioned item (case SYN-Cnnnnn).
 * The truth stays in key.csv only. */
static int write_manifest(const char *outdir, const item *items, long n, int nfire, int nshots, int nq,
                          int lands)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.csv", outdir);
  FILE *f = fopen(path, "w");
  if (!f)
    return bf_error_set(BF_EIO, "%s: cannot write: %s", path, strerror(errno));
  fprintf(f, "type,kind,scans,calibre,serial,make,model,case,item,notes\n");
  long ncase = 0;
  for (long i = 0; i < n; i++) {
    const item *it = &items[i];
    if (it->kind == BF_KIND_BULLET && it->land != 1)
      continue; /* one row per bullet: its lands are listed on the land-1 row */
    int questioned = it->a >= nfire || it->b >= nshots - nq;
    char scans[2048];
    if (it->kind == BF_KIND_CARTRIDGE)
      snprintf(scans, sizeof scans, "%s", it->rel);
    else {
      size_t len = 0;
      scans[0] = 0;
      for (int l = 0; l < lands && len < sizeof scans; l++)
        len += (size_t)snprintf(scans + len, sizeof scans - len, "%s%s", l ? ";" : "", items[i + l].rel);
    }
    const char *kind = it->kind == BF_KIND_CARTRIDGE ? "cartridge" : "bullet";
    if (questioned)
      fprintf(f, "evidence,%s,%s,9mm Luger,,,,SYN-C%05ld,1,synthetic\n", kind, scans, ++ncase);
    else
      fprintf(f, "firearm,%s,%s,9mm Luger,SYN-%04d,Synthetic,synth,,,\n", kind, scans, it->a + 1);
  }
  if (fclose(f))
    return bf_error_set(BF_EIO, "%s: write failed: %s", path, strerror(errno));
  return 0;
}

/* key.csv: the truth of every scan (which firearm, rotation/shift or barrel land). */
static int write_key(const char *outdir, const item *items, long n, int nfire, int nshots, int nq,
                     const bf_synth_opts *po)
{
  bf_synth_opts o = *po;
  char path[4200];
  snprintf(path, sizeof path, "%s/key.csv", outdir);
  FILE *key = fopen(path, "w");
  if (!key)
    return bf_error_set(BF_EIO, "%s: cannot write: %s", path, strerror(errno));
  fprintf(key, "scan,kind,study,source,land_group,role,note\n");
  for (long i = 0; i < n; i++) {
    const item *it = &items[i];
    const char *role = (it->a >= nfire || it->b >= nshots - nq) ? "questioned" : "known";
    if (it->kind == BF_KIND_CARTRIDGE)
      fprintf(key, "%s,cartridge,synth,synth-firearm-%04d,,%s,rotation %.3f deg; shift %.2f %.2f um; %s %.4g um; seed %llu\n",
              it->rel, it->a + 1, role, it->truth.rotation_deg, it->truth.shift_x, it->truth.shift_y,
              o.processed ? "processed" : "raw", o.cart_spacing, (unsigned long long)o.seed);
    else
      fprintf(key, "%s,bullet_land,synth,synth-barrel-%04d,synth-b%04d-l%d,%s,lea shift %.2f um; %s%.4g um; striae along %c; seed %llu\n",
              it->rel, it->a + 1, it->a + 1, it->truth.barrel_land, role, it->truth.shift_x,
              it->truth.damaged ? "damaged; " : "", o.land_spacing, o.striae_along_x ? 'X' : 'Y',
              (unsigned long long)o.seed);
  }
  if (fclose(key))
    return bf_error_set(BF_EIO, "%s: write failed: %s", path, strerror(errno));
  return 0;
}

typedef struct synth_args {
  const char *outdir;
  int nfire, nshots, nq, cart, bul, unknown;
  char dtype;
  bf_synth_opts o;
} synth_args;

/* Flags -> arguments; 0 or a usage exit code. */
static int synth_parse(synth_args *s, int argc, char **argv)
{
  const char *cmd = "synth";
  bf_synth_opts *o = &s->o;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (!strcmp(a, "--raw")) {
      o->processed = 0;
      continue;
    } else if (!strcmp(a, "--striae-x")) {
      o->striae_along_x = 1;
      continue;
    } else if (!v)
      return bfm_usage_error(cmd, "%s needs a value or is unknown", a);
    else if (!strcmp(a, "--out"))
      s->outdir = v;
    else if (!strcmp(a, "--firearms"))
      bad = parse_int(v, 1, 1000000, &s->nfire);
    else if (!strcmp(a, "--firings"))
      bad = parse_int(v, 1, 10000, &s->nshots);
    else if (!strcmp(a, "--questioned"))
      bad = parse_int(v, 0, 10000, &s->nq);
    else if (!strcmp(a, "--unknown"))
      bad = parse_int(v, 0, 1000000, &s->unknown);
    else if (!strcmp(a, "--lands"))
      bad = parse_int(v, 1, 64, &o->lands);
    else if (!strcmp(a, "--seed")) {
      char *end;
      errno = 0;
      o->seed = strtoull(v, &end, 10);
      bad = *end || end == v || v[0] == '-' || errno;
    } else if (!strcmp(a, "--spacing"))
      bad = parse_num(v, 0.5, 50, &o->cart_spacing);
    else if (!strcmp(a, "--land-spacing"))
      bad = parse_num(v, 0.2, 20, &o->land_spacing);
    else if (!strcmp(a, "--max-rotation"))
      bad = parse_num(v, 0, 180, &o->max_rotation);
    else if (!strcmp(a, "--max-shift"))
      bad = parse_num(v, 0, 1000, &o->max_shift);
    else if (!strcmp(a, "--damage"))
      bad = parse_num(v, 0, 1, &o->damage);
    else if (!strcmp(a, "--transfer")) {
      bad = parse_num(v, 0, 1, &o->transfer);
      o->land_transfer = o->transfer;
    } else if (!strcmp(a, "--type")) {
      s->dtype = v[0];
      bad = (s->dtype != 'D' && s->dtype != 'F') || v[1];
    } else if (!strcmp(a, "--kind")) {
      s->cart = !strcmp(v, "cartridge") || !strcmp(v, "both");
      s->bul = !strcmp(v, "bullet") || !strcmp(v, "both");
      bad = !s->cart && !s->bul;
    } else
      return bfm_usage_error(cmd, "unknown option %s", a);
    if (bad)
      return bfm_usage_error(cmd, "bad value '%s' for %s", v, a);
    i++;
  }
  return 0;
}

int bfm_cmd_synth(int argc, char **argv)
{
  const char *cmd = "synth";
  synth_args sa = {.nfire = 5, .nshots = 3, .nq = -1, .cart = 1, .dtype = 'F', .o = BF_SYNTH_OPTS_INIT};
  sa.o.max_rotation = 180; /* bfm synth: cases placed in any orientation (the CMC covers 360°) */
  int e = synth_parse(&sa, argc, argv);
  if (e)
    return e;
  const char *outdir = sa.outdir;
  int nfire = sa.nfire, nshots = sa.nshots, nq = sa.nq, cart = sa.cart, bul = sa.bul, unknown = sa.unknown;
  char dtype = sa.dtype;
  bf_synth_opts o = sa.o;
  if (!outdir)
    return bfm_usage_error(cmd, "--out DIR is required");
  if (nq < 0)
    nq = nshots >= 2 ? 1 : 0;
  if (nq > nshots)
    return bfm_usage_error(cmd, "--questioned %d exceeds --firings %d", nq, nshots);

  int rc = BFM_EXIT_FAIL;
  bf_synth *g = NULL;
  item *items = NULL;
  char path[4096];
  long per = (long)nshots, ncart = cart ? (long)(nfire + unknown) * per : 0;
  long nbul = bul ? (long)(nfire + unknown) * per * o.lands : 0, n = ncart + nbul;
  if (n > 10000000)
    return bfm_usage_error(cmd, "%ld scans is beyond the 10 million limit", n);
  if (bf_synth_new(&g, &o) || mkdir_p(outdir))
    goto fail;
  items = calloc((size_t)n, sizeof *items);
  if (!items) {
    bf_error_set(BF_ENOMEM, "out of memory for %ld items", n);
    goto fail;
  }
  /* Unknown firearms come after the known ones: their items are all questioned. */
  long k = 0;
  for (int f = 0; cart && f < nfire + unknown; f++)
    for (int s = 0; s < nshots; s++, k++) {
      items[k] = (item){.kind = BF_KIND_CARTRIDGE, .a = f, .b = s};
      snprintf(items[k].rel, sizeof items[k].rel, "cartridge/F%04d-%d.x3p", f + 1, s + 1);
    }
  for (int f = 0; bul && f < nfire + unknown; f++)
    for (int s = 0; s < nshots; s++)
      for (int l = 1; l <= o.lands; l++, k++) {
        items[k] = (item){.kind = BF_KIND_BULLET, .a = f, .b = s, .land = l};
        snprintf(items[k].rel, sizeof items[k].rel, "bullet/B%04d-%d/land%d.x3p", f + 1, s + 1, l);
      }
  if ((cart && (snprintf(path, sizeof path, "%s/cartridge", outdir), mkdir_p(path))))
    goto fail;
  for (int f = 0; bul && f < nfire + unknown; f++)
    for (int s = 0; s < nshots; s++) {
      snprintf(path, sizeof path, "%s/bullet/B%04d-%d", outdir, f + 1, s + 1);
      if (mkdir_p(path))
        goto fail;
    }

  bfm_progress pr;
  bfm_progress_start(&pr, "synth", n);
  long done = 0;
  char first_err[1024] = "";
#pragma omp parallel for schedule(dynamic)
  for (long i = 0; i < n; i++) {
    item *it = &items[i];
    bf_surface *s = NULL;
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", outdir, it->rel);
    if (it->kind == BF_KIND_CARTRIDGE)
      it->rc = bf_synth_cartridge(&s, g, it->a, it->b, &it->truth);
    else
      it->rc = bf_synth_land(&s, g, it->a, it->b, it->land, &it->truth);
    if (!it->rc)
      it->rc = bf_x3p_write(p, s, dtype);
    bf_surface_free(s);
#pragma omp critical(bfm_synth_progress)
    {
      if (it->rc && !first_err[0])
        snprintf(first_err, sizeof first_err, "%s", bf_error_last());
      bfm_progress_step(&pr, ++done);
    }
  }
  bfm_progress_end(&pr);
  if (first_err[0]) {
    bf_error_set(BF_EIO, "%s", first_err);
    goto fail;
  }

  if (write_key(outdir, items, n, nfire, nshots, nq, &o))
    goto fail;
  if (write_manifest(outdir, items, n, nfire, nshots, nq, o.lands))
    goto fail;
  printf("wrote %ld scans (%ld cartridge cases, %ld bullet lands), key.csv and manifest.csv to %s\n", n,
         ncart, nbul, outdir);
  rc = BFM_EXIT_OK;
  goto done;
fail:
  rc = bfm_fail(cmd);
done:
  free(items);
  bf_synth_free(g);
  return rc;
}
