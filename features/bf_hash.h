/* MD5 (RFC 1321) for X3P checksums and SHA-256 (FIPS 180-4) for chain of custody. */
#ifndef BF_HASH_H
#define BF_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct bf_md5_ctx {
  uint32_t h[4];
  uint64_t len;
  uint8_t buf[64];
  size_t nbuf;
} bf_md5_ctx;

typedef struct bf_sha256_ctx {
  uint32_t h[8];
  uint64_t len;
  uint8_t buf[64];
  size_t nbuf;
} bf_sha256_ctx;

void bf_md5_init(bf_md5_ctx *c);
void bf_md5_update(bf_md5_ctx *c, const void *data, size_t n);
void bf_md5_final(bf_md5_ctx *c, uint8_t out[16]);
void bf_md5(uint8_t out[16], const void *data, size_t n);

void bf_sha256_init(bf_sha256_ctx *c);
void bf_sha256_update(bf_sha256_ctx *c, const void *data, size_t n);
void bf_sha256_final(bf_sha256_ctx *c, uint8_t out[32]);
void bf_sha256(uint8_t out[32], const void *data, size_t n);

/* Lower-case hex of n bytes into out (2n+1 chars). */
void bf_hex(char *out, const uint8_t *bytes, size_t n);

#endif
