#include "bf_hash.h"
#include "bf_test.h"

static void md5hex(char *out, const char *s)
{
  uint8_t d[16];
  bf_md5(d, s, strlen(s));
  bf_hex(out, d, 16);
}

static void shahex(char *out, const char *s)
{
  uint8_t d[32];
  bf_sha256(d, s, strlen(s));
  bf_hex(out, d, 32);
}

int main(void)
{
  char h[65];
  /* RFC 1321 appendix A.5 test suite */
  md5hex(h, "");
  CHECK(!strcmp(h, "d41d8cd98f00b204e9800998ecf8427e"));
  md5hex(h, "abc");
  CHECK(!strcmp(h, "900150983cd24fb0d6963f7d28e17f72"));
  md5hex(h, "12345678901234567890123456789012345678901234567890123456789012345678901234567890");
  CHECK(!strcmp(h, "57edf4a22be3c955ac49da2e2107b67a"));
  /* FIPS 180-4 examples */
  shahex(h, "abc");
  CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  shahex(h, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  CHECK(!strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
  /* streaming in odd pieces equals one shot */
  char big[1000];
  for (int i = 0; i < 1000; i++)
    big[i] = (char)(i * 7);
  uint8_t a[32], b[32];
  bf_sha256(a, big, sizeof big);
  bf_sha256_ctx c;
  bf_sha256_init(&c);
  for (int i = 0; i < 1000; i += 37)
    bf_sha256_update(&c, big + i, i + 37 > 1000 ? 1000 - i : 37);
  bf_sha256_final(&c, b);
  CHECK(!memcmp(a, b, 32));
  return bf_t_done();
}
