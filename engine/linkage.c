/* Crime linkage graph (see bf_linkage.h). */
#include "bf_linkage.h"
#include "bf_out.h"
#include "bf_error.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bf_linkage {
  bf_link_node *nodes;
  int nnodes, capn;
  bf_link_edge *edges;
  int nedges, cape;
  int ncomp; /* components with at least one edge, largest first */
};

int bf_linkage_nnodes(const bf_linkage *g)
{
  return g->nnodes;
}

int bf_linkage_nedges(const bf_linkage *g)
{
  return g->nedges;
}

int bf_linkage_ncomponents(const bf_linkage *g)
{
  return g->ncomp;
}

const bf_link_node *bf_linkage_node_at(const bf_linkage *g, int i)
{
  return i >= 0 && i < g->nnodes ? &g->nodes[i] : NULL;
}

const bf_link_edge *bf_linkage_edge_at(const bf_linkage *g, int i)
{
  return i >= 0 && i < g->nedges ? &g->edges[i] : NULL;
}

void bf_linkage_series(const bf_linkage *g, int c, int *nedges, double *best)
{
  *nedges = 0;
  *best = -INFINITY;
  for (int e = 0; e < g->nedges; e++) {
    assert(g->edges[e].a < g->edges[e].b && g->edges[e].b < g->nnodes);
    if (g->nodes[g->edges[e].a].component == c) {
      ++*nedges;
      if (g->edges[e].score > *best)
        *best = g->edges[e].score;
    }
  }
}

int bf_linkage_new(bf_linkage **out)
{
  *out = calloc(1, sizeof **out);
  return *out ? 0 : bf_error_set(BF_ENOMEM, "out of memory for the linkage graph");
}

void bf_linkage_free(bf_linkage *g)
{
  if (!g)
    return;
  free(g->nodes);
  free(g->edges);
  free(g);
}

int bf_linkage_node(bf_linkage *g, int type, const char *name, const char *label, int *index)
{
  if (!name || !name[0] || (type != BF_NODE_FIREARM && type != BF_NODE_CASE))
    return bf_error_set(BF_EINVAL, "linkage: a node needs a type and a name");
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].type == type && !strcmp(g->nodes[i].name, name)) {
      *index = i;
      return 0;
    }
  if (g->nnodes == g->capn) {
    int cap = g->capn ? 2 * g->capn : 32;
    bf_link_node *n = realloc(g->nodes, cap * sizeof *n);
    if (!n)
      return bf_error_set(BF_ENOMEM, "out of memory for the linkage graph");
    g->nodes = n;
    g->capn = cap;
  }
  bf_link_node *n = &g->nodes[g->nnodes];
  memset(n, 0, sizeof *n);
  n->type = type;
  snprintf(n->name, sizeof n->name, "%s", name);
  snprintf(n->label, sizeof n->label, "%s", label ? label : "");
  n->component = -1;
  *index = g->nnodes++;
  return 0;
}

int bf_linkage_edge(bf_linkage *g, int a, int b, int64_t hit, double score, int confirmed)
{
  if (a < 0 || b < 0 || a >= g->nnodes || b >= g->nnodes)
    return bf_error_set(BF_EINVAL, "linkage: edge between unknown nodes %d and %d", a, b);
  if (a == b)
    return 0;
  if (a > b) {
    int t = a;
    a = b;
    b = t;
  }
  for (int i = 0; i < g->nedges; i++) {
    bf_link_edge *e = &g->edges[i];
    if (e->a == a && e->b == b) {
      e->nhits++;
      if (score > e->score) {
        e->score = score;
        e->hit = hit;
      }
      e->confirmed |= confirmed != 0;
      return 0;
    }
  }
  if (g->nedges == g->cape) {
    int cap = g->cape ? 2 * g->cape : 32;
    bf_link_edge *e = realloc(g->edges, cap * sizeof *e);
    if (!e)
      return bf_error_set(BF_ENOMEM, "out of memory for the linkage graph");
    g->edges = e;
    g->cape = cap;
  }
  g->edges[g->nedges++] = (bf_link_edge){a, b, hit, score, 1, confirmed != 0};
  g->nodes[a].degree++;
  g->nodes[b].degree++;
  return 0;
}

static int find(int *p, int x)
{
  while (p[x] != x) {
    p[x] = p[p[x]];
    x = p[x];
  }
  return x;
}

typedef struct comp_order {
  int root, size, first; /* first: node index with the smallest name, for ties */
} comp_order;

static const bf_linkage *sort_graph;

static int cmp_comp(const void *x, const void *y)
{
  const comp_order *a = x, *b = y;
  if (a->size != b->size)
    return b->size - a->size;
  return strcmp(sort_graph->nodes[a->first].name, sort_graph->nodes[b->first].name);
}

int bf_linkage_components(bf_linkage *g)
{
  int n = g->nnodes, nc = 0;
  int *p = malloc((n + 1) * sizeof *p), *map = malloc((n + 1) * sizeof *map);
  comp_order *co = malloc((n + 1) * sizeof *co);
  if (!p || !map || !co) {
    free(p);
    free(map);
    free(co);
    return bf_error_set(BF_ENOMEM, "out of memory for the linkage graph");
  }
  for (int i = 0; i < n; i++) {
    p[i] = i;
    map[i] = -1;
  }
  for (int i = 0; i < g->nedges; i++) {
    int ra = find(p, g->edges[i].a), rb = find(p, g->edges[i].b);
    if (ra != rb)
      p[ra < rb ? rb : ra] = ra < rb ? ra : rb;
  }
  for (int i = 0; i < n; i++) {
    int r = find(p, i);
    if (!g->nodes[i].degree) {
      g->nodes[i].component = -1;
      continue;
    }
    if (map[r] < 0) {
      map[r] = nc;
      co[nc++] = (comp_order){r, 0, i};
    }
    comp_order *c = &co[map[r]];
    c->size++;
    if (strcmp(g->nodes[i].name, g->nodes[c->first].name) < 0)
      c->first = i;
  }
  sort_graph = g;
  qsort(co, nc, sizeof *co, cmp_comp);
  for (int k = 0; k < nc; k++)
    map[co[k].root] = k;
  for (int i = 0; i < n; i++)
    if (g->nodes[i].degree)
      g->nodes[i].component = map[find(p, i)];
  g->ncomp = nc;
  free(p);
  free(map);
  free(co);
  return nc;
}

static const bf_linkage *member_graph;

static int cmp_member(const void *x, const void *y)
{
  const bf_link_node *a = &member_graph->nodes[*(const int *)x];
  const bf_link_node *b = &member_graph->nodes[*(const int *)y];
  if (a->type != b->type)
    return a->type - b->type; /* firearms first */
  return strcmp(a->name, b->name);
}

int bf_linkage_members(const bf_linkage *g, int c, int **idx, int *n)
{
  *idx = NULL;
  *n = 0;
  int *v = malloc((g->nnodes + 1) * sizeof *v), k = 0;
  if (!v)
    return bf_error_set(BF_ENOMEM, "out of memory");
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].component == c)
      v[k++] = i;
  member_graph = g;
  qsort(v, k, sizeof *v, cmp_member);
  *idx = v;
  *n = k;
  return 0;
}

/* Node of an item's owner: a firearm (by serial) or the case of an evidence record. */
static int owner_node(bf_linkage *g, const bf_store *st, int64_t item, int *index)
{
  const bf_item *it = bf_store_item(st, item);
  if (!it)
    return bf_error_set(BF_ENOTFOUND, "%s: hit refers to item %lld which is not stored",
                        bf_store_path(st), (long long)item);
  char name[96], label[192];
  if (it->owner_type == BF_OWNER_FIREARM) {
    const bf_firearm *f = bf_store_firearm(st, it->owner);
    if (!f)
      return bf_error_set(BF_ENOTFOUND, "%s: item %lld belongs to missing firearm %lld",
                          bf_store_path(st), (long long)item, (long long)it->owner);
    snprintf(name, sizeof name, "%s", f->serial[0] ? f->serial : "(no serial)");
    snprintf(label, sizeof label, "%s %s", f->make[0] ? f->make : f->manufacturer, f->model);
    return bf_linkage_node(g, BF_NODE_FIREARM, name, label, index);
  }
  const bf_evidence *e = bf_store_evidence(st, it->owner);
  if (!e)
    return bf_error_set(BF_ENOTFOUND, "%s: item %lld belongs to missing evidence %lld",
                        bf_store_path(st), (long long)item, (long long)it->owner);
  snprintf(name, sizeof name, "%s", e->case_no[0] ? e->case_no : "(no case)");
  snprintf(label, sizeof label, "%s", e->agency);
  return bf_linkage_node(g, BF_NODE_CASE, name, label, index);
}

int bf_linkage_from_store(bf_linkage **out, const bf_store *st, const bf_hit_filter *f,
                          int confirmed_only)
{
  bf_hit_filter all = BF_HIT_FILTER_INIT;
  bf_hit *h = NULL;
  size_t n = 0;
  bf_linkage *g = NULL;
  *out = NULL;
  int ret = bf_store_query_hits(st, f ? f : &all, &h, &n);
  if (ret || (ret = bf_linkage_new(&g)))
    goto done;
  for (size_t i = 0; i < n && !ret; i++) {
    if (h[i].status == BF_HIT_REJECTED || (confirmed_only && h[i].status != BF_HIT_CONFIRMED))
      continue;
    int a, b;
    if ((ret = owner_node(g, st, h[i].query, &a)) || (ret = owner_node(g, st, h[i].candidate, &b)))
      break;
    ret = bf_linkage_edge(g, a, b, h[i].id, h[i].score, h[i].status == BF_HIT_CONFIRMED);
  }
  if (!ret && (ret = bf_linkage_components(g)) > 0)
    ret = 0;
done:
  free(h);
  if (ret)
    bf_linkage_free(g);
  else
    *out = g;
  return ret;
}

/* DOT identifiers are quoted strings: escape quotes and backslashes. */
static void dot_str(FILE *f, const char *s)
{
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', f);
    if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
  fputc('"', f);
}

void bf_linkage_print_dot(const bf_linkage *g, FILE *f)
{
  fprintf(f, "graph linkage {\n  graph [rankdir=LR, fontname=\"Helvetica\", label=\"bfm crime "
             "linkage: %d series\", labelloc=t];\n  node [fontname=\"Helvetica\", fontsize=10];\n"
             "  edge [fontname=\"Helvetica\", fontsize=9];\n", g->ncomp);
  for (int c = 0; c < g->ncomp; c++) {
    fprintf(f, "  subgraph cluster_%d {\n    label=\"series %d\"; style=rounded; color=gray60;\n",
            c + 1, c + 1);
    for (int i = 0; i < g->nnodes; i++) {
      const bf_link_node *n = &g->nodes[i];
      if (n->component != c)
        continue;
      char label[320];
      if (n->type == BF_NODE_FIREARM)
        snprintf(label, sizeof label, "firearm %s\n%s", n->name, n->label);
      else
        snprintf(label, sizeof label, "case %s\n%s", n->name, n->label);
      fprintf(f, "    n%d [label=", i);
      dot_str(f, label);
      fprintf(f, n->type == BF_NODE_FIREARM ? ", shape=box, style=filled, fillcolor=\"#cfe2f3\"];\n"
                                            : ", shape=ellipse, style=filled, fillcolor=\"#fde9d9\"];\n");
    }
    fprintf(f, "  }\n");
  }
  for (int i = 0; i < g->nedges; i++) {
    const bf_link_edge *e = &g->edges[i];
    fprintf(f, "  n%d -- n%d [label=\"%.3g%s\", style=%s, penwidth=%s];\n", e->a, e->b, e->score,
            e->nhits > 1 ? "+" : "", e->confirmed ? "solid" : "dashed", e->confirmed ? "2" : "1");
  }
  fprintf(f, "}\n");
}

int bf_linkage_write_dot(const bf_linkage *g, const char *path)
{
  bf_out *o;
  int rc = bf_out_open(&o, path);
  if (rc)
    return rc;
  bf_linkage_print_dot(g, bf_out_file(o));
  return bf_out_commit(o);
}
