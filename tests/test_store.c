/* The HDF5 store: records, scans, features of several kinds, hits, audit, verify, locking,
 * abort, corruption detection. Features are made by hand (extraction is not this module's). */
#include "bf_error.h"
#include "bf_store.h"
#include "bf_test.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;

static bf_feature *mkfeat(int kind, int nx, int ny, int land, float base)
{
  bf_feature *f = NULL;
  if (bf_feature_new(&f, kind, nx, ny, 1.5, 1.5))
    return NULL;
  for (int i = 0; i < nx * ny; i++)
    f->z[i] = base + 0.001f * i;
  f->z[0] = NAN;
  f->land = land;
  f->version = 3;
  f->valid_fraction = 0.9f;
  f->params[2] = base;
  return f;
}

static void fake_bytes(uint8_t *b, size_t n, int seed)
{
  uint32_t x = 2463534242u + (uint32_t)seed; /* xorshift: incompressible like a real X3P zip */
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b[i] = (uint8_t)x;
  }
}

static void count_problem(void *ctx, const char *p)
{
  (void)p;
  ++*(int *)ctx;
}

int main(void)
{
  dir = bf_t_tmpdir("store");
  char path[4200];
  snprintf(path, sizeof path, "%s/a.h5", dir);

  CHECK(bf_store_create(path, "tester") == 0);
  CHECK(bf_store_create(path, "tester") == BF_EEXIST);

  bf_store *st = NULL;
  CHECK(bf_store_open(&st, path, BF_STORE_WRITE, "tester") == 0);
  if (!st)
    return bf_t_done();

  /* a second writer (another process) is refused while we hold the lock */
  pid_t pid = fork();
  if (pid == 0) {
    bf_store *s2 = NULL;
    int r = bf_store_open(&s2, path, BF_STORE_WRITE, "other");
    bf_store_close(s2);
    _exit(r == BF_ELOCKED ? 0 : 1);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "second writer was not refused with BF_ELOCKED");

  /* writing outside a transaction is refused */
  bf_firearm fa = {0};
  snprintf(fa.serial, sizeof fa.serial, "RG-0001");
  snprintf(fa.make, sizeof fa.make, "Ruger");
  snprintf(fa.model, sizeof fa.model, "SR9");
  snprintf(fa.calibre, sizeof fa.calibre, "9mm Luger");
  snprintf(fa.transit, sizeof fa.transit, "DE;PL");
  CHECK(bf_store_add_firearm(st, NULL, &fa) == BF_EINVAL);

  int64_t fid = 0, eid = 0, it1 = 0, it2 = 0, it3 = 0, s1 = 0, s2 = 0;
  uint8_t bytes[3][5000];
  for (int i = 0; i < 3; i++)
    fake_bytes(bytes[i], sizeof bytes[i], i);

  CHECK(bf_store_begin(st) == 0);
  CHECK(bf_store_add_firearm(st, &fid, &fa) == 0 && fid == 1);
  bf_evidence ev = {0};
  snprintf(ev.case_no, sizeof ev.case_no, "C-2026-17");
  snprintf(ev.item, sizeof ev.item, "4, \"left\"");
  ev.kind = BF_KIND_BULLET;
  snprintf(ev.calibre, sizeof ev.calibre, "9mm Luger");
  CHECK(bf_store_add_evidence(st, &eid, &ev) == 0 && eid == 1);
  CHECK(bf_store_add_item(st, &it1, BF_KIND_CARTRIDGE, fa.calibre, BF_OWNER_FIREARM, fid) == 0);
  CHECK(bf_store_add_item(st, &it2, BF_KIND_BULLET, ev.calibre, BF_OWNER_EVIDENCE, eid) == 0);
  CHECK(bf_store_add_item(st, NULL, BF_KIND_BULLET, "", BF_OWNER_EVIDENCE, 99) == BF_ENOTFOUND);
  CHECK(bf_store_add_scan(st, &s1, it1, 0, bytes[0], sizeof bytes[0], "a.x3p", NULL) == 0);
  CHECK(bf_store_add_scan(st, &s2, it2, 1, bytes[1], sizeof bytes[1], "l1.x3p", NULL) == 0);
  /* a duplicate file is refused, naming the earlier scan */
  CHECK(bf_store_add_scan(st, NULL, it2, 2, bytes[0], sizeof bytes[0], "again.x3p", NULL) == BF_EEXIST);
  CHECK(strstr(bf_error_last(), "a.x3p") != NULL);
  bf_feature *fc = mkfeat(BF_KIND_CARTRIDGE, 40, 30, 0, 1.0f);
  bf_feature *fl1 = mkfeat(BF_KIND_BULLET, 500, 1, 1, 2.0f), *fl2 = mkfeat(BF_KIND_BULLET, 480, 1, 2, 3.0f);
  CHECK(bf_store_put_feature(st, "cartridge", it1, s1, fc) == 0);
  CHECK(bf_store_put_feature(st, "bullet", it2, s2, fl1) == 0);
  CHECK(bf_store_put_feature(st, "bullet", it2, 0, fl2) == 0);
  CHECK(bf_store_put_feature(st, "Bad Kind!", it2, 0, fl2) == BF_EINVAL);
  CHECK(bf_store_commit(st) == 0);

  /* an aborted transaction leaves nothing behind */
  CHECK(bf_store_begin(st) == 0);
  CHECK(bf_store_add_item(st, &it3, BF_KIND_CARTRIDGE, "", BF_OWNER_FIREARM, fid) == 0);
  CHECK(bf_store_add_scan(st, NULL, it3, 0, bytes[2], sizeof bytes[2], "c.x3p", NULL) == 0);
  bf_store_abort(st);
  CHECK(bf_store_nitems(st) == 2);
  CHECK(bf_store_nscans(st) == 2);
  CHECK(bf_store_find_sha256(st, "0000", NULL) == BF_ENOTFOUND);

  /* a new feature kind is added without any schema change (the search prefilter's) */
  CHECK(bf_store_begin(st) == 0);
  bf_feature *pf = mkfeat(BF_KIND_CARTRIDGE, 64, 1, 0, 9.0f);
  CHECK(bf_store_put_feature(st, "prefilter", it1, s1, pf) == 0);
  bf_hit hs[3] = {{0}};
  hs[0].query = it2, hs[0].candidate = it1, hs[0].run = 7, hs[0].score = 0.8, hs[0].rank = 1;
  hs[1].query = it1, hs[1].candidate = it2, hs[1].run = 7, hs[1].score = 0.3, hs[1].rank = 1;
  hs[2] = hs[0]; /* duplicate within the batch */
  size_t added = 0;
  CHECK(bf_store_add_hits(st, hs, 3, &added) == 0 && added == 2);
  CHECK(bf_store_add_hits(st, hs, 2, &added) == 0 && added == 0); /* resumed batch */
  int64_t both[2] = {it1, it2};
  CHECK(bf_store_set_searched(st, both, 2, 7) == 0);
  CHECK(bf_store_set_hit_status(st, 1, BF_HIT_CONFIRMED, "examiner A", "agreed") == 0);
  CHECK(bf_store_set_hit_status(st, 9, BF_HIT_CONFIRMED, NULL, NULL) == BF_ENOTFOUND);
  CHECK(bf_store_commit(st) == 0);
  bf_store_close(st);
  bf_feature_free(pf);

  /* read back as a reader */
  CHECK(bf_store_open(&st, path, BF_STORE_READ, NULL) == 0);
  if (!st)
    return bf_t_done();
  CHECK(bf_store_nitems(st) == 2 && bf_store_nfirearms(st) == 1 && bf_store_nevidence(st) == 1);
  const bf_firearm *rf = bf_store_firearm_by_serial(st, "RG-0001");
  CHECK(rf && !strcmp(rf->model, "SR9") && !strcmp(rf->transit, "DE;PL") && !strcmp(rf->user, "tester"));
  const bf_evidence *re = bf_store_evidence_by_case_item(st, "C-2026-17", "4, \"left\"");
  CHECK(re && re->kind == BF_KIND_BULLET);
  const bf_item *ri = bf_store_item(st, it2);
  CHECK(ri && ri->kind == BF_KIND_BULLET && ri->nscans == 1 && ri->searched == 7);
  int64_t *ids = NULL;
  size_t nids = 0;
  CHECK(bf_store_list_items(st, BF_KIND_CARTRIDGE, "9mm Luger", &ids, &nids) == 0 && nids == 1 &&
        ids[0] == it1);
  free(ids);
  bf_feature **fv = NULL;
  int nf = 0;
  CHECK(bf_store_get_features(st, "bullet", it2, &fv, &nf) == 0 && nf == 2);
  if (nf == 2) {
    CHECK(fv[0]->land == 1 && fv[1]->land == 2 && fv[0]->nx == 500 && fv[1]->nx == 480);
    CHECK(isnan(fv[0]->z[0]) && fv[0]->z[10] == fl1->z[10] && fv[1]->z[479] == fl2->z[479]);
    CHECK(fv[1]->params[2] == 3.0 && fv[1]->version == 3 && fv[1]->dx == 1.5);
  }
  for (int i = 0; i < nf; i++)
    bf_feature_free(fv[i]);
  free(fv);
  CHECK(bf_store_get_features(st, "cartridge", it2, &fv, &nf) == BF_ENOTFOUND);
  CHECK(bf_store_get_features(st, "cartridge", it1, &fv, &nf) == 0 && nf == 1);
  if (nf == 1)
    CHECK(fv[0]->nx == 40 && fv[0]->ny == 30 && fv[0]->z[1199] == fc->z[1199]);
  for (int i = 0; i < nf; i++)
    bf_feature_free(fv[i]);
  free(fv);
  const bf_feat_row *rows;
  size_t nrows;
  CHECK(bf_store_feature_index(st, "prefilter", &rows, &nrows) == 0 && nrows == 1 && rows[0].count == 64);
  CHECK(bf_store_feature_index(st, "nosuch", &rows, &nrows) == 0 && nrows == 0);
  bf_feature *blk[2] = {0};
  CHECK(bf_store_read_block(st, "bullet", 0, 2, blk) == 0 && blk[1] && blk[1]->land == 2);
  bf_feature_free(blk[0]);
  bf_feature_free(blk[1]);

  bf_hit *hv = NULL;
  size_t nh = 0;
  bf_hit_filter hf = BF_HIT_FILTER_INIT;
  CHECK(bf_store_query_hits(st, &hf, &hv, &nh) == 0 && nh == 2 && hv[0].score == 0.8);
  free(hv);
  hf.case_no = "C-2026-17";
  hf.min_score = 0.5;
  CHECK(bf_store_query_hits(st, &hf, &hv, &nh) == 0 && nh == 1 && hv[0].status == BF_HIT_CONFIRMED &&
        !strcmp(hv[0].examiner, "examiner A"));
  free(hv);
  bf_hit_filter hs2 = BF_HIT_FILTER_INIT;
  hs2.serial = "RG-0001";
  hs2.status = BF_HIT_CANDIDATE;
  CHECK(bf_store_query_hits(st, &hs2, &hv, &nh) == 0 && nh == 1 && hv[0].score == 0.3);
  free(hv);

  uint8_t *xb = NULL;
  size_t xn = 0;
  CHECK(bf_store_read_x3p(st, s2, &xb, &xn) == 0 && xn == sizeof bytes[1] && !memcmp(xb, bytes[1], xn));
  free(xb);
  bf_audit_rec *au = NULL;
  size_t nau = 0;
  CHECK(bf_store_read_audit(st, &au, &nau) == 0 && nau >= 12);
  int saw_status = 0;
  for (size_t i = 0; i < nau; i++)
    saw_status |= !strcmp(au[i].action, "hit status") && !strcmp(au[i].user, "tester");
  CHECK(saw_status);
  free(au);
  int np = -1;
  CHECK(bf_store_verify(st, NULL, NULL, &np) == 0 && np == 0);
  bf_store_close(st);

  /* a reader may open while a writer holds the lock */
  bf_store *w = NULL, *r = NULL;
  CHECK(bf_store_open(&w, path, BF_STORE_WRITE, NULL) == 0);
  CHECK(bf_store_open(&r, path, BF_STORE_READ, NULL) == 0);
  if (w && r) {
    CHECK(bf_store_begin(w) == 0);
    CHECK(bf_store_add_item(w, NULL, BF_KIND_CARTRIDGE, "", BF_OWNER_FIREARM, 1) == 0);
    CHECK(bf_store_commit(w) == 0);
    CHECK(bf_store_nitems(r) == 2); /* the reader keeps its snapshot */
  }
  bf_store_close(r);
  bf_store_close(w);

  /* corruption: flip bytes inside the stored X3P data -> verify reports it */
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s/b.h5'", path, dir);
  CHECK(system(cmd) == 0);
  char bpath[4200];
  snprintf(bpath, sizeof bpath, "%s/b.h5", dir);
  long flipped = 0;
  { /* where the first chunk of scan 2's bytes lies in the file: flip bytes there */
    hid_t hf5 = H5Fopen(bpath, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = hf5 >= 0 ? H5Dopen2(hf5, "/scans_x3p/2", H5P_DEFAULT) : -1;
    haddr_t addr = HADDR_UNDEF;
    hsize_t csize = 0;
    if (ds >= 0)
    {
      hsize_t origin = 0;
      unsigned mask = 0;
      H5Dget_chunk_info_by_coord(ds, &origin, &mask, &addr, &csize);
    }
    if (ds >= 0)
      H5Dclose(ds);
    if (hf5 >= 0)
      H5Fclose(hf5);
    FILE *fp = addr != HADDR_UNDEF && csize > 64 ? fopen(bpath, "r+b") : NULL;
    if (fp) {
      uint8_t buf[64];
      fseek(fp, (long)addr + 8, SEEK_SET);
      if (fread(buf, 1, 64, fp) == 64) {
        for (int i = 0; i < 64; i++)
          buf[i] ^= 0x5a;
        fseek(fp, (long)addr + 8, SEEK_SET);
        flipped = (long)fwrite(buf, 1, 64, fp);
      }
      fclose(fp);
    }
  }
  CHECK(flipped == 64);
  bf_store *b = NULL;
  int rc = bf_store_open(&b, bpath, BF_STORE_READ, NULL);
  if (rc == 0) {
    int n2 = 0;
    CHECKF(bf_store_verify(b, count_problem, &n2, NULL) != 0 && n2 > 0,
           "verify did not notice 64 flipped bytes in the middle of the file");
    bf_store_close(b);
  } else
    CHECK(rc < 0); /* damage in metadata: refused at open, also fine */

  /* not a store */
  snprintf(cmd, sizeof cmd, "%s/junk.h5", dir);
  FILE *fp = fopen(cmd, "w");
  if (fp) {
    fputs("not hdf5", fp);
    fclose(fp);
  }
  CHECK(bf_store_open(&b, cmd, BF_STORE_READ, NULL) == BF_EFORMAT);
  CHECK(strstr(bf_error_last(), "junk.h5") != NULL);
  snprintf(cmd, sizeof cmd, "%s/none.h5", dir);
  CHECK(bf_store_open(&b, cmd, BF_STORE_READ, NULL) == BF_ENOTFOUND);

  /* read-only store file: refused for writing, unchanged */
  chmod(path, 0444);
  if (access(path, W_OK) != 0) { /* (root ignores modes) */
    CHECK(bf_store_open(&b, path, BF_STORE_WRITE, NULL) == BF_EIO);
    CHECK(strstr(bf_error_last(), "read-only") != NULL);
  }
  chmod(path, 0644);

  bf_feature_free(fc);
  bf_feature_free(fl1);
  bf_feature_free(fl2);
  return bf_t_done();
}
