/* Crime linkage: cases and firearms as nodes, hits as edges; connected components are the
 * linked series (crimes committed with one gun, or cases whose evidence links them together).
 * Rejected hits are never edges. Several hits between the same two nodes make one edge (best
 * score, hit count, confirmed when any of them is). */
#ifndef BF_LINKAGE_H
#define BF_LINKAGE_H

#include "bf_store.h"

#include <stdint.h>

enum { BF_NODE_FIREARM = 1, BF_NODE_CASE = 2 };

typedef struct bf_link_node {
  int type;          /* BF_NODE_* */
  char name[96];     /* firearm serial or case number */
  char label[192];   /* what a picture shows under the name (make/model, agency) */
  int component;     /* 0-based series number after bf_linkage_components; -1 before */
  int degree;
} bf_link_node;

typedef struct bf_link_edge {
  int a, b;          /* node indices, a < b */
  int64_t hit;       /* id of the best hit */
  double score;      /* best score */
  int nhits;
  int confirmed;     /* 1 when any of its hits is confirmed */
} bf_link_edge;

/* The graph: opaque, read through the functions below (its arrays grow as nodes and edges are
 * added, so a pointer into them is valid until the next bf_linkage_node/_edge). */
typedef struct bf_linkage bf_linkage;

int bf_linkage_new(bf_linkage **out);
void bf_linkage_free(bf_linkage *g);
/* Index of the node (type, name), added when new (label may be NULL). */
int bf_linkage_node(bf_linkage *g, int type, const char *name, const char *label, int *index);
/* Adds a hit between nodes a and b (self-loops are ignored: two items of one case). */
int bf_linkage_edge(bf_linkage *g, int a, int b, int64_t hit, double score, int confirmed);
/* Numbers the connected components (largest first, ties by the first node name); returns
 * their count. */
int bf_linkage_components(bf_linkage *g);
/* Nodes of component c in *idx (caller frees), firearms first then cases, by name. */
int bf_linkage_members(const bf_linkage *g, int c, int **idx, int *n);
/* Sizes: nodes, edges, and components with at least one edge (0 before _components). */
int bf_linkage_nnodes(const bf_linkage *g);
int bf_linkage_nedges(const bf_linkage *g);
int bf_linkage_ncomponents(const bf_linkage *g);
/* Node / edge i, NULL when out of range. */
const bf_link_node *bf_linkage_node_at(const bf_linkage *g, int i);
const bf_link_edge *bf_linkage_edge_at(const bf_linkage *g, int i);
/* Edges of component c into *nedges and their best score into *best (-INFINITY when none). */
void bf_linkage_series(const bf_linkage *g, int c, int *nedges, double *best);

/* The graph of a store's hits: f selects them (NULL: all); confirmed_only keeps confirmed hits
 * only; rejected hits are always left out. Components are numbered. */
int bf_linkage_from_store(bf_linkage **out, const bf_store *st, const bf_hit_filter *f,
                          int confirmed_only);

/* Graphviz DOT: one cluster per series, firearms as boxes, cases as ellipses, confirmed edges
 * solid, candidate edges dashed, labelled with their score. Written through bf_out (checked
 * target, O_EXCL|O_NOFOLLOW temporary, renamed into place). */
int bf_linkage_write_dot(const bf_linkage *g, const char *path);
/* The same DOT text to an open stream. */
void bf_linkage_print_dot(const bf_linkage *g, FILE *f);

#endif
