/* The floor of make bench (tests/bench.sh, case 5): the time NSS takes, in this process, for one
 * PBKDF2-HMAC-SHA256 derivation of a 256-bit key at a given iteration count: the derivation that
 * every PBES2 bag and every MAC of a modern PKCS#12 file costs. NSS does the work (PK11_PBEKeyGen on
 * a PBES2 AlgorithmID, as caback's codec and pk12util use it); this program only times it.
 *
 * usage: bench-pbkdf2 ITERATIONS [RUNS]
 * Prints one line per run: the seconds that derivation took. */
#include "config.h"

#include <glib.h>

#include <nss.h>
#include <pk11pub.h>
#include <secoid.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s ITERATIONS [RUNS]\n", argv[0]);
        return 2;
    }
    int iterations = atoi(argv[1]);
    int runs = argc == 3 ? atoi(argv[2]) : 1;
    if (iterations < 1 || runs < 1) {
        fprintf(stderr, "%s: ITERATIONS and RUNS must be positive numbers\n", argv[0]);
        return 2;
    }
    if (NSS_NoDB_Init(NULL) != SECSuccess) {
        fprintf(stderr, "%s: NSS does not start\n", argv[0]);
        return 1;
    }

    int status = 0;
    PK11SlotInfo *slot = PK11_GetInternalSlot();
    for (int run = 0; run < runs && status == 0; run++) {
        unsigned char salt_bytes[16], password_bytes[] = "bench password";
        if (PK11_GenerateRandom(salt_bytes, sizeof salt_bytes) != SECSuccess) {
            status = 1;
            break;
        }
        SECItem salt = {siBuffer, salt_bytes, sizeof salt_bytes};
        SECItem password = {siBuffer, password_bytes, sizeof password_bytes - 1};
        SECAlgorithmID *alg = PK11_CreatePBEV2AlgorithmID(
            SEC_OID_PKCS5_PBES2, SEC_OID_AES_256_CBC, SEC_OID_HMAC_SHA256, 32, iterations, &salt);
        if (alg == NULL) {
            fprintf(stderr, "%s: NSS cannot make the PBES2 parameters\n", argv[0]);
            status = 1;
            break;
        }
        gint64 start = g_get_monotonic_time();
        PK11SymKey *key = PK11_PBEKeyGen(slot, alg, &password, PR_FALSE, NULL);
        /* The key's value is computed when it is made; reading it proves it exists. */
        SECStatus extracted = key != NULL ? PK11_ExtractKeyValue(key) : SECFailure;
        gint64 end = g_get_monotonic_time();
        if (key == NULL || extracted != SECSuccess) {
            fprintf(stderr, "%s: the derivation failed (NSS error %d)\n", argv[0], PORT_GetError());
            status = 1;
        } else {
            printf("%.6f\n", (double)(end - start) / 1e6);
        }
        if (key != NULL)
            PK11_FreeSymKey(key);
        SECOID_DestroyAlgorithmID(alg, PR_TRUE);
    }
    PK11_FreeSlot(slot);
    if (NSS_Shutdown() != SECSuccess)
        status = 1;
    return status;
}
