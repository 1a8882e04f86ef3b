/* Damaging a store on purpose, for the tests that check it is noticed (HDF5 underneath bfm). */
#ifndef BF_STORE_KIT_H
#define BF_STORE_KIT_H

#include <dirent.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Flips 64 bytes inside the first chunk of dataset ds in whichever segment of store holds it;
 * returns the number of bytes flipped. */
static inline long flip_in_segments(const char *store, const char *dsname)
{
  char d[4400];
  snprintf(d, sizeof d, "%s.d", store);
  DIR *dp = opendir(d);
  long flipped = 0;
  struct dirent *e;
  while (dp && !flipped && (e = readdir(dp))) {
    if (strncmp(e->d_name, "seg-", 4))
      continue;
    char f[4700];
    snprintf(f, sizeof f, "%s/%s", d, e->d_name);
    hid_t hf5 = H5Fopen(f, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = hf5 >= 0 && H5Lexists(hf5, dsname, H5P_DEFAULT) > 0 ? H5Dopen2(hf5, dsname, H5P_DEFAULT) : -1;
    haddr_t addr = HADDR_UNDEF;
    hsize_t csize = 0;
    if (ds >= 0) {
      hsize_t origin = 0;
      unsigned mask = 0;
      H5Dget_chunk_info_by_coord(ds, &origin, &mask, &addr, &csize);
      H5Dclose(ds);
    }
    if (hf5 >= 0)
      H5Fclose(hf5);
    FILE *fp = addr != HADDR_UNDEF && csize > 72 ? fopen(f, "r+b") : NULL;
    if (fp) {
      uint8_t buf[64];
      fseek(fp, (long)addr + 4, SEEK_SET);
      if (fread(buf, 1, 64, fp) == 64) {
        for (int i = 0; i < 64; i++)
          buf[i] ^= 0x5a;
        fseek(fp, (long)addr + 4, SEEK_SET);
        flipped = (long)fwrite(buf, 1, 64, fp);
      }
      fclose(fp);
    }
  }
  if (dp)
    closedir(dp);
  return flipped;
}

#endif
