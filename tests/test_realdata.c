/* Every real scan of ../shared/data and ../shared/blind reads; its size and spacing agree with
 * its own main.xml (parsed here independently, by plain text search), and both MD5 checksums
 * verify (recomputed here too). KEY.csv's scans are all present. */
#define _DEFAULT_SOURCE
#include "bf_error.h"
#include "bf_hash.h"
#include "bf_x3p.h"
#include "bf_test.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <strings.h>
#include <zip.h>

typedef struct list {
  char **v;
  int n, cap;
} list;

static void list_add(list *l, const char *s)
{
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
    if (!l->v)
      exit(2);
  }
  l->v[l->n++] = strdup(s);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(list *l, const char *d)
{
  DIR *dp = opendir(d);
  if (!dp)
    return;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (e->d_name[0] == '.')
      continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", d, e->d_name);
    struct stat st;
    if (stat(p, &st))
      continue;
    size_t n = strlen(e->d_name);
    if (S_ISDIR(st.st_mode))
      walk(l, p);
    else if (n > 4 && !strcasecmp(e->d_name + n - 4, ".x3p"))
      list_add(l, p);
  }
  closedir(dp);
}

/* Member bytes by name (malloc'ed, NUL-terminated), or NULL. */
static char *member(zip_t *z, const char *name, size_t *len)
{
  zip_stat_t st;
  if (zip_stat(z, name, 0, &st) || !(st.valid & ZIP_STAT_SIZE))
    return NULL;
  char *b = malloc(st.size + 1);
  zip_file_t *f = zip_fopen(z, name, 0);
  zip_int64_t r = (f && b) ? zip_fread(f, b, st.size) : -1;
  if (f)
    zip_fclose(f);
  if (r != (zip_int64_t)st.size) {
    free(b);
    return NULL;
  }
  b[st.size] = 0;
  *len = st.size;
  return b;
}

/* Text of the first element <name> (any prefix) at or after from; "" if none. */
static const char *tag(char *out, size_t cap, const char *from, const char *name)
{
  out[0] = 0;
  size_t ln = strlen(name);
  for (const char *p = strchr(from, '<'); p; p = strchr(p + 1, '<')) {
    const char *q = p + 1;
    if (*q == '/' || *q == '?' || *q == '!')
      continue;
    const char *colon = q;
    while (*colon && *colon != '>' && *colon != ':' && !isspace((unsigned char)*colon))
      colon++;
    if (*colon == ':')
      q = colon + 1;
    if (!strncmp(q, name, ln) && q[ln] == '>') {
      const char *s = q + ln + 1, *e = strchr(s, '<');
      if (!e)
        return NULL;
      while (s < e && isspace((unsigned char)*s))
        s++;
      while (e > s && isspace((unsigned char)e[-1]))
        e--;
      snprintf(out, cap, "%.*s", (int)(e - s), s);
      return q + ln;
    }
  }
  return NULL;
}

static int hex_eq(const char *text, const uint8_t d[16])
{
  char h[40];
  bf_hex(h, d, 16);
  while (isspace((unsigned char)*text))
    text++;
  return strlen(text) >= 32 && !strncasecmp(text, h, 32);
}

static int nread, nfail;

static void check_file(const char *p, const char *root, int quick)
{
  bf_surface *s = NULL;
  bf_x3p_info in;
  int rc = bf_x3p_read(&s, p, &in);
  CHECKF(rc == 0, "%s", bf_error_last());
  if (rc) {
    nfail++;
    return;
  }
  nread++;

  /* independent look at the header */
  int err = 0;
  zip_t *z = zip_open(p, ZIP_RDONLY, &err);
  CHECKF(z != NULL, "%s: zip opens", p);
  if (!z) {
    bf_surface_free(s);
    return;
  }
  char prefix[512] = "";
  const char *xname = NULL;
  for (zip_int64_t i = 0; i < zip_get_num_entries(z, 0); i++) {
    const char *nm = zip_get_name(z, (zip_uint64_t)i, 0);
    const char *b = strrchr(nm, '/');
    if (strstr(nm, "__MACOSX"))
      continue;
    if (!strcmp(b ? b + 1 : nm, "main.xml") && (!xname || strlen(nm) < strlen(xname)))
      xname = nm;
  }
  CHECKF(xname != NULL, "%s: main.xml found", p);
  size_t xl = 0, hl = 0, dl = 0;
  char *x = xname ? member(z, xname, &xl) : NULL;
  if (xname)
    snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(xname) - 8), xname);
  CHECKF(x != NULL, "%s: main.xml read", p);
  if (x) {
    char t[256], name[1024];
    long hx = tag(t, sizeof t, x, "SizeX") ? atol(t) : -1;
    long hy = tag(t, sizeof t, x, "SizeY") ? atol(t) : -1;
    CHECKF(s->nx == hx && s->ny == hy, "%s: %d x %d, header %ld x %ld", p, s->nx, s->ny, hx, hy);
    const char *cx = tag(t, sizeof t, x, "CX");
    const char *cy = cx ? tag(t, sizeof t, cx, "CY") : NULL;
    double ix = cx && tag(t, sizeof t, cx, "Increment") ? atof(t) : -1;
    double iy = cy && tag(t, sizeof t, cy, "Increment") ? atof(t) : -1;
    /* the header says metres unless the value only makes sense as micrometres */
    double ex = ix > 1e-3 ? ix : ix * 1e6, ey = iy > 1e-3 ? iy : iy * 1e6;
    CHECKF(fabs(s->dx - ex) <= 1e-9 * ex && fabs(s->dy - ey) <= 1e-9 * ey,
           "%s: spacing %.9g x %.9g um, header %.9g x %.9g", p, s->dx, s->dy, ix, iy);
    CHECKF(in.xy_converted_from_um == (ix > 1e-3), "%s: unit conversion flag", p);

    char dt[8];
    tag(dt, sizeof dt, x, "CZ");
    const char *cz = tag(t, sizeof t, x, "CZ");
    if (cz)
      tag(dt, sizeof dt, cz, "DataType");
    CHECKF(in.data_type == dt[0], "%s: data type %c, header %s", p, in.data_type, dt);

    /* both checksums, recomputed here */
    CHECKF(in.md5_main_ok && in.md5_data_ok, "%s: reader verified both checksums (%d %d)", p,
           in.md5_main_ok, in.md5_data_ok);
    if (!quick) {
      uint8_t d[16];
      char md5name[600];
      snprintf(md5name, sizeof md5name, "%smd5checksum.hex", prefix);
      char *h = member(z, md5name, &hl);
      bf_md5(d, x, xl);
      CHECKF(h && hex_eq(h, d), "%s: md5checksum.hex matches main.xml", p);
      free(h);
      char link[512];
      tag(link, sizeof link, x, "PointDataLink");
      snprintf(name, sizeof name, "%s%s", prefix, link);
      char *data = member(z, name, &dl);
      int ts = dt[0] == 'D' ? 8 : dt[0] == 'F' || dt[0] == 'L' ? 4 : 2;
      CHECKF(data && dl == (size_t)hx * hy * ts, "%s: %s is %zu bytes", p, name, dl);
      tag(t, sizeof t, x, "MD5ChecksumPointData");
      if (data)
        bf_md5(d, data, dl);
      CHECKF(data && hex_eq(t, d), "%s: MD5ChecksumPointData matches %s", p, name);
      free(data);
    }
    free(x);
  }
  zip_close(z);

  /* the README's statement: dfsc-pair files are in micrometres, every other data/ file metres */
  size_t lr = strlen(root);
  if (!strncmp(p, root, lr) && strstr(p + lr, "/data/")) {
    int dfsc = strstr(p, "/dfsc-pair/") != NULL;
    CHECKF(in.xy_converted_from_um == dfsc && in.z_converted_from_um == dfsc,
           "%s: micrometre units %s detected", p, dfsc ? "" : "wrongly");
  }
  bf_surface_stats st;
  bf_surface_stats_get(&st, s);
  CHECKF(st.nvalid > 0 && st.missing_fraction < 1 && isfinite(st.zmin) && isfinite(st.zmax) &&
             st.zmax - st.zmin < 5000 && st.zmax - st.zmin > 0.01,
         "%s: heights %g .. %g um are those of a scan", p, st.zmin, st.zmax);
  bf_surface_free(s);
}

/* Read -> write -> read gives the same floats, for a D and an F file. */
static void round_trip(const char *p, char type)
{
  bf_surface *a = NULL, *b = NULL;
  char out[4200];
  snprintf(out, sizeof out, "%s/rt_%c.x3p", bf_t_tmpdir("realdata"), type);
  if (bf_x3p_read(&a, p, NULL)) {
    CHECKF(0, "%s", bf_error_last());
    return;
  }
  CHECKF(bf_x3p_write(out, a, type) == 0, "write %s: %s", out, bf_error_last());
  CHECKF(bf_x3p_read(&b, out, NULL) == 0, "read back %s: %s", out, bf_error_last());
  if (b) {
    size_t n = (size_t)a->nx * a->ny, diff = 0;
    for (size_t i = 0; i < n; i++)
      diff += memcmp(&a->z[i], &b->z[i], 4) != 0 && !(isnan(a->z[i]) && isnan(b->z[i]));
    CHECKF(b->nx == a->nx && b->ny == a->ny && diff == 0 && b->dx == a->dx && b->dy == a->dy,
           "%s: %c round trip bit-exact (%zu of %zu points differ)", p, type, diff, n);
    CHECK(!!a->mask == !!b->mask);
  }
  bf_surface_free(a);
  bf_surface_free(b);
}

int main(void)
{
  const char *q = getenv("BF_QUICK");
  int quick = q && *q && strcmp(q, "0");
  char root[4096];
  const char *sh = getenv("BF_SHARED");
  snprintf(root, sizeof root, "%s", sh ? sh : BF_SHARED_DIR);
  int total = 0;
  const char *subs[] = {"data", "blind"};
  for (int k = 0; k < 2; k++) {
    const char *d = bf_t_shared(subs[k]);
    if (!d)
      continue;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", d);
    list l = {0};
    walk(&l, dir);
    qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_str);
    CHECKF(l.n > 0, "%s holds X3P files", dir);
    const char *first_d = NULL, *first_f = NULL;
    for (int i = 0; i < l.n; i++) {
      check_file(l.v[i], root, quick);
      if (k == 0 && strstr(l.v[i], "/fadul/") && !first_d)
        first_d = l.v[i];
      if (k == 0 && strstr(l.v[i], "/hamby44/") && !first_f)
        first_f = l.v[i];
    }
    if (first_d)
      round_trip(first_d, 'D');
    if (first_f)
      round_trip(first_f, 'F');
    if (k == 1) { /* a micrometre F scan (if any) through D, which is exact for every float */
      for (int i = 0; i < l.n; i++) {
        bf_x3p_info in;
        bf_surface *s = NULL;
        if (!bf_x3p_read(&s, l.v[i], &in) && in.z_converted_from_um && in.data_type == 'F') {
          bf_surface_free(s);
          round_trip(l.v[i], 'D');
          break;
        }
        bf_surface_free(s);
      }
    }

    /* every scan KEY.csv names is there and was read */
    if (k == 0) {
      char key[4200];
      snprintf(key, sizeof key, "%s/KEY.csv", dir);
      FILE *f = fopen(key, "r");
      CHECKF(f != NULL, "%s present", key);
      char line[1024];
      int nkey = 0, found = 0;
      while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ',');
        if (!c || !strncmp(line, "scan,", 5))
          continue;
        *c = 0;
        nkey++;
        char want[5200];
        snprintf(want, sizeof want, "%s/%s", dir, line);
        for (int i = 0; i < l.n; i++)
          if (!strcmp(l.v[i], want)) {
            found++;
            break;
          }
      }
      if (f)
        fclose(f);
      CHECKF(nkey > 0 && found == nkey, "KEY.csv: %d of %d scans present", found, nkey);
    }
    total += l.n;
    for (int i = 0; i < l.n; i++)
      free(l.v[i]);
    free(l.v);
  }
  printf("%d real scans read, %d failed%s\n", nread, nfail, quick ? " (quick: checksums by the reader only)" : "");
  CHECK(nfail == 0);
  (void)total;
  return bf_t_done();
}
