/* Crime linkage graph: components, merging of repeated hits, self-loops, DOT output, and the
 * graph of a small store's hits (rejected hits never link, --confirmed keeps confirmed only). */
#include "bf_error.h"
#include "bf_linkage.h"
#include "bf_test.h"

#include <stdint.h>

static void graph(const char *dir)
{
  bf_linkage *g = NULL;
  CHECK(bf_linkage_new(&g) == 0);
  int f1, f2, c1, c2, c3, c4, c5, again;
  CHECK(bf_linkage_node(g, BF_NODE_FIREARM, "SN-1", "Ruger P95", &f1) == 0);
  CHECK(bf_linkage_node(g, BF_NODE_FIREARM, "SN-2", "Glock 17", &f2) == 0);
  bf_linkage_node(g, BF_NODE_CASE, "C-1", "Met", &c1);
  bf_linkage_node(g, BF_NODE_CASE, "C-2", "Met", &c2);
  bf_linkage_node(g, BF_NODE_CASE, "C-3", "North", &c3);
  bf_linkage_node(g, BF_NODE_CASE, "C-4", "North \"quoted\"", &c4);
  bf_linkage_node(g, BF_NODE_CASE, "C-5", "", &c5);
  CHECK(bf_linkage_node(g, BF_NODE_CASE, "C-1", NULL, &again) == 0 && again == c1);
  CHECK(bf_linkage_node(g, BF_NODE_CASE, "", NULL, &again) == BF_EINVAL);
  CHECK(bf_linkage_nnodes(g) == 7);
  CHECK(bf_linkage_edge(g, c1, f1, 10, 12, 0) == 0);
  CHECK(bf_linkage_edge(g, f1, c1, 11, 20, 1) == 0); /* same pair: merged */
  CHECK(bf_linkage_edge(g, c2, f1, 12, 7, 0) == 0);
  CHECK(bf_linkage_edge(g, c3, c4, 13, 9, 0) == 0);
  CHECK(bf_linkage_edge(g, c5, c5, 14, 9, 0) == 0); /* self-loop ignored */
  CHECK(bf_linkage_edge(g, c5, 99, 15, 9, 0) == BF_EINVAL);
  CHECK(bf_linkage_nedges(g) == 3);
  CHECK(bf_linkage_edge_at(g, 0)->nhits == 2 && bf_linkage_edge_at(g, 0)->score == 20 && bf_linkage_edge_at(g, 0)->hit == 11 &&
        bf_linkage_edge_at(g, 0)->confirmed == 1);
  CHECK(bf_linkage_components(g) == 2);
  CHECK(bf_linkage_node_at(g, f1)->component == 0 && bf_linkage_node_at(g, c1)->component == 0 && bf_linkage_node_at(g, c2)->component == 0);
  CHECK(bf_linkage_node_at(g, c3)->component == 1 && bf_linkage_node_at(g, c4)->component == 1);
  CHECK(bf_linkage_node_at(g, f2)->component == -1 && bf_linkage_node_at(g, c5)->component == -1);
  int *m = NULL, nm = 0;
  CHECK(bf_linkage_members(g, 0, &m, &nm) == 0 && nm == 3);
  if (nm == 3)
    CHECK(m[0] == f1 && m[1] == c1 && m[2] == c2); /* firearms first, then by name */
  free(m);
  char path[4300];
  snprintf(path, sizeof path, "%s/g.dot", dir);
  CHECK(bf_linkage_write_dot(g, path) == 0);
  const char *s = bf_t_read(path);
  CHECK(s && strstr(s, "cluster_1") && strstr(s, "cluster_2") && !strstr(s, "cluster_3"));
  CHECK(s && strstr(s, "firearm SN-1") && strstr(s, "style=solid") && strstr(s, "style=dashed"));
  CHECK(s && strstr(s, "North \\\"quoted\\\"")); /* quotes escaped */
  /* Graphviz accepts it (when installed) */
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "command -v dot >/dev/null 2>&1 || exit 0; dot -Tsvg '%s' -o '%s.svg'", path, path);
  CHECK(system(cmd) == 0);
  /* unwritable path */
  CHECK(bf_linkage_write_dot(g, "/nonexistent-dir/x.dot") == BF_EIO);
  CHECK(strstr(bf_error_last(), "/nonexistent-dir/x.dot") != NULL);
  bf_linkage_free(g);
  bf_linkage_free(NULL);
}

static void from_store(const char *dir)
{
  char path[4300];
  snprintf(path, sizeof path, "%s/s.bfm", dir);
  bf_store *st = NULL;
  if (bf_store_create(path, "tester") || bf_store_open(&st, path, BF_STORE_WRITE, "tester")) {
    fprintf(stderr, "store: %s\n", bf_error_last());
    CHECK(0);
    return;
  }
  int64_t fa, fb, e1, e2, e3, i[5];
  bf_firearm f = {0};
  bf_evidence e = {0};
  int ok = bf_store_begin(st) == 0;
  snprintf(f.serial, sizeof f.serial, "RG-001");
  snprintf(f.make, sizeof f.make, "Ruger");
  ok = ok && bf_store_add_firearm(st, &fa, &f) == 0;
  snprintf(f.serial, sizeof f.serial, "RG-002");
  ok = ok && bf_store_add_firearm(st, &fb, &f) == 0;
  e.kind = BF_KIND_CARTRIDGE;
  snprintf(e.case_no, sizeof e.case_no, "2026-17");
  snprintf(e.item, sizeof e.item, "1");
  ok = ok && bf_store_add_evidence(st, &e1, &e) == 0;
  snprintf(e.case_no, sizeof e.case_no, "2026-31");
  ok = ok && bf_store_add_evidence(st, &e2, &e) == 0;
  snprintf(e.case_no, sizeof e.case_no, "2026-40");
  ok = ok && bf_store_add_evidence(st, &e3, &e) == 0;
  ok = ok && bf_store_add_item(st, &i[0], BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, fa) == 0;
  ok = ok && bf_store_add_item(st, &i[1], BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, fb) == 0;
  ok = ok && bf_store_add_item(st, &i[2], BF_KIND_CARTRIDGE, "9mm", BF_OWNER_EVIDENCE, e1) == 0;
  ok = ok && bf_store_add_item(st, &i[3], BF_KIND_CARTRIDGE, "9mm", BF_OWNER_EVIDENCE, e2) == 0;
  ok = ok && bf_store_add_item(st, &i[4], BF_KIND_CARTRIDGE, "9mm", BF_OWNER_EVIDENCE, e3) == 0;
  bf_hit h[3];
  memset(h, 0, sizeof h);
  h[0] = (bf_hit){.query = i[2], .candidate = i[0], .run = 1, .score = 14};
  h[1] = (bf_hit){.query = i[3], .candidate = i[0], .run = 1, .score = 9};
  h[2] = (bf_hit){.query = i[4], .candidate = i[1], .run = 1, .score = 7};
  size_t added = 0;
  ok = ok && bf_store_add_hits(st, h, 3, &added) == 0 && added == 3;
  ok = ok && bf_store_commit(st) == 0;
  if (!ok)
    fprintf(stderr, "store: %s\n", bf_error_last());
  CHECK(ok);
  bf_linkage *g = NULL;
  CHECK(bf_linkage_from_store(&g, st, NULL, 0) == 0);
  if (g) {
    CHECK(bf_linkage_ncomponents(g) == 2 && bf_linkage_nnodes(g) == 5 && bf_linkage_nedges(g) == 3);
    bf_linkage_free(g);
  }
  /* reject the weakest hit: it no longer links; confirm one: --confirmed keeps only it */
  bf_hit *all = NULL;
  size_t n = 0;
  bf_hit_filter any = BF_HIT_FILTER_INIT;
  CHECK(bf_store_query_hits(st, &any, &all, &n) == 0 && n == 3);
  if (n == 3) {
    CHECK(bf_store_begin(st) == 0);
    CHECK(bf_store_set_hit_status(st, all[2].id, BF_HIT_REJECTED, "examiner", "different") == 0);
    CHECK(bf_store_set_hit_status(st, all[0].id, BF_HIT_CONFIRMED, "examiner", NULL) == 0);
    CHECK(bf_store_commit(st) == 0);
    CHECK(bf_linkage_from_store(&g, st, NULL, 0) == 0);
    if (g) {
      CHECK(bf_linkage_ncomponents(g) == 1 && bf_linkage_nedges(g) == 2);
      bf_linkage_free(g);
    }
    CHECK(bf_linkage_from_store(&g, st, NULL, 1) == 0);
    if (g) {
      CHECK(bf_linkage_ncomponents(g) == 1 && bf_linkage_nedges(g) == 1 && bf_linkage_edge_at(g, 0)->confirmed);
      bf_linkage_free(g);
    }
    bf_hit_filter hi = BF_HIT_FILTER_INIT;
    hi.min_score = 10;
    CHECK(bf_linkage_from_store(&g, st, &hi, 0) == 0);
    if (g) {
      CHECK(bf_linkage_nedges(g) == 1 && bf_linkage_edge_at(g, 0)->score == 14);
      bf_linkage_free(g);
    }
  }
  free(all);
  bf_store_close(st);
}

int main(void)
{
  const char *dir = bf_t_tmpdir("linkage");
  char d[4096];
  snprintf(d, sizeof d, "%s", dir);
  graph(d);
  from_store(d);
  return bf_t_done();
}
